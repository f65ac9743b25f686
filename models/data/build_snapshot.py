"""Build models/data/snapshot.csv.gz from real daily OHLCV that ships inside PyPI packages.

    python -m models.data.build_snapshot        # needs: pip install arch bokeh-sampledata

Sources (see PROVENANCE.md beside this file):
  arch             arch.data.sp500 / arch.data.nasdaq  -> ^GSPC, ^IXIC (1999-2018)
  bokeh-sampledata stocks.csv.gz                         -> AAPL, IBM, MSFT (2000-2013), GOOG (2004-2013)

bokeh's OHLC is unadjusted; it is split- and dividend-adjusted here with Adj Close / Close, and the
volume inversely, so one share means the same thing across the whole series.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata as md
import io
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SNAPSHOT = HERE / "snapshot.csv.gz"
BOKEH_TICKERS = ("AAPL", "IBM", "MSFT", "GOOG")
COLUMNS = ["Open", "High", "Low", "Close", "Volume"]


def _from_arch() -> dict[str, pd.DataFrame]:
    import arch.data.nasdaq
    import arch.data.sp500

    out = {}
    for ticker, mod in (("^GSPC", arch.data.sp500), ("^IXIC", arch.data.nasdaq)):
        df = mod.load()
        factor = df["Adj Close"] / df["Close"]
        adj = df[["Open", "High", "Low", "Close"]].mul(factor, axis=0)
        adj["Volume"] = df["Volume"]
        out[ticker] = adj
    return out


def _from_bokeh() -> dict[str, pd.DataFrame]:
    import bokeh_sampledata

    path = Path(bokeh_sampledata.__file__).parent / "_data" / "stocks.csv.gz"
    raw = pd.read_csv(path, parse_dates=["Date"])
    out = {}
    for ticker in BOKEH_TICKERS:
        df = raw[raw["Ticker"] == ticker].set_index("Date").sort_index()
        factor = df["Adj Close"] / df["Close"]
        adj = df[["Open", "High", "Low", "Close"]].mul(factor, axis=0)
        adj["Volume"] = (df["Volume"] / factor).round()
        out[ticker] = adj
    return out


def build() -> pd.DataFrame:
    """One long frame: Date, Ticker, Open, High, Low, Close, Volume."""
    frames = []
    for ticker, df in {**_from_arch(), **_from_bokeh()}.items():
        df = df[COLUMNS].dropna()
        df = df[(df[["Open", "High", "Low", "Close"]] > 0).all(axis=1)]
        df.index = pd.to_datetime(df.index).tz_localize(None).normalize()
        df.index.name = "Date"
        df = df[~df.index.duplicated()].reset_index()
        df.insert(1, "Ticker", ticker)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def write(df: pd.DataFrame, path: Path = SNAPSHOT) -> None:
    """Deterministic gzip (mtime 0) so rebuilding from the same packages gives the same bytes."""
    text = df.to_csv(index=False, float_format="%.6g", date_format="%Y-%m-%d")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(text.encode())
    path.write_bytes(buf.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=SNAPSHOT)
    args = parser.parse_args(argv)
    df = build()
    write(df, args.out)
    versions = {p: md.version(p) for p in ("arch", "bokeh-sampledata")}
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(df)} rows) from {versions}")
    for ticker, g in df.groupby("Ticker"):
        print(f"  {ticker:6s} {g['Date'].min():%Y-%m-%d} .. {g['Date'].max():%Y-%m-%d}  {len(g)} days")


if __name__ == "__main__":
    main()
