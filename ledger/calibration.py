"""Online calibrators of the served interval, learned per ticker from its own scored record. Pure: numpy, no I/O.

A forecast's score is s = |ln(close / last_close) - ln(prediction / last_close)| / volatility; the model's own interval
is last_close · exp(pred_ret ± q0 · volatility), q0 fixed by split conformal on validation data (the manifest's
calibration.q). A calibrator keeps its own q_t in the same units; the function serves q0 · factor with
factor = q_t / q0. Each learns from a score only after that forecast's close, and serves the model's own interval
(factor 1, method "none") until WARMUP scores are learned.

    ACI      Gibbs & Candès 2021: alpha_{t+1} = alpha_t + gamma (alpha - err_t); q_t = the (1 - alpha_t) quantile of
             the last WINDOW scores. gamma 0.005.
    DtACI    Gibbs & Candès 2022: ACI experts at eight step sizes, mixed by exponential weights on the pinball loss.
    QT       Angelopoulos, Candès & Tibshirani 2023, the quantile tracker: q_{t+1} = q_t + eta (err_t - alpha). eta 0.02.
    QT+I     the same with the paper's saturating integrator: + K_I tan(E_t log t / (t C_sat)), E_t = sum(err - alpha).
"""

from __future__ import annotations

import math

import numpy as np

from models import metrics

WARMUP = 50  # scores learned before a calibrator departs from the model's own interval
ACI_GAMMA = 0.005  # the ACI paper's step size
ACI_WINDOW = 250  # the recent scores ACI takes its quantile over (about a trading year)
QT_ETA = 0.02  # the quantile tracker's step, in score units (a score is a residual over the predicted volatility)
QTI_KI, QTI_CSAT = 1.0, 5.0  # the integrator's gain and saturation constant: chosen here, in score units
DTACI_GAMMAS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128)  # the DtACI paper's grid
DTACI_INTERVAL = 100  # the DtACI paper's local interval length I: sigma = 1 / (2I) and its eta formula


class Calibrator:
    """One ticker's online calibrator: `q` is what it serves next (score units), `update(score)` learns one close."""

    method = "none"

    def __init__(self, q0: float, level: float = metrics.LEVEL):
        self.q0, self.alpha_goal, self.n, self.q = float(q0), 1.0 - level, 0, float(q0)

    def update(self, score: float) -> None:
        self.n += 1

    def factor(self, warmup: int = WARMUP) -> float:
        """What the function multiplies the model's q by: 1 until `warmup` scores are learned."""
        return self.q / self.q0 if self.n >= warmup else 1.0


class ACI(Calibrator):
    method = "aci"

    def __init__(self, q0: float, level: float = metrics.LEVEL, gamma: float = ACI_GAMMA, window: int = ACI_WINDOW):
        super().__init__(q0, level)
        self.gamma, self.window, self.alpha, self.past = gamma, window, self.alpha_goal, []

    def _q(self, alpha: float) -> float:
        past = np.asarray(self.past[-self.window :])
        if len(past) < WARMUP:
            return self.q0
        if alpha <= 0:
            return float(past.max())  # the paper's infinite interval, capped at the widest miss seen
        if alpha >= 1:
            return 0.0
        return metrics.conformal_quantile(past, 1.0 - alpha)

    def update(self, score: float) -> None:
        err = float(score > self.q)
        self.alpha += self.gamma * (self.alpha_goal - err)
        self.past.append(float(score))
        self.n += 1
        self.q = self._q(self.alpha)


class DtACI(ACI):
    method = "dtaci"

    def __init__(self, q0: float, level: float = metrics.LEVEL, gammas=DTACI_GAMMAS, window: int = ACI_WINDOW):
        super().__init__(q0, level, gammas[0], window)
        k, a = len(gammas), self.alpha_goal
        self.gammas = np.asarray(gammas, dtype=float)
        self.alphas = np.full(k, a)
        self.weights = np.full(k, 1.0 / k)
        self.sigma = 1.0 / (2 * DTACI_INTERVAL)
        self.eta = math.sqrt(3 / DTACI_INTERVAL) * math.sqrt((math.log(k * DTACI_INTERVAL) + 2) / ((1 - a) ** 2 * a**3))

    def update(self, score: float) -> None:
        past = np.asarray(self.past[-self.window :])
        beta = float(np.mean(past >= score)) if len(past) else 1.0  # the largest miscoverage that still covers it
        d = beta - self.alphas
        loss = self.alpha_goal * d - np.minimum(0.0, d)  # the pinball loss of each expert
        w = self.weights * np.exp(-self.eta * (loss - loss.min()))
        w /= w.sum()
        self.weights = (1 - self.sigma) * w + self.sigma / len(w)
        qs = np.array([self._q(a) for a in self.alphas])
        self.alphas += self.gammas * (self.alpha_goal - (score > qs))
        self.past.append(float(score))
        self.n += 1
        self.alpha = float(self.weights @ self.alphas)
        self.q = self._q(self.alpha)


class QuantileTracker(Calibrator):
    method = "qt"

    def __init__(self, q0: float, level: float = metrics.LEVEL, eta: float = QT_ETA):
        super().__init__(q0, level)
        self.eta, self.p = eta, float(q0)

    def update(self, score: float) -> None:
        self.p = max(0.0, self.p + self.eta * (float(score > self.q) - self.alpha_goal))
        self.n += 1
        self.q = self.p


class QuantileTrackerIntegrator(QuantileTracker):
    method = "qt+i"

    def __init__(self, q0: float, level: float = metrics.LEVEL, eta: float = QT_ETA, ki: float = QTI_KI, csat: float = QTI_CSAT):
        super().__init__(q0, level, eta)
        self.ki, self.csat, self.errors, self.widest = ki, csat, 0.0, float(q0)

    def update(self, score: float) -> None:
        err = float(score > self.q)
        self.p = max(0.0, self.p + self.eta * (err - self.alpha_goal))
        self.errors += err - self.alpha_goal
        self.n += 1
        self.widest = max(self.widest, float(score))
        x = self.errors * math.log(self.n + 1) / (self.csat * (self.n + 1))
        boost = self.ki * math.tan(x) if abs(x) < math.pi / 2 else math.copysign(math.inf, x)
        self.q = min(max(0.0, self.p + boost), self.widest)  # saturation: never wider than the widest miss seen


METHODS = {c.method: c for c in (ACI, DtACI, QuantileTracker, QuantileTrackerIntegrator)}


def make(method: str, q0: float, level: float = metrics.LEVEL) -> Calibrator:
    if method == "none":
        return Calibrator(q0, level)
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose one of none, {', '.join(METHODS)}")
    return METHODS[method](q0, level)


def run(method: str, scores, q0: float, level: float = metrics.LEVEL, warmup: int = WARMUP) -> np.ndarray:
    """The factor served for each forecast of one ticker in time order: factor[t] learned from scores[:t] alone."""
    cal = make(method, q0, level)
    out = np.empty(len(scores))
    for t, s in enumerate(np.asarray(scores, dtype=float)):
        out[t] = cal.factor(warmup)
        cal.update(s)
    return out
