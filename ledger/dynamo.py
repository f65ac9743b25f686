"""The ledger on AWS: one DynamoDB table (on-demand), written with conditional puts so nothing is ever overwritten.

Items: forecasts under pk "F#<ticker>", sk "<target_date>#<model_version>"; outcomes under pk "O#<ticker>",
sk "<date>"; skips under pk "S#<ticker>", sk "<as_of>#<model_version>#<reason_code>". Every row is checked against
ledger.schema's RULES before anything is sent (DynamoDB has no CHECK), so both stores refuse the same rows.
A batch goes in one transaction whose every put carries attribute_not_exists(pk): a key already there
cancels the whole batch, as the SQLite store's triggers do. The table's IAM policy grants no UpdateItem or DeleteItem.
Items written before schema v2 lack plain_low/plain_high/calibration/adjustment: they read as v1 rows migrate
(plain = served, no calibration, adjustment 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from decimal import Decimal

import pandas as pd

from ledger.store import (
    FORECAST_COLUMNS,
    OUTCOME_COLUMNS,
    SKIP_COLUMNS,
    DuplicateError,
    Forecast,
    LedgerError,
    Outcome,
    Skip,
    refused,
)

TRANSACTION_MAX = 100  # DynamoDB's limit of items in one TransactWriteItems


def _to_item(row: dict) -> dict:
    """DynamoDB speaks Decimal, not float; None attributes are left out."""
    return {k: Decimal(repr(v)) if isinstance(v, float) else v for k, v in row.items() if v is not None}


def _from_item(item: dict) -> dict:
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in item.items()}


class DynamoStore:
    """The same writes and reads as SqliteStore (record, add_outcomes, forecast_keys, awaiting_outcomes, joined)."""

    def __init__(self, table: str, client=None):
        import boto3

        self.table = table
        self.ddb = client or boto3.client("dynamodb")
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._ser, self._de = TypeSerializer(), TypeDeserializer()

    def _put_all(self, items: list[tuple[dict, str]]) -> int:
        """(item, what) pairs, TRANSACTION_MAX per transaction, each put conditional on its key being new."""
        for i in range(0, len(items), TRANSACTION_MAX):
            chunk = items[i : i + TRANSACTION_MAX]
            try:
                self.ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": {k: self._ser.serialize(v) for k, v in item.items()},
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        }
                        for item, _ in chunk
                    ]
                )
            except self.ddb.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                taken = [what for (_, what), r in zip(chunk, reasons, strict=False) if r.get("Code") == "ConditionalCheckFailed"]
                if taken:
                    raise DuplicateError(f"ledger: {taken[0]} is already recorded; the ledger never overwrites") from None
                raise LedgerError(f"ledger: DynamoDB refused the batch: {reasons}") from None
        return len(items)

    @staticmethod
    def _check(table: str, rows: Sequence) -> None:
        for row in rows:
            if err := refused(table, row):
                raise err

    def record(self, forecasts: Sequence[Forecast]) -> int:
        self._check("forecasts", forecasts)
        items = []
        for f in forecasts:
            row = asdict(f)
            item = {"pk": f"F#{f.ticker}", "sk": f"{f.target_date}#{f.model_version}", "kind": "forecast", **row}
            items.append((_to_item(item), f"forecasts ({f.ticker}, {f.target_date}, {f.model_version})"))
        return self._put_all(items)

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> int:
        self._check("outcomes", outcomes)
        items = [
            (_to_item({"pk": f"O#{o.ticker}", "sk": o.date, "kind": "outcome", **asdict(o)}), f"outcomes ({o.ticker}, {o.date})")
            for o in outcomes
        ]
        return self._put_all(items)

    def add_skips(self, skips: Sequence[Skip]) -> int:
        """Record skips not recorded yet (a second run of the day re-finds the same ones: they are kept once)."""
        self._check("skips", skips)
        have = {(s["as_of"], s["model_version"], s["reason_code"]) for t in {s.ticker for s in skips} for s in self.skips(t)}
        new = {(s.ticker, s.as_of, s.model_version, s.reason_code): s for s in skips}
        items = [
            (
                _to_item(
                    {"pk": f"S#{s.ticker}", "sk": f"{s.as_of}#{s.model_version}#{s.reason_code}", "kind": "skip", **asdict(s)}
                ),
                f"skips ({s.ticker}, {s.as_of}, {s.model_version}, {s.reason_code})",
            )
            for key, s in new.items()
            if key[1:] not in have
        ]
        return self._put_all(items)

    def skips(self, ticker: str) -> list[dict]:
        return [{c: it.get(c) for c in SKIP_COLUMNS} for it in self._query(f"S#{ticker}")]

    def _query(self, pk: str) -> list[dict]:
        out, start = [], None
        while True:
            kw = {"ExclusiveStartKey": start} if start else {}
            page = self.ddb.query(
                TableName=self.table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}, **kw
            )
            out += [_from_item({k: self._de.deserialize(v) for k, v in item.items()}) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return out

    def forecasts(self, ticker: str) -> list[dict]:
        v1 = {"plain_low": "low", "plain_high": "high"}  # a v1 item served its plain interval
        return [
            {c: it.get(c, it.get(v1[c])) if c in v1 else it.get(c) for c in FORECAST_COLUMNS} for it in self._query(f"F#{ticker}")
        ]

    def outcomes(self, ticker: str) -> list[dict]:
        return [
            {**{c: it.get(c) for c in OUTCOME_COLUMNS}, "adjustment": it.get("adjustment", 1.0)}
            for it in self._query(f"O#{ticker}")
        ]

    def forecast_keys(self, model_version: str, tickers: Iterable[str]) -> set[tuple[str, str]]:
        return {
            (f["ticker"], f["target_date"]) for t in tickers for f in self.forecasts(t) if f["model_version"] == model_version
        }

    def awaiting_outcomes(self, tickers: Iterable[str]) -> list[tuple[str, str]]:
        out = set()
        for t in tickers:
            have = {o["date"] for o in self.outcomes(t)}
            out |= {(t, f["target_date"]) for f in self.forecasts(t) if f["target_date"] not in have}
        return sorted(out, key=lambda k: (k[1], k[0]))

    def joined(self, tickers: Iterable[str]) -> pd.DataFrame:
        """Forecasts whose close has arrived, with it: the frame ledger.scoring takes (as the SQLite `scored` view)."""
        rows = []
        for t in tickers:
            closes = {o["date"]: o for o in self.outcomes(t)}
            for f in self.forecasts(t):
                o = closes.get(f["target_date"])
                if o:
                    rows.append(
                        {
                            **f,
                            "close": o["close"],
                            "adjustment": o["adjustment"],
                            "outcome_source": o["source"],
                            "fetched_at": o["fetched_at"],
                        }
                    )
        return pd.DataFrame(rows)
