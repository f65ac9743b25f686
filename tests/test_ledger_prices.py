"""`python -m ledger.replay --prices FILE`: a user's file read ticker by ticker, one clear line per problem, the other
tickers kept; each ticker's own rows are its calendar."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from ledger import prices, replay
from models.data import load_prices


def user_file(tmp_path, rows: pd.DataFrame, name: str = "my.csv") -> str:
    path = tmp_path / name
    text = rows.to_csv(index=False)
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def snapshot_as(ticker: str, renamed: str, n: int = 400) -> pd.DataFrame:
    df = load_prices(ticker, source="snapshot").iloc[-n:].reset_index()
    df = df.rename(columns={df.columns[0]: "Date"})
    df["Date"] = df["Date"].dt.strftime("%Y-%m-%d")
    df["Ticker"] = renamed
    return df[["Volume", "Close", "Ticker", "Low", "Date", "High", "Open"]]  # any order


def test_a_good_file_in_any_column_order_loads_every_ticker(tmp_path):
    rows = pd.concat([snapshot_as("AAPL", "MYCO"), snapshot_as("IBM", "OTHER.L", 300)])
    frames, problems = prices.load(user_file(tmp_path, rows, "my.csv.gz"))
    assert problems == [] and sorted(frames) == ["MYCO", "OTHER.L"]
    assert list(frames["MYCO"].columns) == ["Open", "High", "Low", "Close", "Volume"] and len(frames["OTHER.L"]) == 300


def test_each_ticker_is_its_own_calendar(tmp_path):
    rows = snapshot_as("IBM", "X", 200)
    rows = rows[~rows.index.isin([150, 151])]  # a gap: the file's next row is the target, whatever the exchange
    frames, _ = prices.load(user_file(tmp_path, rows))
    ohlcv, days, targets, _ = replay.file_work(frames)({}, "X")
    assert days[-1] == ohlcv.index[-2] and targets[days[-1]] == f"{ohlcv.index[-1]:%Y-%m-%d}"
    all_rows = snapshot_as("IBM", "X", 200)
    assert targets[pd.Timestamp(all_rows["Date"][149])] == all_rows["Date"][152]  # over the gap to the next row


def broken(kind: str) -> pd.DataFrame:
    good = snapshot_as("MSFT", "BAD", 300)
    if kind == "duplicate":
        return pd.concat([good, good.iloc[[100]]]).sort_values("Date", kind="stable")
    if kind == "unsorted":
        return pd.concat([good.iloc[:100], good.iloc[[150]], good.iloc[100:150], good.iloc[151:]])
    if kind == "zero":
        good.loc[good.index[120], "Close"] = 0
    if kind == "negative":
        good.loc[good.index[120], "Low"] = -1
    if kind == "nan":
        good["Open"] = good["Open"].astype(object)
        good.loc[good.index[120], "Open"] = "nan"
    if kind == "inf":
        good.loc[good.index[120], "High"] = np.inf
    if kind == "text":
        good["Close"] = good["Close"].astype(object)
        good.loc[good.index[120], "Close"] = "n/a"
    if kind == "short":
        return good.iloc[:100]
    if kind == "bad-date":
        good.loc[good.index[120], "Date"] = "31/12/2012"
    return good


@pytest.mark.parametrize(
    "kind, says",
    [
        ("duplicate", "1 duplicate date(s)"),
        ("unsorted", "dates are not in order"),
        ("zero", "Close has 1 value(s) that are not positive finite prices"),
        ("negative", "Low has 1 value(s) that are not positive finite prices"),
        ("nan", "Open has 1 value(s) that are not positive finite prices"),
        ("inf", "High has 1 value(s) that are not positive finite prices"),
        ("text", "Close has 1 value(s)"),
        ("short", "100 rows, fewer than the 110 a forecast needs"),
        ("bad-date", "1 row(s) whose Date is not a date"),
    ],
)
def test_a_bad_ticker_gets_one_line_and_the_others_still_load(tmp_path, kind, says):
    rows = pd.concat([snapshot_as("AAPL", "GOOD"), broken(kind)])
    frames, problems = prices.load(user_file(tmp_path, rows))
    assert list(frames) == ["GOOD"]
    assert len(problems) == 1 and ": BAD: " in problems[0] and says in problems[0] and problems[0].endswith("skipped")
    assert "\n" not in problems[0]


def test_a_file_without_the_columns_is_one_line(tmp_path):
    rows = snapshot_as("AAPL", "GOOD").drop(columns=["Volume", "Open"])
    with pytest.raises(prices.BadFile, match=r"missing column\(s\) Open, Volume; the header must name Date, Ticker"):
        prices.load(user_file(tmp_path, rows))


def test_a_file_that_is_not_a_csv_is_one_line(tmp_path):
    path = tmp_path / "my.csv.gz"
    path.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(prices.BadFile, match="cannot read it as a CSV"):
        prices.load(path)


def test_a_ticker_that_is_not_a_symbol_is_refused(tmp_path):
    rows = pd.concat([snapshot_as("AAPL", "GOOD"), snapshot_as("IBM", "no spaces please")])
    frames, problems = prices.load(user_file(tmp_path, rows))
    assert list(frames) == ["GOOD"] and "is not a ticker symbol" in problems[0]


def test_a_users_file_replays_through_the_local_api_with_the_loop_closed(local_api, tmp_path):
    """End to end: the real function in the local API's workers reads the state the walk writes, without a restart.
    Every forecast after the warm-up comes back calibrated, with a factor learned from closes before its as-of day."""
    import json

    from ledger.store import SqliteStore
    from models.client import ForecastClient

    rows = pd.concat([snapshot_as("AAPL", "MYCO", 230), snapshot_as("IBM", "OTHER", 200)])
    frames, problems = prices.load(user_file(tmp_path, rows))
    state = local_api.dir / "calibration.json"  # where the local API points its workers by default
    try:
        with SqliteStore(tmp_path / "l.sqlite") as store:
            done = replay.replay(ForecastClient(local_api.url, local_api.key, timeout=60), store, sorted(frames),
                                 progress=lambda total, what: type("P", (), {"add": lambda self, n: None})(),
                                 state_path=state, method="qt", source=replay.file_work(frames), source_name="file")  # fmt: skip
            got = store.conn.execute(
                "SELECT ticker, as_of, low, high, plain_low, plain_high, calibration FROM forecasts ORDER BY ticker, as_of"
            ).fetchall()
    finally:
        state.unlink(missing_ok=True)
    assert problems == [] and done["method"] == "qt" and done["recorded"] == len(got) == (230 - 109) + (200 - 109)
    for ticker in ("MYCO", "OTHER"):
        mine = [g for g in got if g[0] == ticker]
        labels = [json.loads(g[6]) if g[6] else None for g in mine]
        assert labels[:50] == [None] * 50  # the warm-up: the model's own interval, stored as such
        assert all(
            lab["method"] == "qt" and lab["n"] >= 50 and lab["as_of"] <= g[1]
            for lab, g in zip(labels[50:], mine[50:], strict=True)
        )
        factors = {lab["factor"] for lab in labels[50:]}
        assert len(factors) > 5  # it moved as closes came in, and the workers followed each change
        for (_, _, low, high, plo, phi, _), lab in zip(mine[50:], labels[50:], strict=True):
            assert math.log(high / low) == pytest.approx(lab["factor"] * math.log(phi / plo), rel=1e-9)
