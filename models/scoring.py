"""The served model and the textbook risk baselines on the same samples: each one's centre and volatility per slice,
one conformal calibration for all, their scores and the goals they are held to (onnxruntime, no torch)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import dataset, metrics
from models.artifacts import MANIFEST
from models.data import load_prices
from models.features import feature_frame

POINT_MODELS = ("ensemble", "lstm", "linear", "naive")
RISK_MODELS = ("served", "ensemble_vol20", "rolling20", "ewma", "garch")
RISK_LABELS = {
    "served": "served: ensemble point, risk model's volatility",
    "ensemble_vol20": "old served: ensemble point, q x volatility20",
    "rolling20": "naive point, rolling 20-day volatility",
    "ewma": "naive point, EWMA volatility (lambda 0.94)",
    "garch": "naive point, GARCH(1,1) volatility",
}


class RuntimeModel:
    """models/runtime as the function sees it: manifest + ONNX session (no torch)."""

    def __init__(self, runtime_dir: Path):
        import onnxruntime as ort

        self.dir = Path(runtime_dir)
        self.manifest = json.loads((self.dir / MANIFEST).read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.dir / self.manifest["onnx"]["file"]), opts, providers=["CPUExecutionProvider"]
        )

    def predict(self, X_raw: np.ndarray) -> dict[str, np.ndarray]:
        """Log returns per point model, and the risk model's volatility, for unstandardized windows (N, T, F)."""
        X = dataset.standardize_windows(X_raw, self.manifest["scaler"])
        outs = self.manifest["onnx"]["outputs"]
        parts: list[list[np.ndarray]] = [[] for _ in outs]
        for i in range(0, len(X), 2048):
            for k, arr in enumerate(self.session.run(outs, {"x": X[i : i + 2048]})):
                parts[k].append(arr)
        got = {name: np.concatenate(p).astype(np.float64) for name, p in zip(outs, parts, strict=True)}
        out = {"ensemble": got["ensemble"], "volatility": got["volatility"]}
        out.update({name: got["members"][:, i] for i, name in enumerate(self.manifest["ensemble"]["members"])})
        return out

    def served(self, X_raw: np.ndarray, last_close: np.ndarray) -> dict[str, np.ndarray]:
        """Exactly what the function answers for these windows: prediction, interval, confidence, volatility."""
        p = self.predict(X_raw)
        cal = self.manifest["calibration"]
        vol = np.maximum(p["volatility"], cal["vol_floor"])
        low, high = metrics.interval(last_close, p["ensemble"], vol, cal["q"])
        return {
            "prediction": last_close * np.exp(p["ensemble"]),
            "low": low,
            "high": high,
            "volatility": vol,
            "confidence": metrics.confidence(p["ensemble"], vol, cal["sigma"]),
        }


@dataclass
class Slice:
    """One ticker's samples in one split, with every model's centre and volatility for them."""

    data: dataset.TickerData
    centre: dict[str, np.ndarray]  # point models' log returns
    scale: dict[str, np.ndarray]  # risk models' volatilities


def baseline_scales(d: dataset.TickerData, returns, train_end) -> dict[str, np.ndarray]:
    """Rolling, EWMA and GARCH volatility forecasts for the samples of `d`, each made with data up to its day only;
    GARCH's parameters come from the returns up to `train_end`."""
    ewma = metrics.ewma_volatility(returns.to_numpy())
    g = metrics.fit_garch(returns[returns.index <= train_end].to_numpy())
    garch = metrics.garch_volatility(returns.to_numpy(), g["omega"], g["alpha"], g["beta"], g["init_var"])
    pos = returns.index.get_indexer(d.dates)
    assert (pos >= 0).all(), f"{d.ticker}: sample dates missing from the return series"
    return {"rolling20": d.vol, "ewma": ewma[pos], "garch": garch[pos]}


def make_slices(model: RuntimeModel, d: dataset.TickerData, parts: dict[str, slice], train_end, ohlcv=None) -> dict[str, Slice]:
    """One ticker's samples cut into `parts`: its prices read and its GARCH fitted once for all of them."""
    returns = feature_frame(load_prices(d.ticker, source="snapshot") if ohlcv is None else ohlcv)["log_return"]
    base = baseline_scales(d, returns, train_end)
    out = {}
    for name, part in parts.items():
        piece = d.take(part)
        p = model.predict(piece.X)
        centre = {k: p[k] for k in ("ensemble", "lstm", "linear")} | {"naive": np.zeros(len(piece))}
        scale = {"served": p["volatility"], "ensemble_vol20": piece.vol} | {k: v[part] for k, v in base.items()}
        out[name] = Slice(piece, centre, scale)
    return out


def training_splits(model: RuntimeModel, tickers, limit: int | None = None) -> tuple[dict, dict, dict]:
    """(validation slices, test slices, test spans) of the training tickers."""
    val, test, spans = {}, {}, {}
    for t in tickers:
        d = dataset.build(t)
        if limit:
            d = d.take(slice(max(0, len(d) - limit), len(d)))
        tr, va, te = dataset.split_slices(len(d))
        cut = make_slices(model, d, {"val": va, "test": te}, d.dates[tr][-1])
        val[t], test[t] = cut["val"], cut["test"]
        spans[t] = {
            "test_from": f"{d.dates[te][0]:%Y-%m-%d}",
            "test_to": f"{d.dates[te][-1]:%Y-%m-%d}",
            "n_test": len(d.dates[te]),
        }
    return val, test, spans


def whole_series(model: RuntimeModel, d: dataset.TickerData, ohlcv=None) -> Slice:
    """Every sample of a series the model never trained on; GARCH's parameters come from its first 70% only."""
    tr, _, _ = dataset.split_slices(len(d))
    return make_slices(model, d, {"all": slice(None)}, d.dates[tr][-1], ohlcv)["all"]


RISK_CENTRE = {"served": "ensemble", "ensemble_vol20": "ensemble", "rolling20": "naive", "ewma": "naive", "garch": "naive"}


def calibrations(model: RuntimeModel, val: list[Slice]) -> dict:
    """Each interval's conformal calibration on the same validation split; the served one is the manifest's own."""
    y = np.concatenate([s.data.y for s in val])
    cals = {}
    for name in RISK_MODELS:
        mu = np.concatenate([s.centre[RISK_CENTRE[name]] for s in val])
        scale = np.concatenate([s.scale[name] for s in val])
        cals[name] = metrics.calibrate(y, mu, scale, scale_name=name)
    cals["served"] = model.manifest["calibration"]
    return cals


def score(slices: dict[str, Slice], cals: dict) -> dict:
    per_ticker, pooled = {}, {}
    for ticker, s in slices.items():
        d = s.data
        per_ticker[ticker] = {"point": {}, "risk": {}}
        for name in POINT_MODELS:
            per_ticker[ticker]["point"][name] = metrics.price_metrics(
                d.next_close, d.last_close * np.exp(s.centre[name]), d.last_close
            )
        for name in RISK_MODELS:
            per_ticker[ticker]["risk"][name] = metrics.risk_metrics(
                d.next_close, d.last_close, s.centre[RISK_CENTRE[name]], s.scale[name], cals[name]["q"], d.vol
            )
        conf = metrics.confidence(
            s.centre["ensemble"], np.maximum(s.scale["served"], cals["served"]["vol_floor"]), cals["served"]["sigma"]
        )
        per_ticker[ticker]["point"]["ensemble"]["mean_confidence"] = float(np.mean(conf))
        per_ticker[ticker]["point"]["ensemble"]["interval_coverage"] = per_ticker[ticker]["risk"]["served"]["coverage"]
    cat = {k: np.concatenate([getattr(s.data, k) for s in slices.values()]) for k in ("next_close", "last_close")}
    vol = np.concatenate([s.data.vol for s in slices.values()])
    edges = metrics.tercile_edges(vol)
    for name in POINT_MODELS:
        pred = cat["last_close"] * np.exp(np.concatenate([s.centre[name] for s in slices.values()]))
        pooled.setdefault("point", {})[name] = metrics.pooled_metrics(cat["next_close"], pred, cat["last_close"])
    for name in RISK_MODELS:
        mu = np.concatenate([s.centre[RISK_CENTRE[name]] for s in slices.values()])
        scale = np.concatenate([s.scale[name] for s in slices.values()])
        pooled.setdefault("risk", {})[name] = metrics.risk_metrics(
            cat["next_close"], cat["last_close"], mu, scale, cals[name]["q"], vol, edges=edges
        )
    pooled["point"]["ensemble"]["interval_coverage"] = pooled["risk"]["served"]["coverage"]
    pooled["vol_tercile_edges"] = list(edges)
    return {
        "overall": pooled["point"],
        "risk": pooled["risk"],
        "vol_tercile_edges": pooled["vol_tercile_edges"],
        "per_ticker": {t: r["point"] for t, r in per_ticker.items()},
        "per_ticker_risk": {t: r["risk"] for t, r in per_ticker.items()},
    }


def goals(block: dict) -> dict:
    """The issue's goals, checked: coverage 77-83% and >= 75% in the stormiest third; Winkler <= 0.95x rolling and
    <= GARCH."""
    r = block["risk"]
    s = r["served"]
    return {
        "coverage_77_83": 0.77 <= s["coverage"] <= 0.83,
        "top_tercile_75": s["coverage_by_vol_tercile"][2] >= 0.75,
        "winkler_vs_rolling": s["winkler"] / r["rolling20"]["winkler"],
        "winkler_vs_garch": s["winkler"] / r["garch"]["winkler"],
        "winkler_095_rolling": s["winkler"] <= 0.95 * r["rolling20"]["winkler"],
        "winkler_le_garch": s["winkler"] <= r["garch"]["winkler"],
    }
