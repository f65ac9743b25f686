"""Train the multi-ticker LSTM, fit the ensemble around it, export it and evaluate what is served.

    python -m models.train                     # full run on the bundled snapshot (a few minutes, 2 cores)
    python -m models.train --epochs 1 --limit 300 --out-dir /tmp/m   # smoke run in seconds

Writes models/lstm_multi_ticker.pth (self-describing checkpoint), models/scaler_ensemble_multi.pkl
(scaler + linear member + ensemble weights + calibration), models/runtime/ (ONNX + manifest.json)
and models/metrics.json. Only the validation split chooses anything; the test split is read once,
by models.evaluate, after everything is frozen.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import joblib
import numpy as np
import torch

from models import dataset, metrics
from models.artifacts import BUNDLE, CHECKPOINT, METRICS, RISK_CHECKPOINT, RUNTIME_DIR
from models.features import CLOSE, FEATURES, VOLATILITY, WINDOW
from models.fitting import choose_risk, fit_linear, fit_weights, log, risk_std, train_lstm, train_risk
from models.net import Ensemble, ModelConfig, RiskConfig, RiskForecaster, save_checkpoint

MODELS_DIR = Path(__file__).resolve().parent

# defaults together, as the README quotes them
DEFAULTS = dict(
    epochs=20,
    batch_size=128,
    lr=1e-3,
    weight_decay=1e-5,
    hidden=64,
    layers=2,
    dropout=0.1,
    patience=4,
    seed=1337,
    ridge_alphas=(1.0, 10.0, 100.0, 1000.0, 10000.0),
    interval="risk",  # "risk": the risk model's volatility forecast; "vol20": the old q x volatility20
    risk_hidden=32,  # the risk model's LSTM units
    risk_epochs=12,
    risk_lr=3e-3,
    risk_dists=("gaussian", "student_t"),  # likelihoods tried; validation chooses (Winkler score)
)


def prepare(tickers, limit: int | None, window_len: int = WINDOW):
    """Per-ticker samples split chronologically, and the scaler fitted on training rows only."""
    parts = {}
    for t in tickers:
        d = dataset.build(t, window_len=window_len)
        if limit:
            d = d.take(slice(max(0, len(d) - limit), len(d)))
        tr, va, te = dataset.split_slices(len(d))
        parts[t] = {"train": d.take(tr), "val": d.take(va), "test": d.take(te)}
        log(
            f"  {t:6s} {len(d):5d} samples  train {parts[t]['train'].dates[0]:%Y-%m-%d}.."
            f"  val {parts[t]['val'].dates[0]:%Y-%m-%d}..  test {parts[t]['test'].dates[0]:%Y-%m-%d}.."
            f"{parts[t]['test'].dates[-1]:%Y-%m-%d}"
        )
    scaler = dataset.fit_scaler([p["train"] for p in parts.values()])
    return parts, scaler


def stack(parts: dict, split: str, scaler: dict):
    ds = [p[split] for p in parts.values()]
    X = dataset.standardize_windows(np.concatenate([d.X for d in ds]), scaler)
    y = np.concatenate([d.y for d in ds]).astype(np.float32)
    vol = np.concatenate([d.vol for d in ds])
    return X, y, vol


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tickers", nargs="+", default=list(dataset.TRAIN_TICKERS))
    p.add_argument("--held-out", nargs="*", default=list(dataset.HELD_OUT_TICKERS))
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"])
    p.add_argument("--layers", type=int, default=DEFAULTS["layers"])
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"])
    p.add_argument("--patience", type=int, default=DEFAULTS["patience"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--limit", type=int, default=None, help="keep only the newest N samples per ticker (smoke runs)")
    p.add_argument("--out-dir", type=Path, default=MODELS_DIR, help="where the .pth, .pkl, runtime/ and metrics.json go")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run-name", default=None, help="the MLflow run's name (default: MLflow picks one)")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: financial-forecasting)")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    p.add_argument(
        "--interval",
        choices=["risk", "vol20"],
        default=DEFAULTS["interval"],
        help="the served interval's volatility: the risk model (default) or the old q x volatility20",
    )
    p.add_argument("--risk-epochs", type=int, default=DEFAULTS["risk_epochs"])
    p.add_argument("--risk-hidden", type=int, default=DEFAULTS["risk_hidden"])
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    np.random.seed(args.seed)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    log(f"[1/6] data: {', '.join(args.tickers)} (bundled snapshot), window {WINDOW} x {len(FEATURES)} features")
    parts, scaler = prepare(args.tickers, args.limit)
    Xtr, ytr, _ = stack(parts, "train", scaler)
    Xva, yva, vva = stack(parts, "val", scaler)
    log(f"  {len(Xtr)} training and {len(Xva)} validation samples; scaler fitted on training rows only")
    params = {
        "window": WINDOW,
        "features": list(FEATURES),
        "tickers": args.tickers,
        "held_out": args.held_out,
        "members": list(Ensemble.MEMBERS),
        "limit": args.limit,
        **{k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "hidden", "layers", "dropout", "patience", "seed")},
        "interval": args.interval,
        "risk_epochs": args.risk_epochs,
        "risk_hidden": args.risk_hidden,
    }
    track = None
    if not args.no_track:
        from models import tracking

        track = tracking
        run = tracking.start(args.run_name, params, **({"experiment": args.experiment} if args.experiment else {}))
        log(f"  MLflow run {run.info.run_name} ({run.info.run_id}) in {tracking.tracking_uri()}")

    cfg = ModelConfig(
        n_features=len(FEATURES),
        window=WINDOW,
        hidden=args.hidden,
        layers=args.layers,
        dropout=args.dropout,
        close_index=CLOSE,
        close_mean=float(scaler["mean"][CLOSE]),
        close_scale=float(scaler["scale"][CLOSE]),
    )
    log(f"[2/6] LSTM {cfg.layers}x{cfg.hidden}, up to {args.epochs} epochs, seed {args.seed}")
    try:
        lstm, history = train_lstm(
            cfg,
            Xtr,
            ytr,
            Xva,
            yva,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=DEFAULTS["weight_decay"],
            patience=args.patience,
            seed=args.seed,
            on_epoch=track.log_epoch if track else None,
        )
    except BaseException:
        if track:
            track.abort()
        raise

    log("[3/6] ensemble: linear member and weights fitted on validation")
    ridge = fit_linear(cfg, Xtr, ytr, Xva, yva, DEFAULTS["ridge_alphas"])
    ens = Ensemble(lstm, ridge.coef_, float(ridge.intercept_), [1.0, 0.0, 0.0]).eval()
    with torch.no_grad():
        _, members_val = ens(torch.from_numpy(Xva))
    weights = fit_weights(members_val.numpy(), yva)
    ens.weights.copy_(torch.as_tensor(weights, dtype=torch.float32))
    with torch.no_grad():
        mu_va = ens(torch.from_numpy(Xva))[0].numpy().astype(np.float64)
        mu_tr = ens(torch.from_numpy(Xtr))[0].numpy().astype(np.float64)
    log(f"  weights lstm {weights[0]:.3f}  linear {weights[1]:.3f}  naive {weights[2]:.3f}")

    risk_cfg = RiskConfig(
        n_features=len(FEATURES),
        window=WINDOW,
        hidden=args.risk_hidden,
        close_index=CLOSE,
        close_mean=float(scaler["mean"][CLOSE]),
        close_scale=float(scaler["scale"][CLOSE]),
        return_index=FEATURES.index("log_return"),
        range_index=FEATURES.index("range_hl"),
        vol_index=VOLATILITY,
        return_mean=float(scaler["mean"][FEATURES.index("log_return")]),
        return_scale=float(scaler["scale"][FEATURES.index("log_return")]),
        range_mean=float(scaler["mean"][FEATURES.index("range_hl")]),
        range_scale=float(scaler["scale"][FEATURES.index("range_hl")]),
        vol_mean=float(scaler["mean"][VOLATILITY]),
        vol_scale=float(scaler["scale"][VOLATILITY]),
    )
    last_va = np.concatenate([p["val"].last_close for p in parts.values()])
    risk_scores: dict = {}
    if args.interval == "risk":
        log(f"[4/6] risk model: HAR-style log volatility + LSTM 1x{args.risk_hidden} correction, by likelihood on the residuals")
        candidates, histories = {}, {}
        for dist in DEFAULTS["risk_dists"]:
            c = RiskConfig(**{**asdict(risk_cfg), "dist": dist})
            candidates[dist], histories[dist] = train_risk(
                c,
                Xtr,
                ytr - mu_tr,
                Xva,
                yva - mu_va,
                epochs=args.risk_epochs,
                batch_size=256,
                lr=DEFAULTS["risk_lr"],
                patience=3,
                seed=args.seed,
            )
        chosen, risk_scores = choose_risk(candidates, yva, mu_va, Xva, last_va, vva)
        risk = candidates[chosen]
        std_va = risk_std(risk, Xva)
        calibration = metrics.calibrate(yva, mu_va, std_va, scale_name="the risk model's predicted volatility")
        calibration["risk"] = {"dist": chosen, "validation": risk_scores, "history": histories[chosen]}
        log(f"  chose {chosen}; interval q={calibration['q']:.3f} x predicted volatility at level {calibration['level']}")
    else:
        log("[4/6] risk model: none (--interval vol20): the interval is q x volatility20, as before")
        risk = RiskForecaster(risk_cfg).eval()  # its initial state is exactly volatility20 (see RiskForecaster)
        calibration = metrics.calibrate(yva, mu_va, vva)
    save_checkpoint(out / RISK_CHECKPOINT, risk, interval=args.interval, scores=risk_scores)

    save_checkpoint(
        out / CHECKPOINT,
        lstm,
        features=list(FEATURES),
        window=WINDOW,
        scaler=scaler,
        tickers=args.tickers,
        history=history,
        params=params,
    )
    joblib.dump(
        {
            "scaler": scaler,
            "linear": ridge,
            "weights": weights.tolist(),
            "members": list(Ensemble.MEMBERS),
            "calibration": calibration,
            "model_args": asdict(cfg),
            "params": params,
        },
        out / BUNDLE,
    )
    log(f"  saved {out / CHECKPOINT} and {out / BUNDLE}")

    from models import evaluate, export  # after training: export needs the files just written

    log("[5/6] export to ONNX for the function")
    manifest = export.export(out, out / RUNTIME_DIR)
    log(f"  {out / 'runtime'}: version {manifest['version']}, parity with PyTorch {manifest['export_parity_max_abs']:.1e}")

    log("[6/6] evaluate the served model on the test split (and on held-out tickers), beside the risk baselines")
    report = evaluate.run(out / RUNTIME_DIR, args.tickers, args.held_out, limit=args.limit, metrics_path=out / METRICS)
    log(evaluate.format_table(report))
    if track:
        speed = export.measure_latency(out / RUNTIME_DIR)
        run_id = track.finish(
            report,
            {
                **speed,
                "val_loss_best": min(h["val_loss"] for h in history),
                "epochs_run": len(history),
                "train_seconds": time.time() - t_start,
            },
            out,
        )
        report["run_id"] = run_id
        log(f"  logged to MLflow: run {run_id} (p50 {speed['latency_p50_us']:.0f} us, {speed['model_bytes'] / 1e3:.0f} kB)")
    log(f"done in {time.time() - t_start:.0f}s")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
