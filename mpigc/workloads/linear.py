"""Linear models: least squares and binary logistic regression (d = features)."""
from __future__ import annotations

import numpy as np

from mpigc.errors import InputError
from mpigc.seeding import stream
from mpigc.workloads.base import WORKLOADS, Objective
from mpigc.workloads.data import SyntheticData


class LinearModel(Objective):
    """A linear model θ ∈ R^features with a planted θ* ~ N(0, I/features) for synthetic data."""

    writes_into = True
    #: the Hessian is X^T D X / n with D ≤ this (1 for least squares, 1/4 for logistic)
    CURVATURE = 1.0
    #: deviations t of the largest singular value above its mean √n + √d: P(σ_max > √n + √d + t) ≤ e^{−t²/2}
    #: (Davidson and Szarek), below 1e-7 at t = 6
    SIGMA_MARGIN = 6.0

    def curvature_bound(self) -> float | None:
        """Synthetic data: L ≤ c·(√n + √d + 6)²/n, the Gaussian matrix's largest singular value bound; files: None.

        The rows are standard normal, so the largest eigenvalue of X^T X / n
        is σ_max(X)²/n with σ_max below √n + √d + t except with probability
        e^{−t²/2}. It depends on the config alone: every rank and both
        backends get the same step without reading any data.
        """
        if not isinstance(self.data, SyntheticData):
            return None
        n, d = self.samples, self.features
        return self.CURVATURE * (np.sqrt(n) + np.sqrt(d) + self.SIGMA_MARGIN) ** 2 / n

    def planted(self) -> np.ndarray:
        """Return θ*, whose scores x·θ* are standard normal on synthetic rows."""
        return stream(self.seed, "model").standard_normal(self.features) / np.sqrt(self.features)


@WORKLOADS.register("least-squares")
class LeastSquares(LinearModel):
    """f(θ) = ||Xθ − y||² / (2n); synthetic y = Xθ* + noise·ε."""

    name = "least-squares"

    def targets(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Return x·θ* + noise·ε."""
        return x @ self.truth() + self.noise * eps

    def evaluate(self, model: np.ndarray, x: np.ndarray, y: np.ndarray,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Return Σ_r (x_r·θ − y_r) x_r (into ``out`` if given) and Σ_r (x_r·θ − y_r)² / 2."""
        residual = x @ model - y
        return np.matmul(x.T, residual, out=out), float(residual @ residual) / 2


@WORKLOADS.register("logistic")
class Logistic(LinearModel):
    """f(θ) = Σ_r [log(1 + e^{z_r}) − y_r z_r] / n with z = Xθ, y ∈ {0, 1}.

    Synthetic labels are y = 1[x·θ* + noise·ε > 0]: noise 0 gives separable
    data, larger noise flips labels near the boundary.
    """

    name = "logistic"
    classifier = True
    CURVATURE = 0.25  # σ'(z) ≤ 1/4

    def targets(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Return the 0/1 labels 1[x·θ* + noise·ε > 0]."""
        return (x @ self.truth() + self.noise * eps > 0).astype(float)

    def check_targets(self, y: np.ndarray) -> None:
        """Raise InputError unless every label is 0 or 1."""
        bad = ~((y == 0) | (y == 1))
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError("workload.dataset",
                             f"{self.data.path}: logistic needs y in {{0, 1}}, row {row} has {y[row]:g}")

    def predict_labels(self, model: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Return 1[x·θ > 0] (probability above one half) as 0.0/1.0."""
        return (x @ model > 0).astype(float)

    def evaluate(self, model: np.ndarray, x: np.ndarray, y: np.ndarray,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Return Σ_r (σ(z_r) − y_r) x_r (into ``out`` if given) and Σ_r log(1 + e^{z_r}) − y_r z_r, stably."""
        z = x @ model
        softplus = np.logaddexp(0.0, z)
        sigma = np.exp(z - softplus)  # σ(z) = e^z / (1 + e^z), never overflows
        return np.matmul(x.T, sigma - y, out=out), float(np.sum(softplus - y * z))
