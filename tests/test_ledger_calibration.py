"""The online calibrators (ledger/calibration.py) and the replay's day-by-day walk (ledger/walk.py): updates by hand,
the warm-up, long-run coverage where the model's interval under-covers, and no look-ahead."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from ledger import calibration, walk
from models import metrics


def test_the_quantile_tracker_update_by_hand():
    # q += eta (err - alpha): a miss widens by eta x 0.8, a cover narrows by eta x 0.2
    qt = calibration.QuantileTracker(1.0, level=0.8, eta=0.1)
    qt.update(2.0)  # miss
    assert qt.q == pytest.approx(1.08)
    qt.update(0.5)  # covered
    assert qt.q == pytest.approx(1.06)
    qt.update(1.06)  # on the edge: covered
    assert qt.q == pytest.approx(1.04)


def test_the_aci_update_by_hand():
    # warm-up aside, q = the (1 - alpha_t) conformal quantile of the past scores; alpha += gamma (alpha_goal - err)
    aci = calibration.ACI(1.0, level=0.8, gamma=0.1)
    aci.update(2.0)  # q 1.0 misses: alpha 0.2 + 0.1 (0.2 - 1) = 0.12
    assert aci.alpha == pytest.approx(0.12) and aci.q == 1.0  # fewer than WARMUP scores: the model's q
    aci.update(0.5)  # covered: alpha 0.12 + 0.02 = 0.14
    assert aci.alpha == pytest.approx(0.14)
    for s in np.linspace(0.1, 3.0, calibration.WARMUP):
        aci.update(float(s))
    assert aci.q == metrics.conformal_quantile(np.asarray(aci.past[-calibration.ACI_WINDOW :]), 1 - aci.alpha)
    served, alpha = aci.q, aci.alpha
    aci.update(served * 1.0001)  # a miss of the interval served, whatever the score does to the next quantile
    assert aci.alpha == pytest.approx(alpha + 0.1 * (0.2 - 1.0))


@pytest.mark.parametrize("method", list(calibration.METHODS))
def test_the_warm_up_serves_the_models_interval(method):
    scores = np.full(200, 5.0)  # every one a miss: every calibrator widens
    f = calibration.run(method, scores, q0=1.0)
    assert (f[: calibration.WARMUP] == 1.0).all()
    assert f[calibration.WARMUP] > 1.0


@pytest.mark.parametrize("method", list(calibration.METHODS))
def test_each_calibrator_restores_coverage_where_the_model_under_covers(method):
    rng = np.random.default_rng(7)
    scores = np.abs(rng.standard_t(4, size=6000))
    q0 = metrics.conformal_quantile(np.abs(rng.normal(size=5000)), 0.8)  # right for a normal, too narrow for t(4)
    f = calibration.run(method, scores, q0)
    plain, calibrated = np.mean(scores <= q0), np.mean(scores[1000:] <= q0 * f[1000:])
    assert plain < 0.77 and abs(calibrated - 0.8) < 0.015, (plain, calibrated)


@pytest.mark.parametrize("method", list(calibration.METHODS))
def test_a_factor_never_depends_on_its_own_or_a_later_score(method):
    rng = np.random.default_rng(3)
    scores = np.abs(rng.normal(size=400))
    f = calibration.run(method, scores, 1.1)
    changed = scores.copy()
    changed[300:] *= 5
    g = calibration.run(method, changed, 1.1)
    assert (f[:301] == g[:301]).all() and not (f[301:] == g[301:]).all()


def test_a_learner_learns_only_closes_up_to_the_day():
    lr = walk.Learner(calibration.make("qt", 1.0))
    for d, s in [("2012-01-05", 3.0), ("2012-01-03", 3.0), ("2012-01-04", 0.1)]:
        lr.add(d, s)  # as a resumed replay holds them: later closes already in the record
    lr.learn_until("2012-01-04")
    assert lr.cal.n == 2 and lr.as_of == "2012-01-04"
    lr.learn_until("2012-01-05")
    assert lr.cal.n == 3 and lr.as_of == "2012-01-05"
    # in its warm-up the state labels it: the function serves the model's own interval and says how much is learned
    assert lr.entry() == {"method": "none", "factor": 1.0, "as_of": "2012-01-05", "n": 3}
    for i in range(calibration.WARMUP):
        lr.add(f"2012-02-{i % 28 + 1:02d}", 3.0)
    lr.learn_until("2012-03-01")
    assert lr.entry() == {"factor": lr.cal.q, "as_of": "2012-02-28", "n": 3 + calibration.WARMUP}


def fake_api(q0: float, published: list):
    """Answers as the function would under the last published state: the model's interval times the ticker's factor."""

    def ask(pairs):
        doc = published[-1]
        out = []
        for t, r in pairs:
            entry = doc["tickers"].get(t, {})
            factor = entry.get("factor", 1.0) if entry.get("method") != "none" else 1.0
            mu, vol = r["mu"], r["vol"]
            last = r["last_close"]
            half = q0 * factor * vol
            answer = {"prediction": last * math.exp(mu), "volatility": vol, "factor": factor}
            answer |= {"as_of_state": entry.get("as_of"), "low": last * math.exp(mu - half), "high": last * math.exp(mu + half)}
            out.append(answer)
        return out

    return ask


def test_the_walk_serves_each_day_only_what_the_closes_before_it_taught():
    """End to end over two tickers with different calendars: every recorded factor equals the offline run over that
    ticker's scores in date order, and the state each forecast saw had learned no close after its as-of day."""
    rng = np.random.default_rng(11)
    q0, card = 1.1, {"calibration": {"q": 1.1, "level": 0.8}}
    work, closes = [], {}
    for ticker, n, step in (("AAA", 160, 1), ("BBB", 120, 2)):
        days = [dt.date(2012, 1, 2) + dt.timedelta(days=step * i) for i in range(n + 1)]
        last = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n + 1)))
        reqs = [{"as_of": pd.Timestamp(days[i]), "target": str(days[i + 1]), "last_close": float(last[i]),
                 "mu": float(rng.normal(0, 0.001)), "vol": 0.01} for i in range(n)]  # fmt: skip
        closes[ticker] = {str(days[i + 1]): float(last[i + 1] * math.exp(rng.standard_t(3) * 0.012)) for i in range(n)}
        work.append((ticker, reqs, None))
    learners = walk.learners_for("qt", card, ["AAA", "BBB"], [], closes)
    published, rows = [], []
    n = walk.walk(
        fake_api(q0, published),
        lambda chunk, answers: rows.extend(zip(chunk, answers, strict=True)) or len(chunk),
        work,
        learners,
        closes,
        publish=published.append,
        document=lambda ls: walk.state_document("v1", "qt", ls),
    )
    assert n == 280 and len(published) > 100  # the state moved nearly every day
    for ticker in ("AAA", "BBB"):
        mine = sorted(((r["target"], r, a) for (t, r, _), a in rows if t == ticker), key=lambda x: x[0])
        scores = [walk.score(a["prediction"], r["last_close"], a["volatility"], closes[ticker][tg]) for tg, r, a in mine]
        offline = calibration.run("qt", scores, q0)
        assert [a["factor"] for _, _, a in mine] == pytest.approx(list(offline), rel=1e-12)
        assert all(a["as_of_state"] is None or a["as_of_state"] <= f"{r['as_of']:%Y-%m-%d}" for _, r, a in mine)


def test_the_daily_jobs_state_is_what_the_whole_record_teaches(tmp_path):
    """walk.learned_state (the daily job's, locally): each ticker's scored forecasts in date order, as calibration.run
    would learn them; a forecast whose close has not arrived teaches nothing."""
    import datetime as dt

    from ledger.store import Outcome, SqliteStore
    from tests.test_track_record import row

    rng = np.random.default_rng(2)
    rows, outs, scores = [], [], []
    start = dt.date(2012, 1, 3)
    for i in range(120):
        as_of, target = start + dt.timedelta(days=i), start + dt.timedelta(days=i + 1)
        rows.append(row("AAPL", target, "v1", "2026-11-01T21:00:00Z", as_of, 100.0, "snapshot"))
        if i < 110:  # the last 10 closes have not arrived
            close = 100.0 * float(np.exp(rng.standard_t(3) * 0.012))
            outs.append(Outcome("AAPL", str(target), close, "snapshot", "2026-11-01T21:00:00Z"))
            scores.append(walk.score(100.1, 100.0, 0.01, close))
    with SqliteStore(tmp_path / "l.sqlite") as s:
        s.record(rows)
        s.add_outcomes(outs)
        doc = walk.learned_state(s.conn, {"version": "v1", "calibration": {"q": 1.1, "level": 0.8}}, "qt")
    cal = calibration.make("qt", 1.1)
    for sc in scores:
        cal.update(sc)
    assert doc["method"] == "qt" and doc["model_version"] == "v1"
    assert doc["tickers"]["AAPL"] == {"factor": pytest.approx(cal.q / 1.1, rel=1e-12), "as_of": "2012-04-22", "n": 110}
