"""The shared shape of a workload: a sum over chunks of per-chunk objectives.

f(θ) = Σ_i f_i(θ) with f_i(θ) = Σ_{rows r of chunk i} ℓ(θ; x_r, y_r) / n, n the
total sample count, so the chunk gradients g_i sum to the full gradient. A
model subclass supplies ``dimension`` (gradient length), ``initial_model``,
``evaluate`` (sums over given rows) and, for synthetic data, ``targets``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from mpigc.workloads.data import FileData, SyntheticData


class Objective:
    """Base of every workload: chunked data, per-chunk gradients, gradient steps.

    Parameters
    ----------
    workload
        The ``[workload]`` config (``WorkloadConfig``).
    chunks
        Number of data chunks N.
    seed
        Root seed (``run.seed``).
    check
        User files only: scan all of X for non-finite values up front.
    """

    name = ""

    def __init__(self, workload: Any, chunks: int, seed: int, check: bool = True) -> None:
        self.chunks = int(chunks)
        self.seed = int(seed)
        self.step = float(workload.step)
        self.noise = float(workload.noise)
        self.hidden = int(workload.hidden)
        self._planted: np.ndarray | None = None
        if workload.dataset == "synthetic":
            self.data: SyntheticData | FileData = SyntheticData(
                int(workload.samples), int(workload.features), self.chunks, self.seed, self.targets)
        else:
            self.data = FileData(workload.dataset, self.chunks, check=check)
            self.check_targets(self.data.labels)
        self.samples = self.data.samples
        self.features = self.data.features
        self.dim = self.dimension(self.features, self.hidden)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @staticmethod
    def dimension(features: int, hidden: int) -> int:
        """Return the gradient length d for ``features`` inputs."""
        return int(features)

    def initial_model(self) -> np.ndarray:
        """Return θ₀ = 0."""
        return np.zeros(self.dim)

    def planted(self) -> np.ndarray:
        """Return the planted parameters of synthetic data, from ``stream(seed, "model")``."""
        raise NotImplementedError

    def truth(self) -> np.ndarray:
        """Return :meth:`planted`, drawn once and cached."""
        if self._planted is None:
            self._planted = self.planted()
        return self._planted

    def targets(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Return synthetic targets of rows ``x`` given standard normal noise ``eps``."""
        raise NotImplementedError

    def check_targets(self, y: np.ndarray) -> None:
        """Raise InputError if a user file's targets do not fit the model (any real is fine here)."""

    def evaluate(self, model: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Return the gradient and loss summed (not averaged) over rows ``x``, ``y``."""
        raise NotImplementedError

    def chunk_data(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Return one chunk's features and targets, built on first use and cached."""
        hit = self._cache.get(chunk)
        if hit is None:
            if not 0 <= chunk < self.chunks:
                raise IndexError(f"chunk {chunk} out of range 0..{self.chunks - 1}")
            hit = self._cache[chunk] = self.data.rows(chunk)
        return hit

    def chunk_gradient(self, model: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
        """Return the gradient g_i(θ) and loss f_i(θ) of one chunk."""
        x, y = self.chunk_data(chunk)
        grad, loss = self.evaluate(model, x, y)
        return grad / self.samples, loss / self.samples

    def full_gradient(self, model: np.ndarray) -> tuple[np.ndarray, float]:
        """Return Σ_i g_i(θ) and f(θ), computed chunk by chunk."""
        grad, loss = np.zeros(self.dim), 0.0
        for chunk in range(self.chunks):
            g, f = self.chunk_gradient(model, chunk)
            grad += g
            loss += f
        return grad, loss

    def update(self, model: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """Return the model after one gradient step of size ``workload.step``."""
        return model - self.step * gradient
