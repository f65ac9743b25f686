"""Evaluate the served model (runtime/model.onnx, through onnxruntime) against the naive forecast.

    python -m models.evaluate          # writes models/metrics.json and the manifest's test_metrics

Reports the ensemble, each member alone (lstm, linear) and the naive forecast (tomorrow = today), per
ticker and overall, on each training ticker's test split and on tickers never seen in training.
Overall figures pool tickers on prices relative to the last close, so no ticker dominates by price level.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from models import dataset, metrics

MODELS_DIR = Path(__file__).resolve().parent
MODEL_NAMES = ("ensemble", "lstm", "linear", "naive")


class RuntimeModel:
    """models/runtime as the function sees it: manifest + ONNX session (no torch)."""

    def __init__(self, runtime_dir: Path):
        import onnxruntime as ort

        self.dir = Path(runtime_dir)
        self.manifest = json.loads((self.dir / "manifest.json").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.dir / self.manifest["onnx"]["file"]), opts, providers=["CPUExecutionProvider"]
        )

    def returns(self, X_raw: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted log returns per model name for unstandardized windows (N, T, F)."""
        X = dataset.standardize_windows(X_raw, self.manifest["scaler"])
        ens, mem = [], []
        for i in range(0, len(X), 2048):
            e, m = self.session.run(None, {"x": X[i : i + 2048]})
            ens.append(e)
            mem.append(m)
        ens, mem = np.concatenate(ens).astype(np.float64), np.concatenate(mem).astype(np.float64)
        out = {"ensemble": ens}
        out.update({name: mem[:, i] for i, name in enumerate(self.manifest["ensemble"]["members"])})
        return out


def _score(d: dataset.TickerData, rets: np.ndarray, cal: dict) -> tuple[dict, dict]:
    pred = d.last_close * np.exp(rets)
    low, high = metrics.interval(d.last_close, rets, d.vol, cal["q"])
    arrays = {"actual": d.next_close, "pred": pred, "last": d.last_close, "low": low, "high": high}
    return metrics.price_metrics(d.next_close, pred, d.last_close, low, high), arrays


def _evaluate_set(model: RuntimeModel, sets: dict[str, dataset.TickerData], cals: dict) -> dict:
    per_ticker, pooled = {}, {m: {k: [] for k in ("actual", "pred", "last", "low", "high")} for m in MODEL_NAMES}
    for ticker, d in sets.items():
        rets = model.returns(d.X)
        per_ticker[ticker] = {}
        for name in MODEL_NAMES:
            m, arrays = _score(d, rets[name], cals[name])
            if name == "ensemble":
                conf = metrics.confidence(rets[name], d.vol, cals[name]["sigma"])
                m["mean_confidence"] = float(np.mean(conf))
            per_ticker[ticker][name] = m
            for k, v in arrays.items():
                pooled[name][k].append(v)
    overall = {
        name: metrics.pooled_metrics(*(np.concatenate(pooled[name][k]) for k in ("actual", "pred", "last", "low", "high")))
        for name in MODEL_NAMES
    }
    return {"overall": overall, "per_ticker": per_ticker}


def run(runtime_dir: Path, tickers, held_out=(), limit: int | None = None, metrics_path: Path | None = None) -> dict:
    model = RuntimeModel(runtime_dir)
    val, test, spans = {}, {}, {}
    for t in tickers:
        d = dataset.build(t)
        if limit:
            d = d.take(slice(max(0, len(d) - limit), len(d)))
        _, va, te = dataset.split_slices(len(d))
        val[t], test[t] = d.take(va), d.take(te)
        spans[t] = {
            "test_from": f"{test[t].dates[0]:%Y-%m-%d}",
            "test_to": f"{test[t].dates[-1]:%Y-%m-%d}",
            "n_test": len(test[t]),
        }
    # each member gets its own interval, calibrated on the same validation data as the served one
    vr = {t: model.returns(d.X) for t, d in val.items()}
    y = np.concatenate([d.y for d in val.values()])
    vol = np.concatenate([d.vol for d in val.values()])
    cals = {name: metrics.calibrate(y, np.concatenate([vr[t][name] for t in val]), vol) for name in MODEL_NAMES}
    cals["ensemble"] = model.manifest["calibration"]  # the served calibration, unchanged

    report = {
        "model": model.manifest["name"],
        "version": model.manifest["version"],
        "level": model.manifest["calibration"]["level"],
        "spans": spans,
        "test": _evaluate_set(model, test, cals),
    }
    held = {}
    for t in held_out:
        d = dataset.build(t)
        if limit:
            d = d.take(slice(max(0, len(d) - limit), len(d)))
        held[t] = d
        spans[t] = {
            "test_from": f"{d.dates[0]:%Y-%m-%d}",
            "test_to": f"{d.dates[-1]:%Y-%m-%d}",
            "n_test": len(d),
            "note": "never seen in training: every sample is a test sample",
        }
    if held:
        report["held_out"] = _evaluate_set(model, held, cals)

    if metrics_path is not None:
        Path(metrics_path).write_text(json.dumps(_clean(report), indent=2, allow_nan=False) + "\n")
        _update_manifest(Path(runtime_dir), report)
    return report


def _clean(obj):
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def _update_manifest(runtime_dir: Path, report: dict) -> None:
    """The manifest carries the served model's test figures; its file hashes are untouched."""
    path = runtime_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    keep = ("mae_pct", "mape", "mase", "directional_accuracy", "interval_coverage", "r2_return", "n")
    manifest["test_metrics"] = _clean(
        {
            "overall": {m: {k: v for k, v in report["test"]["overall"][m].items() if k in keep} for m in MODEL_NAMES},
            "per_ticker": {
                t: {
                    m: {k: r[m][k] for k in ("mae", "mase", "r2", "directional_accuracy", "interval_coverage") if k in r[m]}
                    for m in ("ensemble", "naive")
                }
                for t, r in report["test"]["per_ticker"].items()
            },
            "held_out": {
                t: {
                    m: {k: v for k, v in r[m].items() if k in ("mae", "mase", "directional_accuracy", "interval_coverage")}
                    for m in ("ensemble", "naive")
                }
                for t, r in report.get("held_out", {}).get("per_ticker", {}).items()
            },
            "spans": report["spans"],  # the test period per ticker: the dashboard backtests over it
        }
    )
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def _fmt(v, pct=False):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v * 100:.1f}%" if pct else f"{v:.4g}"


def format_table(report: dict) -> str:
    """Markdown tables: overall, per ticker and held out; the README quotes this output."""
    lines = [
        f"Model {report['model']} {report['version']}; interval level {report['level']}",
        "",
        "| set | ticker | model | MAE | RMSE | MAPE % | R² (price) | R² (return) | MASE | direction | coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, block in (("test", report["test"]), ("held out", report.get("held_out"))):
        if not block:
            continue
        for name in MODEL_NAMES:
            o = block["overall"][name]
            lines.append(
                f"| {label} | all (pooled, % of price) | {name} | {_fmt(o['mae_pct'])}% | {_fmt(o['rmse_pct'])}% | "
                f"{_fmt(o['mape'])} | — | {_fmt(o['r2_return'])} | **{_fmt(o['mase'])}** | "
                f"{_fmt(o['directional_accuracy'], True)} | {_fmt(o.get('interval_coverage'), True)} |"
            )
        for ticker, r in block["per_ticker"].items():
            for name in MODEL_NAMES:
                m = r[name]
                lines.append(
                    f"| {label} | {ticker} | {name} | {_fmt(m['mae'])} | {_fmt(m['rmse'])} | {_fmt(m['mape'])} | "
                    f"{_fmt(m['r2'])} | {_fmt(m['r2_return'])} | {_fmt(m['mase'])} | "
                    f"{_fmt(m['directional_accuracy'], True)} | {_fmt(m.get('interval_coverage'), True)} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime-dir", type=Path, default=MODELS_DIR / "runtime")
    p.add_argument("--out", type=Path, default=MODELS_DIR / "metrics.json")
    args = p.parse_args(argv)
    manifest = json.loads((args.runtime_dir / "manifest.json").read_text())
    report = run(args.runtime_dir, manifest["tickers"], manifest.get("held_out", []), metrics_path=args.out)
    print(format_table(report))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
