"""Daily OHLCV for one ticker: live from yfinance when reachable, else the bundled snapshot.

    from models.data import load_prices
    df = load_prices("AAPL", start="2010-01-01")      # df.attrs["source"] says who answered

The snapshot (snapshot.csv.gz beside this file, built by build_snapshot.py) is real market data from
PyPI packages; PROVENANCE.md says where each series comes from.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import warnings
from functools import lru_cache
from pathlib import Path

import pandas as pd

SNAPSHOT = Path(__file__).resolve().parent / "snapshot.csv.gz"
COLUMNS = ["Open", "High", "Low", "Close", "Volume"]
SOURCES = ("auto", "live", "snapshot")
LIVE_TIMEOUT_S = 4.0  # yfinance's per-request timeout: a live fetch should never stall the UI
LIVE_CACHE_TTL_S = 6 * 3600  # a day's bars change once a day; refetching every minute is rude
# "auto" asks whether the network is there once per NETWORK_CHECK_S for every ticker, not once per ticker: offline, each
# yfinance call spent seconds on its own DNS retries. One TCP connect to yfinance's host (PROBE_TIMEOUT_S at most) decides.
NETWORK_CHECK_S = 300.0
PROBE_HOST, PROBE_TIMEOUT_S = ("query1.finance.yahoo.com", 443), 2.0
CACHE_DIR = Path(os.environ.get("FORECAST_CACHE_DIR", Path.home() / ".cache" / "financial-forecasting"))
TICKER_RE = re.compile(r"[\^A-Za-z0-9][A-Za-z0-9.\-=^]{0,14}")  # used with fullmatch: no trailing newline

log = logging.getLogger(__name__)
_network = [0.0, False]  # [when it was last checked (time.time()), whether yfinance's host answered then]


class DataError(Exception):
    """Market data could not be had; the message says what to do."""


class UnknownTickerError(DataError, KeyError):
    """The ticker is not in the snapshot (and live data was not available)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class LiveDataError(DataError):
    """yfinance could not answer: offline, rate-limited, or no such symbol."""


@lru_cache(maxsize=1)
def _snapshot() -> pd.DataFrame:
    if not SNAPSHOT.exists():
        raise DataError(f"bundled snapshot {SNAPSHOT} is missing: run `python -m models.data.build_snapshot`")
    df = pd.read_csv(SNAPSHOT, parse_dates=["Date"])
    return df.set_index("Date").sort_index()


def snapshot_tickers() -> list[str]:
    """Tickers the bundled snapshot holds, sorted."""
    return sorted(_snapshot()["Ticker"].unique())


def _clip(df: pd.DataFrame, start, end) -> pd.DataFrame:
    if start is not None:
        df = df[df.index >= pd.Timestamp(start)]
    if end is not None:
        df = df[df.index <= pd.Timestamp(end)]
    return df


def _from_snapshot(ticker: str) -> pd.DataFrame:
    snap = _snapshot()
    df = snap[snap["Ticker"] == ticker]
    if df.empty:
        raise UnknownTickerError(
            f"ticker {ticker!r} is not in the bundled snapshot and live data is unavailable; "
            f"the snapshot has: {', '.join(snapshot_tickers())}"
        )
    return df[COLUMNS].astype(float)


def normalize_yf(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """yfinance's frame -> our columns: flatten multi-index columns, drop tz, drop empty rows."""
    if raw is None or raw.empty:
        raise LiveDataError(f"yfinance returned no rows for {ticker!r} (offline, rate-limited or unknown symbol)")
    df = raw.copy()
    if isinstance(df.columns, pd.MultiIndex):
        level = next((i for i in range(df.columns.nlevels) if set(COLUMNS) <= set(df.columns.get_level_values(i))), 0)
        df.columns = df.columns.get_level_values(level)
        df = df.loc[:, ~df.columns.duplicated()]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise LiveDataError(f"yfinance answer for {ticker!r} lacks columns {missing}")
    df = df[COLUMNS].astype(float).dropna(subset=["Open", "High", "Low", "Close"])
    idx = pd.to_datetime(df.index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    df.index = idx.normalize()
    df.index.name = "Date"
    df = df[~df.index.duplicated(keep="last")].sort_index()
    if df.empty:
        raise LiveDataError(f"yfinance returned only empty rows for {ticker!r}")
    return df


def cache_name(ticker: str) -> str:
    """One file name per symbol: each character outside [A-Za-z0-9] becomes _XX (its hex code). "_" never occurs in a
    ticker, so the names cannot collide (BRK-B, BRK.B; ES=F, ES-F, ES.F each get their own file). Every cache of
    market data (this one, the ledger's last good frames) names its files with it."""
    return re.sub(r"[^A-Za-z0-9]", lambda m: f"_{ord(m.group()):02X}", ticker)


def _cache_path(ticker: str) -> Path:
    return CACHE_DIR / "yfinance" / f"{cache_name(ticker)}.csv"


def network_up() -> bool:
    """Whether yfinance's host answers, asked at most once per NETWORK_CHECK_S whatever the number of tickers."""
    now = time.time()
    if now - _network[0] >= NETWORK_CHECK_S:
        try:
            socket.create_connection(PROBE_HOST, timeout=PROBE_TIMEOUT_S).close()
            _network[:] = [now, True]
        except OSError:
            _network[:] = [now, False]
    return _network[1]


def _from_live(ticker: str, start=None, end=None) -> pd.DataFrame:
    path = _cache_path(ticker)
    if path.exists() and time.time() - path.stat().st_mtime < LIVE_CACHE_TTL_S:
        cached = pd.read_csv(path, index_col="Date", parse_dates=["Date"])
        if not cached.empty:
            return cached
    if not network_up():
        wait = max(0, int(_network[0] + NETWORK_CHECK_S - time.time()))
        raise LiveDataError(f"no network: {PROBE_HOST[0]} did not answer (checked again in {wait} s)")
    try:
        import yfinance as yf

        logging.getLogger("yfinance").setLevel(logging.CRITICAL)  # it logs DNS errors as ERROR
        with warnings.catch_warnings():  # its pandas deprecation warnings are yfinance's to fix, not the user's to read
            warnings.simplefilter("ignore")
            raw = yf.download(
                ticker,
                start=start or "1990-01-01",
                end=None,
                auto_adjust=True,
                progress=False,
                timeout=LIVE_TIMEOUT_S,
                threads=False,
            )
        df = normalize_yf(raw, ticker)
    except LiveDataError:
        raise  # this symbol has no rows: the next ticker still tries
    except OSError as exc:  # the network went away since the check: skip it for every ticker until the next one
        _network[:] = [time.time(), False]
        raise LiveDataError(f"yfinance failed for {ticker!r}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # JSON errors, KeyErrors...
        raise LiveDataError(f"yfinance failed for {ticker!r}: {type(exc).__name__}: {exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path)
    except OSError as exc:  # a read-only home must not break live data
        log.warning("could not cache %s: %s", path, exc)
    return df


def next_day(ohlcv: pd.DataFrame, day) -> pd.Timestamp:
    """The target day of a forecast made as of `day`: the data's own next row (a file of prices is its own calendar,
    DESIGN "Calendars"), or past the data's end the next weekday."""
    later = ohlcv.index[ohlcv.index > pd.Timestamp(day)]
    return later[0] if len(later) else pd.Timestamp(day) + pd.tseries.offsets.BDay(1)


def load_prices(ticker: str, start=None, end=None, source: str = "auto") -> pd.DataFrame:
    """Daily OHLCV indexed by date; ``attrs["source"]`` is "live" or "snapshot".

    source="auto" tries yfinance (short timeout, cached on disk) and falls back to the snapshot;
    FORECAST_OFFLINE=1 makes "auto" skip the network.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    if not isinstance(ticker, str) or not TICKER_RE.fullmatch(ticker.strip()):
        raise UnknownTickerError(f"{ticker!r} is not a ticker symbol (letters, digits, ^ . - =; at most 15)")
    ticker = ticker.strip().upper()
    live_error = None
    if source == "live" or (source == "auto" and os.environ.get("FORECAST_OFFLINE") != "1"):
        try:
            df = _from_live(ticker, start, end)
            df = _clip(df, start, end)
            df.attrs["source"] = "live"
            return df
        except LiveDataError as exc:
            if source == "live":
                raise
            live_error = exc
            log.info("live data unavailable for %s, using the snapshot: %s", ticker, exc)
    df = _clip(_from_snapshot(ticker), start, end).copy()
    if df.empty:
        raise DataError(f"no snapshot rows for {ticker} between {start} and {end}")
    df.attrs["source"] = "snapshot"
    if live_error is not None:
        df.attrs["live_error"] = str(live_error)
    return df
