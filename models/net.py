"""The multi-ticker LSTM and the served ensemble, in PyTorch (training and export only).

Inputs are standardized windows (B, T, F) as the API receives them. The first thing both members do
is make the window scale-free: the standardized Close column is turned back into prices and then into
ln(C_t / C_last), so ^GSPC near 2,000 and AAPL near 20 look alike. Outputs are next-day log returns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class ModelConfig:
    n_features: int = 10  # features per day (models.features.FEATURES)
    window: int = 60  # trading days per input
    hidden: int = 64  # LSTM units per layer
    layers: int = 2  # stacked LSTM layers
    dropout: float = 0.1  # between LSTM layers, training only
    close_index: int = 0  # column holding the standardized Close
    close_mean: float = 0.0  # scaler mean of Close, set from the training scaler
    close_scale: float = 1.0  # scaler scale of Close
    rel_scale: float = 10.0  # ln(C_t/C_last) is multiplied by this to sit near unit variance
    target_scale: float = 100.0  # the net learns log returns in percent, for well-sized gradients


class ScaleFree(nn.Module):
    """Replace the standardized Close with rel_scale · ln(C_t / C_last)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, T, F)
        c = self.cfg
        close = x[:, :, c.close_index] * c.close_scale + c.close_mean  # (B, T) prices
        close = torch.clamp(close, min=1e-6)
        rel = torch.log(close / close[:, -1:]) * c.rel_scale  # (B, T)
        return torch.cat([x[:, :, : c.close_index], rel.unsqueeze(-1), x[:, :, c.close_index + 1 :]], dim=-1)


class LSTMForecaster(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.scale_free = ScaleFree(cfg)
        self.lstm = nn.LSTM(
            cfg.n_features, cfg.hidden, num_layers=cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.head = nn.Linear(cfg.hidden, 1)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        """x (B, T, F) standardized; targets (B,) log returns. Returns (log-return prediction (B,), loss)."""
        assert x.ndim == 3 and x.shape[1:] == (self.cfg.window, self.cfg.n_features), (
            f"expected (B, {self.cfg.window}, {self.cfg.n_features}), got {tuple(x.shape)}"
        )
        h, _ = self.lstm(self.scale_free(x))  # (B, T, H)
        out = self.head(h[:, -1]).squeeze(-1)  # (B,) percent
        loss = None
        if targets is not None:
            loss = F.huber_loss(out, targets * self.cfg.target_scale, delta=2.0)
        return out / self.cfg.target_scale, loss


class Ensemble(nn.Module):
    """What is served: w_lstm · LSTM + w_linear · ridge + w_naive · 0 (the naive forecast's return).
    Returns (ensemble (B,), members (B, 3)) log returns; member order is MEMBERS."""

    MEMBERS = ("lstm", "linear", "naive")

    def __init__(self, lstm: LSTMForecaster, coef, intercept: float, weights):
        super().__init__()
        cfg = lstm.cfg
        self.lstm = lstm
        self.scale_free = ScaleFree(cfg)
        self.register_buffer("coef", torch.as_tensor(coef, dtype=torch.float32).reshape(cfg.window * cfg.n_features))
        self.register_buffer("intercept", torch.tensor(float(intercept), dtype=torch.float32))
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32).reshape(3))

    def forward(self, x: torch.Tensor):
        lstm, _ = self.lstm(x)  # (B,)
        flat = self.scale_free(x).reshape(x.shape[0], -1)  # (B, T*F)
        linear = (flat @ self.coef + self.intercept) / self.lstm.cfg.target_scale
        members = torch.stack([lstm, linear, torch.zeros_like(lstm)], dim=-1)  # (B, 3)
        return members @ self.weights, members


def scale_free_numpy(x, cfg: ModelConfig):
    """The ScaleFree transform for scikit-learn members, run through the very same module."""
    with torch.no_grad():
        return ScaleFree(cfg)(torch.as_tensor(x, dtype=torch.float32)).numpy()


def save_checkpoint(path, model: nn.Module, **extra) -> None:
    """A checkpoint that describes itself: its config (`model.cfg`), its weights and whatever else is passed."""
    torch.save({"model_args": asdict(model.cfg), "state_dict": model.state_dict(), **extra}, path)


def load_checkpoint(path, model_cls: type[nn.Module] | None = None, cfg_cls: type | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model from the checkpoint's own model_args; never from constants elsewhere. The point LSTM by
    default; load_risk passes the risk model's classes."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = (model_cls or LSTMForecaster)((cfg_cls or ModelConfig)(**ckpt["model_args"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt


# --- the risk model: the distribution's scale, not only its centre ----------------------------------------

LN2x4 = 4.0 * 0.6931471805599453  # Parkinson's estimator: sigma^2 = range^2 / (4 ln 2)
RISK_FEATURES = ("abs_r1", "rv5", "rv22", "rv60", "pk1", "pk5", "pk22", "vol20")


@dataclass
class RiskConfig:
    n_features: int = 10  # features per day
    window: int = 60  # trading days per input
    hidden: int = 32  # LSTM units (one layer): the correction on top of the HAR-style part
    return_index: int = 1  # column holding log_return
    range_index: int = 2  # column holding (H - L) / C
    vol_index: int = 8  # column holding volatility20
    return_mean: float = 0.0  # scaler entries of those three columns, from the training scaler
    return_scale: float = 1.0
    range_mean: float = 0.0
    range_scale: float = 1.0
    vol_mean: float = 0.0
    vol_scale: float = 1.0
    close_index: int = 0  # for the scale-free window the LSTM reads
    close_mean: float = 0.0
    close_scale: float = 1.0
    rel_scale: float = 10.0
    dist: str = "gaussian"  # "gaussian" or "student_t": the likelihood it is trained with (chosen on validation)
    dof: float = 5.0  # Student-t degrees of freedom, when dist is student_t
    floor: float = 1e-4  # no daily volatility below this (a flat series)


class RiskFeatures(nn.Module):
    """log of HAR-style realized volatilities (1, 5, 22, 60 days), Parkinson range volatilities (1, 5, 22 days)
    and volatility20, all from the window itself: (B, T, F) standardized -> (B, 8)."""

    def __init__(self, cfg: RiskConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        r = x[:, :, c.return_index] * c.return_scale + c.return_mean  # (B, T) log returns
        rng = torch.clamp(x[:, :, c.range_index] * c.range_scale + c.range_mean, min=0.0)  # (B, T)
        vol20 = x[:, -1, c.vol_index] * c.vol_scale + c.vol_mean  # (B,)

        def rv(days: int) -> torch.Tensor:
            return torch.sqrt(torch.mean(r[:, -days:] ** 2, dim=1))

        def pk(days: int) -> torch.Tensor:
            return torch.sqrt(torch.mean(rng[:, -days:] ** 2, dim=1) / LN2x4)

        parts = [torch.abs(r[:, -1]), rv(5), rv(22), rv(c.window), pk(1), pk(5), pk(22), vol20]
        return torch.log(torch.clamp(torch.stack(parts, dim=-1), min=c.floor))  # (B, 8)


class RiskForecaster(nn.Module):
    """Predicts the daily standard deviation of the next log return: a HAR-style linear model in log volatility,
    plus an LSTM's correction from the whole window. forward(x, residual=None) -> (std (B,), loss)."""

    def __init__(self, cfg: RiskConfig):
        super().__init__()
        self.cfg = cfg
        self.features = RiskFeatures(cfg)
        self.scale_free = ScaleFree(
            ModelConfig(
                n_features=cfg.n_features,
                window=cfg.window,
                close_index=cfg.close_index,
                close_mean=cfg.close_mean,
                close_scale=cfg.close_scale,
                rel_scale=cfg.rel_scale,
            )
        )
        self.har = nn.Linear(len(RISK_FEATURES), 1)
        self.lstm = nn.LSTM(cfg.n_features, cfg.hidden, num_layers=1, batch_first=True)
        self.correction = nn.Linear(cfg.hidden, 1)
        with torch.no_grad():  # start as "tomorrow's volatility = volatility20", the naive risk estimate
            self.har.weight.zero_()
            self.har.weight[0, RISK_FEATURES.index("vol20")] = 1.0
            self.har.bias.zero_()
            self.correction.weight.zero_()
            self.correction.bias.zero_()

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        c = self.cfg
        assert x.ndim == 3 and x.shape[1:] == (c.window, c.n_features), f"expected (B, {c.window}, {c.n_features})"
        h, _ = self.lstm(self.scale_free(x))  # (B, T, H)
        log_scale = self.har(self.features(x)).squeeze(-1) + self.correction(h[:, -1]).squeeze(-1)  # (B,)
        log_scale = torch.clamp(log_scale, min=math.log(c.floor), max=0.0)  # at most 100% a day
        scale = torch.exp(log_scale)
        std = scale * (math.sqrt(c.dof / (c.dof - 2.0)) if c.dist == "student_t" else 1.0)
        loss = None
        if residual is not None:
            z = residual / scale
            if c.dist == "student_t":  # negative log-likelihood of a scaled Student-t, up to a constant
                loss = torch.mean(log_scale + 0.5 * (c.dof + 1.0) * torch.log1p(z**2 / c.dof))
            else:
                loss = torch.mean(log_scale + 0.5 * z**2)
        return std, loss


class Served(nn.Module):
    """What the function runs: the point ensemble and the risk model, one graph, three outputs."""

    def __init__(self, ensemble: Ensemble, risk: RiskForecaster):
        super().__init__()
        self.ensemble, self.risk = ensemble, risk

    def forward(self, x: torch.Tensor):
        point, members = self.ensemble(x)
        std, _ = self.risk(x)
        return point, members, std


def load_risk(path) -> tuple[RiskForecaster, dict]:
    return load_checkpoint(path, RiskForecaster, RiskConfig)
