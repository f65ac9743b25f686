"""Evaluate the served model (runtime/model.onnx, through onnxruntime) against the naive forecast and the
textbook risk estimates.

    python -m models.evaluate          # writes models/metrics.json and the manifest's test_metrics

Point forecasts: the ensemble, each member alone (lstm, linear) and the naive forecast (tomorrow = today), by MAE,
RMSE, MAPE, R², MASE and directional accuracy. Intervals at 80%: the served one (the ensemble's point, the risk
model's volatility), the old one (the ensemble's point, q x volatility20), and three baselines centred on the naive
point - rolling 20-day volatility, EWMA (lambda 0.94, RiskMetrics) and GARCH(1,1) fitted on each ticker's training
returns and filtered forward with fixed parameters. Every interval is calibrated the same way (split conformal on the
validation split) and judged by coverage (overall and per volatility tercile), Winkler score, CRPS and pinball loss.
Per ticker, pooled (prices relative to the last close) and on a ticker never seen in training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from models import dataset
from models.artifacts import MANIFEST, METRICS, RUNTIME_DIR
from models.scoring import (
    POINT_MODELS,
    RISK_LABELS,
    RISK_MODELS,
    RuntimeModel,
    calibrations,
    goals,
    score,
    training_splits,
    whole_series,
)

MODELS_DIR = Path(__file__).resolve().parent


def run(runtime_dir: Path, tickers, held_out=(), limit: int | None = None, metrics_path: Path | None = None) -> dict:
    model = RuntimeModel(runtime_dir)
    val, test, spans = training_splits(model, tickers, limit)
    cals = calibrations(model, list(val.values()))
    report = {
        "model": model.manifest["name"],
        "version": model.manifest["version"],
        "level": model.manifest["calibration"]["level"],
        "spans": spans,
        "calibration_q": {k: v["q"] for k, v in cals.items()},
        "test": score(test, cals),
    }
    report["test"]["goals"] = goals(report["test"])
    held = {}
    for t in held_out:
        d = dataset.build(t)
        if limit:
            d = d.take(slice(max(0, len(d) - limit), len(d)))
        held[t] = whole_series(model, d)
        spans[t] = {
            "test_from": f"{d.dates[0]:%Y-%m-%d}",
            "test_to": f"{d.dates[-1]:%Y-%m-%d}",
            "n_test": len(d),
            "note": "never seen in training: every sample is a test sample",
        }
    if held:
        report["held_out"] = score(held, cals)
        report["held_out"]["goals"] = goals(report["held_out"])
    if metrics_path is not None:
        Path(metrics_path).write_text(json.dumps(_clean(report), indent=2, allow_nan=False) + "\n")
        _update_manifest(Path(runtime_dir), report)
    return report


def _clean(obj):
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


RISK_KEYS = ("coverage", "coverage_by_vol_tercile", "winkler", "crps", "pinball_10", "pinball_50", "pinball_90", "mean_width_pct")


def _update_manifest(runtime_dir: Path, report: dict) -> None:
    """The manifest carries the served model's test figures; its file hashes are untouched."""
    path = runtime_dir / MANIFEST
    manifest = json.loads(path.read_text())
    keep = ("mae_pct", "mape", "mase", "directional_accuracy", "interval_coverage", "r2_return", "n")

    def risk(block):
        return {m: {k: block["risk"][m][k] for k in RISK_KEYS} for m in RISK_MODELS}

    manifest["test_metrics"] = _clean(
        {
            "overall": {m: {k: v for k, v in report["test"]["overall"][m].items() if k in keep} for m in POINT_MODELS},
            "risk": risk(report["test"]),
            "risk_labels": RISK_LABELS,
            "per_ticker": {
                t: {
                    m: {k: r[m][k] for k in ("mae", "mase", "r2", "directional_accuracy", "interval_coverage") if k in r[m]}
                    for m in ("ensemble", "naive")
                }
                for t, r in report["test"]["per_ticker"].items()
            },
            "per_ticker_risk": {
                t: {m: {k: r[m][k] for k in ("coverage", "winkler")} for m in RISK_MODELS}
                for t, r in report["test"]["per_ticker_risk"].items()
            },
            "held_out": {
                t: {
                    m: {k: v for k, v in r[m].items() if k in ("mae", "mase", "directional_accuracy", "interval_coverage")}
                    for m in ("ensemble", "naive")
                }
                for t, r in report.get("held_out", {}).get("per_ticker", {}).items()
            },
            "held_out_risk": risk(report["held_out"]) if "held_out" in report else {},
            "goals": {"test": report["test"]["goals"], "held_out": report.get("held_out", {}).get("goals")},
            "calibration_q": report["calibration_q"],  # each interval's conformal quantile: the dashboard's backtest uses them
            "spans": report["spans"],  # the test period per ticker: the dashboard backtests over it
        }
    )
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def _fmt(v, pct=False):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v * 100:.1f}%" if pct else f"{v:.4g}"


def format_table(report: dict) -> str:
    """Markdown tables: point forecasts and intervals, pooled and per ticker; the README quotes this output."""
    lines = [
        f"Model {report['model']} {report['version']}; interval level {report['level']}",
        "",
        "| set | ticker | model | MAE | RMSE | MAPE % | R² (price) | R² (return) | MASE | direction |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    blocks = [(label, b) for label, b in (("test", report["test"]), ("held out", report.get("held_out"))) if b]
    for label, block in blocks:
        for name in POINT_MODELS:
            o = block["overall"][name]
            lines.append(
                f"| {label} | all (pooled, % of price) | {name} | {_fmt(o['mae_pct'])}% | {_fmt(o['rmse_pct'])}% | "
                f"{_fmt(o['mape'])} | — | {_fmt(o['r2_return'])} | **{_fmt(o['mase'])}** | "
                f"{_fmt(o['directional_accuracy'], True)} |"
            )
        for ticker, r in block["per_ticker"].items():
            for name in ("ensemble", "naive"):
                m = r[name]
                lines.append(
                    f"| {label} | {ticker} | {name} | {_fmt(m['mae'])} | {_fmt(m['rmse'])} | {_fmt(m['mape'])} | "
                    f"{_fmt(m['r2'])} | {_fmt(m['r2_return'])} | {_fmt(m['mase'])} | {_fmt(m['directional_accuracy'], True)} |"
                )
    lines += [
        "",
        "80% intervals, pooled (relative to the last close; lower scores are better):",
        "",
        "| set | interval | coverage | calm / middle / stormy third | Winkler | CRPS | pinball 10 / 50 / 90 | width |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, block in blocks:
        for name in RISK_MODELS:
            m = block["risk"][name]
            terciles = " / ".join(_fmt(v, True) for v in m["coverage_by_vol_tercile"])
            lines.append(
                f"| {label} | {RISK_LABELS[name]} | {_fmt(m['coverage'], True)} | {terciles} | **{m['winkler']:.5f}** | "
                f"{m['crps']:.6f} | {m['pinball_10']:.6f} / {m['pinball_50']:.6f} / {m['pinball_90']:.6f} | "
                f"{m['mean_width_pct']:.2f}% |"
            )
        g = block["goals"]
        lines.append(
            f"| {label} | goals | 77–83%: {g['coverage_77_83']} | stormy ≥ 75%: {g['top_tercile_75']} | "
            f"vs rolling {g['winkler_vs_rolling']:.3f}x (≤ 0.95: {g['winkler_095_rolling']}) | "
            f"vs GARCH {g['winkler_vs_garch']:.3f}x (≤ 1: {g['winkler_le_garch']}) | | |"
        )
    return "\n".join(lines)


def score_series(runtime_dir: Path, name: str, ohlcv) -> dict:
    """The served model on a series the project does not hold (another market or period): every sample is a test
    sample, the intervals keep their validation calibration, and GARCH is fitted on the series' first 70% only."""
    import pandas as pd

    model = RuntimeModel(runtime_dir)
    val, _, _ = training_splits(model, model.manifest["tickers"])
    cals = calibrations(model, list(val.values()))
    frame = ohlcv.copy()
    frame.index = pd.to_datetime(frame.index)
    d = dataset.build(name, ohlcv=frame)
    if len(d) < 100:
        raise SystemExit(f"evaluate: {name} has {len(d)} usable days after the {dataset.WINDOW}-day window; need at least 100")
    block = score({name: whole_series(model, d, frame)}, cals)
    block["goals"] = goals(block)
    return {
        "model": model.manifest["name"],
        "version": model.manifest["version"],
        "level": model.manifest["calibration"]["level"],
        "spans": {name: {"test_from": f"{d.dates[0]:%Y-%m-%d}", "test_to": f"{d.dates[-1]:%Y-%m-%d}", "n_test": len(d)}},
        "test": block,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime-dir", type=Path, default=MODELS_DIR / RUNTIME_DIR)
    p.add_argument("--out", type=Path, default=MODELS_DIR / METRICS)
    p.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="FILE",
        help="score a series the project does not hold: a CSV with Date, Open, High, Low, Close, Volume "
        "(writes nothing; prints the tables, or JSON with --json)",
    )
    p.add_argument("--name", default=None, help="--csv: the series' name in the tables (default: the file's stem)")
    p.add_argument("--json", action="store_true", help="--csv: print the report as JSON")
    args = p.parse_args(argv)
    if args.csv is not None:
        import pandas as pd

        try:
            frame = pd.read_csv(args.csv, index_col=0, parse_dates=True)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"evaluate: cannot read {args.csv}: {exc}") from None
        try:
            report = score_series(args.runtime_dir, args.name or args.csv.stem, frame)
        except ValueError as exc:  # missing columns, too short a series
            raise SystemExit(f"evaluate: {args.csv}: {exc}") from None
        print(json.dumps(_clean(report), indent=1) if args.json else format_table(report))
        return
    manifest = json.loads((args.runtime_dir / MANIFEST).read_text())
    report = run(args.runtime_dir, manifest["tickers"], manifest.get("held_out", []), metrics_path=args.out)
    print(format_table(report))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
