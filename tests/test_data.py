"""The loader: snapshot content, offline fallback with the network blocked, yfinance quirks, errors."""

from __future__ import annotations

import socket
import time
import warnings

import pandas as pd
import pytest

import models.data as data
from models.data import LiveDataError, UnknownTickerError, load_prices, normalize_yf, snapshot_tickers


def test_snapshot_has_real_instruments():
    assert set(snapshot_tickers()) >= {"^GSPC", "^IXIC", "AAPL", "IBM", "MSFT", "GOOG"}
    assert data.SNAPSHOT.stat().st_size < 1_000_000


def test_snapshot_frame_shape(aapl):
    assert list(aapl.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert aapl.index.is_monotonic_increasing and aapl.index.is_unique
    assert aapl.attrs["source"] == "snapshot"
    assert (aapl["High"] >= aapl["Low"]).all()
    # split-adjusted: AAPL's 7:1 split of June 2014 is outside the range, but its 2:1 of Feb 2005 is not
    jump = (aapl["Close"] / aapl["Close"].shift()).loc["2005-02-25":"2005-03-02"]
    assert jump.min() > 0.8


def test_start_end_clip():
    df = load_prices("^GSPC", start="2010-01-01", end="2010-12-31", source="snapshot")
    assert df.index.min() >= pd.Timestamp("2010-01-01") and df.index.max() <= pd.Timestamp("2010-12-31")
    assert 240 < len(df) < 260


def test_auto_falls_back_to_snapshot_with_network_blocked(no_network):
    df = load_prices("MSFT")
    assert df.attrs["source"] == "snapshot"
    assert "live_error" in df.attrs
    assert len(df) > 3000


def test_live_only_raises_when_offline(no_network):
    with pytest.raises(LiveDataError):
        load_prices("MSFT", source="live")


def test_unknown_ticker_offline_lists_the_snapshot(no_network):
    with pytest.raises(UnknownTickerError) as err:
        load_prices("ZZZZ")
    msg = str(err.value)
    assert "ZZZZ" in msg and "AAPL" in msg and "^GSPC" in msg


def test_offline_env_skips_the_network(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("network touched")

    monkeypatch.setenv("FORECAST_OFFLINE", "1")
    monkeypatch.setattr(data, "_from_live", boom)
    assert load_prices("IBM").attrs["source"] == "snapshot"


@pytest.mark.parametrize("bad", ["", "   ", "A" * 20, "DROP TABLE", "../etc", None, 42])
def test_malformed_ticker(bad):
    with pytest.raises(UnknownTickerError, match="not a ticker"):
        load_prices(bad)


def test_bad_source():
    with pytest.raises(ValueError, match="source must be"):
        load_prices("AAPL", source="cloud")


def test_live_data_is_cached_on_disk(monkeypatch, tmp_path):
    calls = []
    frame = pd.DataFrame(
        {"Open": [1.0], "High": [2.0], "Low": [0.5], "Close": [1.5], "Volume": [10]},
        index=pd.DatetimeIndex(["2026-11-25"], name="Date"),
    )

    def fake_download(ticker, **kwargs):
        calls.append(ticker)
        return frame

    import yfinance

    monkeypatch.setattr(yfinance, "download", fake_download)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(data, "_network", [time.time(), True])  # the host answered: yfinance is faked
    monkeypatch.delenv("FORECAST_OFFLINE", raising=False)
    assert load_prices("NVDA").attrs["source"] == "live"
    assert load_prices("NVDA").attrs["source"] == "live"
    assert calls == ["NVDA"]


def test_live_cache_names_never_collide(monkeypatch, tmp_path):
    """Symbols that differ only in punctuation get their own cache file, so one's prices are never served for another."""
    frames = {}

    def fake_download(ticker, **kwargs):
        frames[ticker] = pd.DataFrame(
            {"Open": [1.0], "High": [2.0], "Low": [0.5], "Close": [float(len(frames) + 1)], "Volume": [10]},
            index=pd.DatetimeIndex(["2026-11-25"], name="Date"),
        )
        return frames[ticker]

    import yfinance

    monkeypatch.setattr(yfinance, "download", fake_download)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(data, "_network", [time.time(), True])  # the host answered: yfinance is faked
    monkeypatch.delenv("FORECAST_OFFLINE", raising=False)
    symbols = ["BRK-B", "BRK.B", "ES=F", "ES-F", "ES.F", "^GSPC", "5EGSPC"]
    closes = {s: load_prices(s, source="live")["Close"].iloc[-1] for s in symbols}
    assert sorted(frames) == sorted(symbols), "a symbol was answered from another symbol's cache file"
    assert len(set(closes.values())) == len(symbols)
    assert len({data._cache_path(s) for s in symbols}) == len(symbols)


def test_normalize_yf_handles_multiindex_tz_and_empty():
    idx = pd.DatetimeIndex(["2024-01-02 00:00", "2024-01-03 00:00"], tz="America/New_York")
    cols = pd.MultiIndex.from_product([["Close", "High", "Low", "Open", "Volume"], ["SPY"]], names=["Price", "Ticker"])
    raw = pd.DataFrame([[470.0, 472.0, 468.0, 469.0, 1e6], [468.0, 471.0, 467.0, 470.0, 2e6]], index=idx, columns=cols)
    df = normalize_yf(raw, "SPY")
    assert list(df.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert df.index.tz is None and df["Close"].tolist() == [470.0, 468.0]
    with pytest.raises(LiveDataError, match="no rows"):
        normalize_yf(pd.DataFrame(), "SPY")


def test_auto_checks_the_network_once_for_every_ticker(no_network, monkeypatch):
    """Offline, "auto" asks the network once per NETWORK_CHECK_S, not once per ticker, and never calls yfinance."""
    probes, real = [], socket.create_connection

    def counting(address, *a, **k):
        probes.append(address)
        return real(address, *a, **k)

    def download(*a, **k):
        raise AssertionError("yfinance called although the network check failed")

    import yfinance

    monkeypatch.setattr(socket, "create_connection", counting)
    monkeypatch.setattr(yfinance, "download", download)
    for t in ("AAPL", "MSFT", "IBM", "^IXIC"):
        df = load_prices(t)
        assert df.attrs["source"] == "snapshot" and "no network" in df.attrs["live_error"]
    assert probes == [data.PROBE_HOST]
    monkeypatch.setattr(data, "_network", [time.time() - data.NETWORK_CHECK_S, False])  # a few minutes later
    load_prices("AAPL")
    assert len(probes) == 2


def test_one_unknown_symbol_does_not_stop_live_data_for_the_others(monkeypatch, tmp_path):
    """yfinance's pandas warnings stay out of the terminal, and a symbol with no rows costs only itself."""
    frame = pd.DataFrame(
        {"Open": [1.0], "High": [2.0], "Low": [0.5], "Close": [1.5], "Volume": [10]},
        index=pd.DatetimeIndex(["2026-11-25"], name="Date"),
    )

    def fake_download(ticker, **kwargs):
        warnings.warn("The inplace keyword in DataFrame.rename is deprecated", FutureWarning, stacklevel=1)
        return pd.DataFrame() if ticker == "NOSUCH" else frame

    import yfinance

    monkeypatch.setattr(yfinance, "download", fake_download)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(data, "_network", [time.time(), True])
    monkeypatch.delenv("FORECAST_OFFLINE", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(LiveDataError, match="no rows"):
            load_prices("NOSUCH", source="live")
        assert load_prices("NVDA", source="live").attrs["source"] == "live"
    assert caught == []
