"""Which online calibrator the API serves, if any: every candidate of ledger/calibration.py run online on the record,
judged by a rule fixed before anything was measured, on the held-out series alone.

    python -m ledger.aci [--db PATH] [--json] [--write]

THE SERVING RULE (fixed 2026-12-07, before any candidate was measured; README "Calibrating the served interval"):
a calibrator is served when, on every held-out series, counting only its forecasts after the warm-up
  1. coverage is within 80% ± 1.5 points (± 2.5 on a series with fewer than 750 such forecasts),
  2. its Winkler score is ≤ 1.01 × the model's own (plain) interval's,
  3. its Winkler score is ≤ 0.95 × the rolling 20-day volatility interval's and ≤ 1.00 × GARCH(1,1)'s.
Of the candidates that pass, the one with the lowest Winkler score over the held-out series is served; if none
passes, none is served (the model's own interval, labelled method "none"). The test series play no part.
--write records the verdict in ledger/serving.json, which `make ledger` and the daily job read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ledger import calibration
from models import metrics

HELD_OUT = ("^IXIC",)  # never seen in training (the manifest's held_out)
LONG_SERIES = 750  # scored forecasts after warm-up from which the tight coverage band applies
COVERAGE_TOL = {True: 0.015, False: 0.025}  # long series -> tolerance around the level
WINKLER_VS_PLAIN = 1.01
WINKLER_VS_ROLLING = 0.95
WINKLER_VS_GARCH = 1.00
CANDIDATES = tuple(calibration.METHODS)
SERVING_FILE = Path(__file__).resolve().parent / "serving.json"


def prepare(g: pd.DataFrame) -> pd.DataFrame:
    """One ticker's scored rows in time order, on prices relative to the last close: the score and the model's q0,
    from the model's own band (plain_high), whatever was served."""
    g = g.sort_values("target_date")
    last = g["last_close"].to_numpy(float)
    mu = np.log(g["prediction"].to_numpy(float) / last)
    vol = np.maximum(g["volatility"].to_numpy(float), metrics.VOL_FLOOR)
    rel = g["close"].to_numpy(float) / last
    return pd.DataFrame({
        "target_date": g["target_date"].to_numpy(), "rel": rel, "mu": mu, "vol": vol,
        "q0": (np.log(g["plain_high"].to_numpy(float) / last) - mu) / vol, "score": np.abs(np.log(rel) - mu) / vol,
        "rolling_low": g["rolling_low"].to_numpy(float) / last, "rolling_high": g["rolling_high"].to_numpy(float) / last,
        "garch_low": g["garch_low"].to_numpy(float) / last, "garch_high": g["garch_high"].to_numpy(float) / last,
        "level": g["level"].to_numpy(float),
    })  # fmt: skip


def series_figures(g: pd.DataFrame, method: str) -> dict:
    """One ticker, one candidate, run online: figures over its forecasts after the warm-up."""
    d = prepare(g)
    level = float(d["level"].iloc[0])
    factor = calibration.run(method, d["score"].to_numpy(), float(d["q0"].iloc[0]), level)
    d = d.assign(factor=factor).iloc[calibration.WARMUP :]
    out = {"n": int(len(d))}
    for name, half in (("plain", d["q0"] * d["vol"]), ("calibrated", d["q0"] * d["factor"] * d["vol"])):
        low, high = np.exp(d["mu"] - half), np.exp(d["mu"] + half)
        out[f"coverage_{name}"] = float(np.mean((d["rel"] >= low) & (d["rel"] <= high)))
        out[f"winkler_{name}"] = metrics.winkler(d["rel"], low, high, level)
    for base in ("rolling", "garch"):
        out[f"winkler_{base}"] = metrics.winkler(d["rel"], d[f"{base}_low"], d[f"{base}_high"], level)
    out["factor_last"] = float(factor[-1]) if len(factor) else 1.0
    return out


def checks(f: dict, level: float = metrics.LEVEL) -> dict[str, bool]:
    """The rule's three clauses on one series' figures."""
    tol = COVERAGE_TOL[f["n"] >= LONG_SERIES]
    w = f["winkler_calibrated"]
    return {
        "coverage": abs(f["coverage_calibrated"] - level) <= tol + 1e-12,
        "vs_plain": w <= WINKLER_VS_PLAIN * f["winkler_plain"],
        "vs_baselines": w <= WINKLER_VS_ROLLING * f["winkler_rolling"] and w <= WINKLER_VS_GARCH * f["winkler_garch"],
    }


def verdict(scored: pd.DataFrame, held_out: tuple[str, ...] = HELD_OUT, candidates=CANDIDATES) -> dict:
    """Each candidate's figures on each held-out series, whether it passes, and the one served (or None)."""
    held = scored[scored["ticker"].isin(held_out)]
    if not len(held):
        raise ValueError(f"the record holds no forecast for the held-out series {', '.join(held_out)}: run `make ledger`")
    out = {"rule": rule_text(), "candidates": {}, "serve": None}
    best = math.inf
    for method in candidates:
        per = {}
        for ticker, g in held.groupby("ticker", sort=True):
            f = series_figures(g, method)
            per[ticker] = {**f, "checks": checks(f)}
        ok = all(all(p["checks"].values()) for p in per.values())
        n = sum(p["n"] for p in per.values())
        pooled = sum(p["winkler_calibrated"] * p["n"] for p in per.values()) / max(n, 1)
        out["candidates"][method] = {"series": per, "passes": ok, "winkler": pooled}
        if ok and pooled < best:
            best, out["serve"] = pooled, method
    return out


def rule_text() -> str:
    return (
        f"on every held-out series after the {calibration.WARMUP}-forecast warm-up: coverage within 80% ± "
        f"{COVERAGE_TOL[True] * 100:.1f} points (± {COVERAGE_TOL[False] * 100:.1f} under {LONG_SERIES} forecasts), "
        f"Winkler ≤ {WINKLER_VS_PLAIN:.2f}x the plain interval's, ≤ {WINKLER_VS_ROLLING:.2f}x rolling volatility's "
        f"and ≤ {WINKLER_VS_GARCH:.2f}x GARCH(1,1)'s"
    )


def report(db: Path, held_out: tuple[str, ...] = HELD_OUT) -> dict:
    """The verdict per model version, on the replayed (snapshot) record."""
    from ledger import read

    rows = read.scored(db)
    rows = rows[rows["source"] == "snapshot"] if len(rows) else rows
    if not len(rows):
        raise read.NoLedger("the ledger holds no replayed forecasts yet: run `make ledger` first", db)
    return {version: verdict(g, held_out) for version, g in rows.groupby("model_version")}  # ValueError: too little


def serving(path: Path = SERVING_FILE) -> dict:
    """The recorded verdict: {"model_version", "method" (None: serve the model's own interval), "decided_at"}."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"model_version": None, "method": None}


def served_method(model_version: str, path: Path = SERVING_FILE) -> str:
    """The method to serve for this model version: the recorded verdict's, or "none" when it judged another version."""
    s = serving(path)
    if s.get("model_version") != model_version:
        return "none"
    return s.get("method") or "none"


def _line(method: str, ticker: str, p: dict) -> str:
    failed = [k for k, ok in p["checks"].items() if not ok]
    return (
        f"  {method:6} {ticker}: n {p['n']}, coverage {p['coverage_calibrated']:.1%} (plain {p['coverage_plain']:.1%}), "
        f"Winkler {p['winkler_calibrated']:.5f} = x{p['winkler_calibrated'] / p['winkler_plain']:.4f} plain, "
        f"x{p['winkler_calibrated'] / p['winkler_rolling']:.4f} rolling, x{p['winkler_calibrated'] / p['winkler_garch']:.4f} "
        f"GARCH -> {'passes' if not failed else 'fails ' + ', '.join(failed)}"
    )


def main(argv: list[str] | None = None) -> int:
    from ledger.read import NoLedger
    from ledger.store import DEFAULT_DB

    p = argparse.ArgumentParser(prog="ledger.aci", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, default=DEFAULT_DB)
    p.add_argument("--json", action="store_true")
    p.add_argument("--write", action="store_true", help=f"record the verdict in {SERVING_FILE.name}")
    args = p.parse_args(argv)
    try:
        out = report(args.db)
    except (NoLedger, ValueError) as exc:
        raise SystemExit(f"ledger: {exc}") from None
    print(f"rule: {rule_text()}")
    for version, v in out.items():
        print(f"{version}:")
        for method, c in v["candidates"].items():
            for ticker, s in c["series"].items():
                print(_line(method, ticker, s))
        serve = v["serve"]
        print(f"{version}: serve {serve or 'none (the model’s own interval): no candidate meets the rule'}")
    if args.write:
        version = sorted(out)[-1]
        record = {"model_version": version, "method": out[version]["serve"], "rule": rule_text(),
                  "decided_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
        SERVING_FILE.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {SERVING_FILE}", file=sys.stderr)
    if args.json:
        print(json.dumps(out, default=lambda x: None if isinstance(x, float) and not math.isfinite(x) else x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
