"""The multi-ticker LSTM and the served ensemble, in PyTorch (training and export only).

Inputs are standardized windows (B, T, F) as the API receives them. The first thing both members do
is make the window scale-free: the standardized Close column is turned back into prices and then into
ln(C_t / C_last), so ^GSPC near 2,000 and AAPL near 20 look alike. Outputs are next-day log returns.
"""

from __future__ import annotations

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


def save_checkpoint(path, model: LSTMForecaster, **extra) -> None:
    torch.save({"model_args": asdict(model.cfg), "state_dict": model.state_dict(), **extra}, path)


def load_checkpoint(path) -> tuple[LSTMForecaster, dict]:
    """Rebuild the model from the checkpoint's own model_args; never from constants elsewhere."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = LSTMForecaster(ModelConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
