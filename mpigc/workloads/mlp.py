"""A one-hidden-layer tanh network with a scalar output and squared loss.

Prediction ŷ(x) = w2 · tanh(x W1 + b1) + b2 with ``hidden`` units. The
parameters are one flat vector θ of length d = features·hidden + 2·hidden + 1,
laid out as [W1 (features × hidden, row-major), b1, w2, b2]; :func:`unpack`
gives views into it. The objective is f(θ) = Σ_r (ŷ(x_r) − y_r)² / (2n).
"""
from __future__ import annotations

import numpy as np

from mpigc.seeding import stream
from mpigc.workloads.base import WORKLOADS, Objective


def unpack(theta: np.ndarray, features: int, hidden: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Split a flat parameter vector into views W1, b1, w2 and the scalar b2."""
    k = features * hidden
    w1 = theta[:k].reshape(features, hidden)
    return w1, theta[k:k + hidden], theta[k + hidden:k + 2 * hidden], float(theta[k + 2 * hidden])


def pack(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: float) -> np.ndarray:
    """Join W1, b1, w2 and b2 into one flat parameter vector."""
    return np.concatenate([np.ravel(w1), b1, w2, [b2]])


def _draw(rng: np.random.Generator, features: int, hidden: int, bias: float) -> np.ndarray:
    """Draw W1 ~ N(0, 1/features), w2 ~ N(0, 1/hidden), b1 ~ N(0, bias²), b2 = 0."""
    w1 = rng.standard_normal((features, hidden)) / np.sqrt(features)
    b1 = bias * rng.standard_normal(hidden)
    w2 = rng.standard_normal(hidden) / np.sqrt(hidden)
    return pack(w1, b1, w2, 0.0)


@WORKLOADS.register("mlp")
class MLP(Objective):
    """Regression with a small tanh MLP; synthetic targets from a planted MLP plus noise."""

    name = "mlp"

    @staticmethod
    def dimension(features: int, hidden: int) -> int:
        """Return d = features·hidden + hidden + hidden + 1."""
        return int(features) * int(hidden) + 2 * int(hidden) + 1

    def initial_model(self) -> np.ndarray:
        """Return θ₀ from ``stream(seed, "init")``: scaled Gaussian weights, zero biases."""
        return _draw(stream(self.seed, "init"), self.features, self.hidden, 0.0)

    def planted(self) -> np.ndarray:
        """Return the teacher network's parameters, from ``stream(seed, "model")``."""
        return _draw(stream(self.seed, "model"), self.features, self.hidden, 0.5)

    def predict(self, model: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Return the network's outputs ŷ on rows ``x``."""
        w1, b1, w2, b2 = unpack(model, self.features, self.hidden)
        return np.tanh(x @ w1 + b1) @ w2 + b2

    def targets(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Return the teacher's outputs plus noise·ε."""
        return self.predict(self.truth(), x) + self.noise * eps

    def evaluate(self, model: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Return the backpropagated gradient and the loss Σ_r (ŷ_r − y_r)² / 2."""
        w1, b1, w2, b2 = unpack(model, self.features, self.hidden)
        h = np.tanh(x @ w1 + b1)
        residual = h @ w2 + b2 - y  # dLoss/dŷ per row
        dpre = np.outer(residual, w2) * (1.0 - h * h)  # dLoss/d(x W1 + b1)
        grad = pack(x.T @ dpre, dpre.sum(axis=0), h.T @ residual, float(residual.sum()))
        return grad, float(residual @ residual) / 2
