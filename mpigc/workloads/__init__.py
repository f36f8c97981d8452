"""Training workloads: a model, chunked data generated per chunk, and per-chunk gradients.

The objective is a sum over chunks, f(θ) = Σ_i f_i(θ), so the full gradient
is the sum of the chunk gradients g_i that gradient codes combine. Chunk
data comes from ``stream(seed, "data", chunk)``: a rank only ever builds the
chunks it processes.
"""
from __future__ import annotations

import numpy as np

from mpigc.errors import InputError
from mpigc.seeding import stream


class LeastSquares:
    """f(θ) = ||Xθ − y||² / (2n) on Gaussian features with a planted model plus noise."""

    name = "least-squares"

    def __init__(self, workload, chunks: int, seed: int) -> None:
        if workload.samples < chunks:
            raise InputError("workload.samples", f"{workload.samples} samples cannot fill {chunks} chunks")
        self.samples = int(workload.samples)
        self.dim = int(workload.features)
        self.chunks = int(chunks)
        self.seed = int(seed)
        self.noise = float(getattr(workload, "noise", 0.1))
        self.step = float(workload.step)
        bounds = np.linspace(0, self.samples, self.chunks + 1).round().astype(int)
        self._rows = np.diff(bounds)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def initial_model(self) -> np.ndarray:
        """θ₀ = 0."""
        return np.zeros(self.dim)

    def chunk_data(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Features and targets of one chunk, generated from (seed, chunk) and cached."""
        hit = self._cache.get(chunk)
        if hit is None:
            truth = stream(self.seed, "model").standard_normal(self.dim) / np.sqrt(self.dim)
            rng = stream(self.seed, "data", chunk)
            x = rng.standard_normal((int(self._rows[chunk]), self.dim))
            y = x @ truth + self.noise * rng.standard_normal(len(x))
            hit = self._cache[chunk] = (x, y)
        return hit

    def chunk_gradient(self, model: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
        """Gradient g_i(θ) and loss f_i(θ) of one chunk."""
        x, y = self.chunk_data(chunk)
        residual = x @ model - y
        return x.T @ residual / self.samples, float(residual @ residual) / (2 * self.samples)

    def full_gradient(self, model: np.ndarray) -> tuple[np.ndarray, float]:
        """Σ_i g_i(θ) and f(θ), chunk by chunk."""
        grad, loss = np.zeros(self.dim), 0.0
        for chunk in range(self.chunks):
            g, f = self.chunk_gradient(model, chunk)
            grad += g
            loss += f
        return grad, loss

    def update(self, model: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """One gradient step."""
        return model - self.step * gradient


WORKLOADS = {"least-squares": LeastSquares}


def make_workload(workload, chunks: int, seed: int):
    """Build the workload named by ``workload.model`` for ``chunks`` chunks."""
    try:
        cls = WORKLOADS[workload.model]
    except KeyError:
        raise InputError("workload.model", f"{workload.model!r} is not available yet in this build") from None
    if workload.dataset != "synthetic":
        raise InputError("workload.dataset", "only 'synthetic' is available yet in this build")
    return cls(workload, chunks, seed)
