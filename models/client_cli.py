"""Forecast a ticker from the command line against any endpoint: what an API user runs instead of hand-building 600 numbers.

    python -m models.client AAPL                                  # the bundled snapshot, the API `make run` started
    python -m models.client AAPL --as-of 2012-06-29 --show-request
    python -m models.client MYCO --csv prices.csv --url https://<id>.execute-api.<region>.amazonaws.com/prod --key "$KEY"

Market data (--source auto|live|snapshot, or --csv with Date, Open, High, Low, Close, Volume columns) becomes the
60 x 10 window with the scaler the endpoint publishes at GET /model, then one POST /predict. Without --url and --key
it uses the local API's own file (.local/local_api.json, written by `make run`). Every failure is one line on stderr
(exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from models.client import EndpointError, ForecastClient
from models.data import COLUMNS, SOURCES, DataError, load_prices, next_day
from models.features import FEATURES, WINDOW, window
from models.local import LOCAL_DIR

DEFAULT_URL = "http://127.0.0.1:3000/prod"  # `make run`'s local API when its file is missing


# the client's messages name the dashboard's sidebar; on the command line the fix is an option
COMMAND_LINE_HINTS = {
    "down": "nothing answers at {url}: start the local API (`make run`) or pass the endpoint with --url",
    "auth": "the endpoint at {url} refused the API key: pass the key `make run` or the deploy printed with --key",
}


class UsageError(Exception):
    """Bad input on the command line or in the CSV: the message says what to fix."""


def local_defaults(local_dir: Path = LOCAL_DIR) -> tuple[str, str]:
    """(url, key) from the file the local API writes when it starts; the README's URL and no key without it."""
    try:
        info = json.loads((local_dir / "local_api.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_URL, ""
    if not isinstance(info, dict):
        return DEFAULT_URL, ""
    return str(info.get("url") or DEFAULT_URL), str(info.get("api_key") or "")


def read_csv(path: Path) -> pd.DataFrame:
    """A user's daily prices: a Date column and the OHLCV columns, one row a trading day."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    missing = [c for c in ["Date", *COLUMNS] if c not in df.columns]
    if missing:
        raise UsageError(f"{path} lacks the column(s) {', '.join(missing)}: it needs Date, {', '.join(COLUMNS)}")
    try:
        df["Date"] = pd.to_datetime(df["Date"])
        df = df.set_index("Date").sort_index()[COLUMNS].astype(float)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{path} holds a value that is not a date or a number ({e})") from None
    if df.index.duplicated().any():
        raise UsageError(f"{path} lists a date twice: one row a trading day")
    return df


def forecast(args: argparse.Namespace) -> tuple[dict, dict, pd.Timestamp, pd.Timestamp]:
    """-> (the answer, the request body, the as-of day, the target day)."""
    ticker = args.ticker.strip().upper()
    prices = read_csv(args.csv) if args.csv else load_prices(ticker, source=args.source)
    client = ForecastClient(args.url, args.key)
    card = client.model()
    if card["window"] != WINDOW or list(card["features"]) != list(FEATURES):
        raise UsageError(
            f"the endpoint's model expects window {card['window']} with {card['features']}; this client builds "
            f"{WINDOW} days of {list(FEATURES)}: update one of them"
        )
    shown = prices if args.as_of is None else prices[prices.index <= pd.Timestamp(args.as_of)]
    if shown.empty:
        raise UsageError(f"no prices for {ticker} on or before {args.as_of}: its data starts {prices.index[0]:%Y-%m-%d}")
    try:
        features = window(prices, card["scaler"], end=args.as_of).tolist()
    except ValueError as e:
        raise UsageError(f"{ticker}: {e}") from None
    body = {"ticker": ticker, "features": features}
    as_of = shown.index[-1]
    return client.predict(ticker, features), body, as_of, next_day(prices, as_of)


def describe(answer: dict, as_of: pd.Timestamp, target: pd.Timestamp) -> str:
    """The answer in one line a person reads: which day, the close, its range, the direction and how sure."""
    iv, last = answer["interval"], answer.get("last_close")
    way = "" if not last else (" up" if answer["prediction"] >= last else " down") + f" from {last:,.2f},"
    return (
        f"{answer['ticker']}: close on {target:%Y-%m-%d} (target day, as of {as_of:%Y-%m-%d}) forecast "
        f"{answer['prediction']:,.2f},{way} {answer['confidence']:.0%} sure of the direction; "
        f"{iv.get('level', 0.8):.0%} range {iv['low']:,.2f} to {iv['high']:,.2f}"
    )


def parser() -> argparse.ArgumentParser:
    url, key = local_defaults()
    p = argparse.ArgumentParser(
        prog="python -m models.client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("ticker", help="the symbol, e.g. AAPL (with --csv: the name the answer carries)")
    p.add_argument("--url", default=url, help=f"the API stage (default: the local API's, now {url})")
    p.add_argument("--key", default=key, help="the X-API-Key (default: the local API's key file)")
    p.add_argument("--source", choices=SOURCES, default="snapshot", help="market data (default: the bundled snapshot)")
    p.add_argument("--csv", type=Path, help="a CSV of daily prices (Date, Open, High, Low, Close, Volume) instead")
    p.add_argument("--as-of", help="the last day of data to use, YYYY-MM-DD (default: the data's last day)")
    p.add_argument("--show-request", action="store_true", help="print the request (URL and JSON body, not the key)")
    p.add_argument("--json", action="store_true", help="print the endpoint's JSON answer instead of the sentence")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.as_of is not None:
        try:
            pd.Timestamp(args.as_of)
        except ValueError:
            print(f"forecast: --as-of {args.as_of!r} is not a date: use YYYY-MM-DD", file=sys.stderr)
            return 2
    try:
        answer, body, as_of, target = forecast(args)
    except EndpointError as e:
        print(f"forecast: {COMMAND_LINE_HINTS.get(e.kind, '{message}').format(message=e.message, url=args.url)}", file=sys.stderr)
        return 2
    except (DataError, UsageError) as e:
        print(f"forecast: {e}", file=sys.stderr)
        return 2
    if args.show_request:
        print(f"POST {args.url.rstrip('/')}/predict  (header X-API-Key: <your key>)")
        print(json.dumps(body))
    answer.pop("latency_ms", None)
    print(json.dumps(answer, indent=2) if args.json else describe(answer, as_of, target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
