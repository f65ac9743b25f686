"""Adaptive conformal inference (Gibbs and Candès 2021), run online on the ledger's own per-ticker record, judged in
replay against the plain conformal interval the API serves. Pure functions plus a small report.

    python -m ledger.aci [--db PATH] [--json]

Each forecast's score is s = |ln(close / last_close) - ln(prediction / last_close)| / volatility (the served
interval is last_close · exp(pred_ret ± q · volatility), q fixed by split conformal on validation data). ACI keeps
a miscoverage target alpha_t per ticker: the interval at t uses the (1 - alpha_t) quantile of the ticker's last
WINDOW scores, and after the close alpha_{t+1} = alpha_t + gamma (alpha - err_t), err_t = 1 when the close fell
outside. Until WARMUP scores exist it serves the plain q. Served only if it wins on the held-out series.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from models import metrics

GAMMA = 0.005  # the paper's step size
WINDOW = 250  # the recent scores the quantile is taken over (about a trading year)
WARMUP = 50  # scores needed before ACI departs from the plain interval


def aci_q(
    scores: np.ndarray, q_plain: np.ndarray, level: float, gamma: float = GAMMA, window: int = WINDOW, warmup: int = WARMUP
) -> np.ndarray:
    """The ACI multiplier for each forecast of one ticker in time order; scores[t] is known only after t."""
    alpha_goal = 1.0 - level
    alpha = alpha_goal
    out = np.empty(len(scores))
    for t in range(len(scores)):
        past = scores[max(0, t - window) : t]
        if len(past) < warmup:
            out[t] = q_plain[t]
        elif alpha <= 0:
            out[t] = float(past.max())  # the paper's infinite interval, capped at the widest miss seen
        elif alpha >= 1:
            out[t] = 0.0
        else:
            out[t] = metrics.conformal_quantile(past, 1.0 - alpha)
        err = float(scores[t] > out[t])
        alpha += gamma * (alpha_goal - err)
    return out


def compare(scored: pd.DataFrame, gamma: float = GAMMA) -> dict:
    """Plain conformal (as served) against ACI on the same rows: coverage overall and per volatility tercile, and Winkler,
    on prices relative to the last close."""
    parts = []
    for _, g in scored.sort_values("target_date").groupby("ticker", sort=True):
        last = g["last_close"].to_numpy(float)
        mu = np.log(g["prediction"].to_numpy(float) / last)
        vol = np.maximum(g["volatility"].to_numpy(float), metrics.VOL_FLOOR)
        rel = g["close"].to_numpy(float) / last
        half_plain = np.log(g["high"].to_numpy(float) / last) - mu  # the served q · vol, recovered exactly
        score = np.abs(np.log(rel) - mu) / vol
        q = aci_q(score, half_plain / vol, float(g["level"].iloc[0]), gamma)
        parts.append(pd.DataFrame({"rel": rel, "mu": mu, "vol": vol, "half_plain": half_plain, "half_aci": q * vol,
                                   "vol20": g["vol20"].to_numpy(float)}))  # fmt: skip
    d = pd.concat(parts, ignore_index=True)
    edges = metrics.tercile_edges(d["vol20"])
    level = float(scored["level"].iloc[0])
    out = {"n": int(len(d)), "gamma": gamma}
    for name in ("plain", "aci"):
        low, high = np.exp(d["mu"] - d[f"half_{name}"]), np.exp(d["mu"] + d[f"half_{name}"])
        out[name] = {
            "coverage": float(np.mean((d["rel"] >= low) & (d["rel"] <= high))),
            "coverage_by_vol_tercile": metrics.coverage_by_tercile(d["rel"], low, high, d["vol20"], edges),
            "winkler": metrics.winkler(d["rel"], low, high, level),
        }
    out["winkler_aci_vs_plain"] = out["aci"]["winkler"] / out["plain"]["winkler"]
    return out


def wins(result: dict, level: float = metrics.LEVEL) -> bool:
    """ACI wins when its coverage is nearer the level and its Winkler score no worse."""
    closer = abs(result["aci"]["coverage"] - level) < abs(result["plain"]["coverage"] - level)
    return bool(closer and result["aci"]["winkler"] <= result["plain"]["winkler"])


def report(db: Path, held_out: tuple[str, ...] = ("^IXIC",)) -> dict:
    from ledger import read

    rows = read.scored(db)
    rows = rows[rows["source"] == "snapshot"]
    if not len(rows):
        raise SystemExit(f"ledger: no replayed forecasts in {db}: run `make ledger` first")
    out = {}
    for version, g in rows.groupby("model_version"):
        test, held = g[~g["ticker"].isin(held_out)], g[g["ticker"].isin(held_out)]
        entry = {"test": compare(test) if len(test) else None, "held_out": compare(held) if len(held) else None}
        entry["serve_aci"] = bool(entry["held_out"] and wins(entry["held_out"]))
        out[version] = entry
    return out


def _fmt(block: dict) -> str:
    t = " / ".join(f"{v:.1%}" for v in block["coverage_by_vol_tercile"])
    return f"coverage {block['coverage']:.1%} (calm / middle / stormy {t}), Winkler {block['winkler']:.5f}"


def main(argv: list[str] | None = None) -> int:
    from ledger.store import DEFAULT_DB

    p = argparse.ArgumentParser(prog="ledger.aci", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, default=DEFAULT_DB)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from ledger.read import NoLedger

    try:
        out = report(args.db)
    except NoLedger as exc:
        raise SystemExit(str(exc)) from None
    for version, e in out.items():
        for label in ("test", "held_out"):
            if e[label]:
                r = e[label]
                print(f"{version} {label} (n={r['n']}, gamma={r['gamma']}):")
                print(f"  plain conformal (served): {_fmt(r['plain'])}")
                print(f"  ACI:                      {_fmt(r['aci'])}  -> Winkler x{r['winkler_aci_vs_plain']:.4f}")
        print(f"{version}: serve ACI: {'yes' if e['serve_aci'] else 'no'} (it must win on the held-out series)")
    if args.json:
        print(json.dumps(out, default=lambda x: None if isinstance(x, float) and not math.isfinite(x) else x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
