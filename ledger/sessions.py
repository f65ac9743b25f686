"""NYSE trading sessions from exchange-calendars (a maintained calendar: weekends, holidays, and the unscheduled
closures such as 2012's Hurricane Sandy and 2018-12-05), so a forecast's target day is a day the market opens."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pandas as pd

EXCHANGE = "XNYS"
FIRST = "1990-01-02"  # the bundled data starts in 1999; the calendar's default window is only 20 years


@lru_cache(maxsize=1)
def _calendar():
    import warnings

    import exchange_calendars as xc

    with warnings.catch_warnings():  # its pandas 3 deprecation notices are its own business, not the ledger's user's
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return xc.get_calendar(EXCHANGE, start=FIRST)


def _day(day) -> pd.Timestamp:
    ts = pd.Timestamp(day)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return ts.normalize()


def is_session(day) -> bool:
    return bool(_calendar().is_session(_day(day)))


def next_session(day) -> dt.date:
    """The first NYSE session strictly after `day` (which may itself be a weekend or a holiday)."""
    cal = _calendar()
    d = _day(day)
    if d > cal.last_session - pd.Timedelta(days=7):
        raise ValueError(
            f"{d.date()} is past the trading calendar's horizon ({cal.last_session.date()}): upgrade exchange-calendars"
        )
    return cal.date_to_session(d + pd.Timedelta(days=1), direction="next").date()


def sessions(start, end) -> list[dt.date]:
    """Every NYSE session in [start, end]."""
    return [ts.date() for ts in _calendar().sessions_in_range(_day(start), _day(end))]
