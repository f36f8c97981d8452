"""Workload plug-ins that misbehave while a run computes (tests/test_exactness.py, tests/test_plugin_failures_mpi.py).

Each is least squares with one fault: NaN in the gradient of chunk 1, an
exception from chunk 1, or a gradient one entry too long.
"""
from __future__ import annotations

import numpy as np

from mpigc.workloads.linear import LeastSquares


class NanChunk(LeastSquares):
    """Chunk 1's gradient is NaN (one worker's, under MPI)."""

    def chunk_gradient(self, model: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
        """Return the least-squares gradient, NaN for chunk 1."""
        grad, loss = super().chunk_gradient(model, chunk)
        return (np.full_like(grad, np.nan), loss) if chunk == 1 else (grad, loss)


class Raising(LeastSquares):
    """Chunk 1's gradient raises."""

    def chunk_gradient(self, model: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
        """Return the least-squares gradient; raise for chunk 1."""
        if chunk == 1:
            raise ZeroDivisionError("chunk 1 divides by zero on purpose")
        return super().chunk_gradient(model, chunk)


class WrongShape(LeastSquares):
    """Every gradient has one entry too many."""

    def chunk_gradient(self, model: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
        """Return the least-squares gradient with a 0 appended."""
        grad, loss = super().chunk_gradient(model, chunk)
        return np.append(grad, 0.0), loss
