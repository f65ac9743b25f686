"""How far one daily ledger run scales: tickers per minute through the live job, measured locally.

    python benchmarks/ledger_scale.py --url URL --key KEY [--tickers 256] [--concurrency 2]

yfinance is replaced by the bundled snapshot (no network here), so the figure is the job's own work - windows,
GARCH fits, batched POST /predict calls, inserts - without the download; the README adds the download's cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import live  # noqa: E402
from ledger.store import SqliteStore  # noqa: E402
from models.client import ForecastClient  # noqa: E402
from models.data import load_prices, snapshot_tickers  # noqa: E402

AS_OF = "2012-12-31"  # every snapshot series has data here


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--tickers", type=int, default=256)
    p.add_argument("--concurrency", type=int, default=2)
    args = p.parse_args(argv)
    series = {t: load_prices(t, source="snapshot") for t in snapshot_tickers()}
    names = {f"T{i:04d}": list(series)[i % len(series)] for i in range(args.tickers)}

    def history(ticker: str) -> pd.DataFrame:
        df = series[names[ticker]]
        return df[df.index <= pd.Timestamp(AS_OF)].iloc[-500:]

    now = pd.Timestamp(f"{AS_OF} 17:30", tz=live.NEW_YORK).to_pydatetime()
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "ledger.sqlite") as store:
        client = ForecastClient(args.url, args.key, timeout=60)
        t0, c0 = time.perf_counter(), time.process_time()
        out = live.run(client, store, list(names), now, live.LastGood(Path(tmp) / "m"), history, args.concurrency)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out["forecasts"] == args.tickers, out
    print(
        f"{args.tickers} tickers in {wall:.1f} s wall ({args.tickers / wall * 60:.0f} a minute), "
        f"job CPU {cpu:.1f} s ({cpu / args.tickers * 1000:.0f} ms a ticker), concurrency {args.concurrency}, "
        f"{dt.date.today()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
