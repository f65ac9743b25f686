"""How each part of the ensemble is fitted: the LSTM and the risk model by early-stopped AdamW, the ridge member and
the weights on validation, and the likelihood validation picks. `python -m models.train` runs them in order."""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from scipy.optimize import nnls
from sklearn.linear_model import Ridge

from models import metrics
from models.net import LSTMForecaster, ModelConfig, RiskConfig, RiskForecaster, scale_free_numpy


def log(msg: str) -> None:
    print(msg, flush=True)


@torch.no_grad()
def predict(model: LSTMForecaster, X: np.ndarray, batch: int = 1024) -> np.ndarray:
    model.eval()
    out = [model(torch.from_numpy(X[i : i + batch]))[0].numpy() for i in range(0, len(X), batch)]
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


@torch.no_grad()
def evaluate_loss(model: LSTMForecaster, X: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    _, loss = model(torch.from_numpy(X), torch.from_numpy(y))
    return float(loss)


def train_lstm(cfg: ModelConfig, Xtr, ytr, Xva, yva, *, epochs, batch_size, lr, weight_decay, patience, seed, on_epoch=None):
    """Adam with early stopping on validation loss; returns the best model and its history."""
    torch.manual_seed(seed)
    model = LSTMForecaster(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    Xt, yt = torch.from_numpy(Xtr), torch.from_numpy(ytr)
    best, best_loss, bad, history = copy.deepcopy(model.state_dict()), math.inf, 0, []
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        model.train()
        order = torch.randperm(len(Xt), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            _, loss = model(Xt[idx], yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
        train_loss, val_loss = total / len(order), evaluate_loss(model, Xva, yva)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        mark = ""
        if val_loss < best_loss - 1e-6:
            best, best_loss, bad, mark = copy.deepcopy(model.state_dict()), val_loss, 0, " *best"
        else:
            bad += 1
        log(f"  epoch {epoch:2d}/{epochs}  train {train_loss:.4f}  val {val_loss:.4f}  {time.time() - t0:4.1f}s{mark}")
        if on_epoch:
            on_epoch(history[-1])
        if bad >= patience:
            log(f"  early stop: validation loss has not improved for {patience} epochs")
            break
    model.load_state_dict(best)
    model.eval()
    return model, history


def fit_linear(cfg: ModelConfig, Xtr, ytr, Xva, yva, alphas):
    """Ridge on the flattened scale-free window; alpha chosen on validation MSE."""
    ftr = scale_free_numpy(Xtr, cfg).reshape(len(Xtr), -1)
    fva = scale_free_numpy(Xva, cfg).reshape(len(Xva), -1)
    best = None
    for a in alphas:
        r = Ridge(alpha=a).fit(ftr, ytr * cfg.target_scale)
        mse = float(np.mean((r.predict(fva) / cfg.target_scale - yva) ** 2))
        if best is None or mse < best[0]:
            best = (mse, a, r)
    log(f"  linear member: ridge alpha={best[1]:g} (validation MSE {best[0]:.3e})")
    return best[2]


def fit_weights(members_val: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights for (lstm, linear) by least squares on validation; the naive forecast
    (return 0) takes what is left, so the weights sum to 1."""
    w, _ = nnls(members_val[:, :2].astype(np.float64), y.astype(np.float64))
    if w.sum() > 1.0:
        w = w / w.sum()
    return np.array([w[0], w[1], 1.0 - w.sum()])


@torch.no_grad()
def risk_std(model: RiskForecaster, X: np.ndarray, batch: int = 2048) -> np.ndarray:
    model.eval()
    out = [model(torch.from_numpy(X[i : i + batch]))[0].numpy() for i in range(0, len(X), batch)]
    return np.concatenate(out).astype(np.float64) if out else np.empty(0)


def train_risk(cfg: RiskConfig, Xtr, rtr, Xva, rva, *, epochs, batch_size, lr, patience, seed) -> tuple[RiskForecaster, list]:
    """The risk model by its negative log-likelihood on the point ensemble's residuals, early-stopped on validation."""
    torch.manual_seed(seed)
    model = RiskForecaster(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(seed)
    Xt, rt = torch.from_numpy(Xtr), torch.from_numpy(rtr.astype(np.float32))
    Xv, rv = torch.from_numpy(Xva), torch.from_numpy(rva.astype(np.float32))
    best, best_loss, bad, history = copy.deepcopy(model.state_dict()), math.inf, 0, []
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        model.train()
        order = torch.randperm(len(Xt), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            _, loss = model(Xt[idx], rt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(model(Xv, rv)[1])
        history.append({"epoch": epoch, "val_nll": val})
        mark = ""
        if val < best_loss - 1e-6:
            best, best_loss, bad, mark = copy.deepcopy(model.state_dict()), val, 0, " *best"
        else:
            bad += 1
        log(f"    {cfg.dist:9s} epoch {epoch:2d}/{epochs}  val NLL {val:.4f}  {time.time() - t0:4.1f}s{mark}")
        if bad >= patience:
            break
    model.load_state_dict(best)
    model.eval()
    return model, history


def choose_risk(candidates: dict, yva, mu_va, Xva, last_va, vol_va) -> tuple[str, dict]:
    """Validation picks the likelihood: calibrate on its first half, score the Winkler interval on its second."""
    half = len(yva) // 2
    scores = {}
    for name, model in candidates.items():
        std = risk_std(model, Xva)
        cal = metrics.calibrate(yva[:half], mu_va[:half], std[:half])
        m = metrics.risk_metrics(
            last_va[half:] * np.exp(yva[half:]), last_va[half:], mu_va[half:], std[half:], cal["q"], vol_va[half:]
        )
        scores[name] = {"winkler": m["winkler"], "coverage": m["coverage"]}
        log(f"    {name:9s} validation Winkler {m['winkler']:.5f}, coverage {m['coverage']:.3f} (second half of validation)")
    return min(scores, key=lambda k: scores[k]["winkler"]), scores
