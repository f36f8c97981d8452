"""The shared shape of a workload: a sum over chunks of per-chunk objectives.

f(θ) = Σ_i f_i(θ) with f_i(θ) = Σ_{rows r of chunk i} ℓ(θ; x_r, y_r) / n, n the
total sample count, so the chunk gradients g_i sum to the full gradient. A
model subclass supplies ``dimension`` (gradient length), ``initial_model``,
``evaluate`` (sums over given rows) and, for synthetic data, ``targets``.
A classifier sets ``classifier = True`` and supplies ``predict_labels``; then
:meth:`Objective.eval_metrics` (time to accuracy, ``run.eval_every``) reports
accuracy beside the held-out loss.

A chunk's gradient may be computed in row blocks (``chunk_gradient_blocks``)
so that a worker can check for messages between blocks; since ``evaluate``
sums over rows, the blocks' sums add up to the chunk's. Rounding: a chunk
that fits in one block gets exactly :meth:`Objective.chunk_gradient`, bit for
bit; several blocks change only the order of the row sum, a relative
difference of order 1e-16 per block (decodes are checked against the
unblocked true gradient at 1e-9).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mpigc.registry import Registry
from mpigc.workloads.data import FileData, SyntheticData

EVAL_BLOCK = 65536  # rows per block of a held-out evaluation: bounded temporaries on large sets

#: every workload model by name (``workload.model``); the modules of :mod:`mpigc.workloads` register on first use
WORKLOADS: Registry[type[Objective]] = Registry("workload", "workload.model", package="mpigc.workloads",
                                                group="mpigc.workloads")


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
    reader
        Reads ``.h5`` user datasets (see :class:`mpigc.workloads.data.ArrayReader`).
    """

    name = ""
    #: the model predicts labels (``predict_labels``): evaluations then report accuracy
    classifier = False
    #: ``evaluate`` takes ``out=``: the gradient is written into a given d-vector (no copy on the workers)
    writes_into = False
    #: the step when ``workload.step`` is unset and the model knows no bound on its curvature
    DEFAULT_STEP = 0.1

    def __init__(self, workload: Any, chunks: int, seed: int, check: bool = True, reader: Any = None) -> None:
        self.chunks = int(chunks)
        self.seed = int(seed)
        self.dtype = np.dtype(getattr(workload, "dtype", "float64"))
        self.noise = float(workload.noise)
        self.hidden = int(workload.hidden)
        self._planted: np.ndarray | None = None
        if workload.dataset == "synthetic":
            self.data: SyntheticData | FileData = SyntheticData(
                int(workload.samples), int(workload.features), self.chunks, self.seed, self.targets)
        else:
            self.data = FileData(workload.dataset, self.chunks, check=check, reader=reader)
            self.check_targets(self.data.labels)
        self.samples = self.data.samples
        self.features = self.data.features
        self.dim = self.dimension(self.features, self.hidden)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._eval: tuple[np.ndarray, np.ndarray, str] | None = None
        self._block: np.ndarray | None = None  # one block's gradient (chunk_gradient_into with several blocks)
        self.step = float(workload.step) if workload.step is not None else self.auto_step()

    def curvature_bound(self) -> float | None:
        """Return an upper bound on L, the Hessian's largest eigenvalue, if the model knows one; else None."""
        return None

    def auto_step(self) -> float:
        """Return the step when ``workload.step`` is unset: ``min(DEFAULT_STEP, 1/L)``, L from :meth:`curvature_bound`.

        Gradient descent on an L-smooth f descends for any step below 2/L,
        so 1/L never diverges; where 1/L exceeds the old default 0.1 the step
        stays 0.1 (those runs are unchanged).
        """
        bound = self.curvature_bound()
        if bound is None or bound <= 0:
            return self.DEFAULT_STEP
        return min(self.DEFAULT_STEP, 1.0 / bound)

    @staticmethod
    def dimension(features: int, hidden: int) -> int:
        """Return the gradient length d for ``features`` inputs."""
        return int(features)

    def initial_model(self) -> np.ndarray:
        """Return θ₀ = 0 (in ``workload.dtype``)."""
        return np.zeros(self.dim, dtype=self.dtype)

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
            x, y = self.data.rows(chunk)
            # float32: the float64 rows rounded once, so both dtypes train on the same data
            hit = self._cache[chunk] = (x.astype(self.dtype, copy=False), y.astype(self.dtype, copy=False))
        return hit

    def chunk_rows(self, chunk: int) -> int:
        """Return the number of rows of chunk ``chunk`` (without building it)."""
        return int(self.data.bounds[chunk + 1] - self.data.bounds[chunk])

    def chunk_gradient(self, model: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
        """Return the gradient g_i(θ) and loss f_i(θ) of one chunk."""
        x, y = self.chunk_data(chunk)
        grad, loss = self.evaluate(model, x, y)
        return grad / self.samples, loss / self.samples

    def chunk_gradient_blocks(self, model: np.ndarray, chunk: int, block_rows: int | None,
                              should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, float] | None:
        """Return :meth:`chunk_gradient` computed in row blocks, or None if ``should_stop`` fired.

        Parameters
        ----------
        model
            The parameters θ.
        chunk
            The chunk index i.
        block_rows
            At most this many rows per block; the chunk's rows are split into
            the fewest near-equal contiguous blocks that respect it. None, or
            at least the chunk's rows: one block, which is :meth:`chunk_gradient`
            bit for bit.
        should_stop
            Called between blocks (never before the first nor after the
            last); when it returns True the computation is abandoned.

        Returns
        -------
        tuple or None
            ``(g_i, f_i)``, or None if ``should_stop`` fired.
        """
        x, y = self.chunk_data(chunk)
        rows = len(y)
        if block_rows is None or block_rows >= rows:
            return self.chunk_gradient(model, chunk)
        blocks = -(-rows // max(1, int(block_rows)))
        bounds = np.linspace(0, rows, blocks + 1).round().astype(int)
        grad, loss = self.evaluate(model, x[:bounds[1]], y[:bounds[1]])
        for lo, hi in zip(bounds[1:-1], bounds[2:]):
            if should_stop is not None and should_stop():
                return None
            g, f = self.evaluate(model, x[lo:hi], y[lo:hi])  # contiguous row views: no copies
            grad += g
            loss += f
        return grad / self.samples, loss / self.samples

    def chunk_gradient_into(self, model: np.ndarray, chunk: int, out: np.ndarray, block_rows: int | None = None,
                            should_stop: Callable[[], bool] | None = None) -> float | None:
        """:meth:`chunk_gradient_blocks` with g_i written into ``out`` (length d); return f_i, or None if stopped.

        A model that ``writes_into`` computes the gradient in ``out`` itself
        (one block: no d-sized temporary at all); others' gradients are
        copied in. The values are those of :meth:`chunk_gradient_blocks`.
        """
        x, y = self.chunk_data(chunk)
        rows = len(y)
        blocks = 1 if block_rows is None or block_rows >= rows else -(-rows // max(1, int(block_rows)))
        bounds = np.linspace(0, rows, blocks + 1).round().astype(int)
        loss = self._evaluate_into(model, x[:bounds[1]], y[:bounds[1]], out)
        if blocks > 1:
            if self._block is None or self._block.shape != out.shape or self._block.dtype != out.dtype:
                self._block = np.empty_like(out)
            for lo, hi in zip(bounds[1:-1], bounds[2:]):
                if should_stop is not None and should_stop():
                    return None
                loss += self._evaluate_into(model, x[lo:hi], y[lo:hi], self._block)  # row views: no copies
                out += self._block
        np.divide(out, self.samples, out=out)
        return loss / self.samples

    def _evaluate_into(self, model: np.ndarray, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> float:
        """``evaluate`` with its gradient in ``out``; return the loss."""
        if self.writes_into:
            grad, loss = self.evaluate(model, x, y, out=out)
        else:
            grad, loss = self.evaluate(model, x, y)
        if grad is not out:
            out[:] = grad
        return loss

    def full_gradient(self, model: np.ndarray) -> tuple[np.ndarray, float]:
        """Return Σ_i g_i(θ) and f(θ), computed chunk by chunk (accumulated in float64 whatever the dtype)."""
        grad, loss = np.zeros(self.dim), 0.0
        for chunk in range(self.chunks):
            g, f = self.chunk_gradient(model, chunk)
            grad += g
            loss += f
        return grad, loss

    def predict_labels(self, model: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Return the predicted label of every row of ``x`` (classifiers only)."""
        raise NotImplementedError(f"{type(self).__name__} is not a classifier")

    def held_out(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Return the evaluation rows, their targets and their source, built on first use and cached.

        The source is ``"held-out"`` (synthetic: fresh rows from the planted
        model on ``stream(seed, "eval")``; a user dataset: its ``X_eval`` and
        ``y_eval``) or ``"training"`` (a user dataset without them: every
        training row).
        """
        if self._eval is None:
            got = self.data.held_out()
            if got is None:
                self._eval = (*self.data.training_rows(), "training")
            else:
                self.check_targets(got[1])
                self._eval = (*got, "held-out")
        return self._eval

    def eval_metrics(self, model: np.ndarray) -> tuple[float, float]:
        """Return the mean loss per evaluation row and, for a classifier, the accuracy (NaN otherwise)."""
        x, y, _ = self.held_out()
        loss = sum(self.evaluate(model, x[lo:lo + EVAL_BLOCK], y[lo:lo + EVAL_BLOCK])[1]
                   for lo in range(0, len(y), EVAL_BLOCK))
        accuracy = float(np.mean(self.predict_labels(model, x) == y)) if self.classifier else float("nan")
        return float(loss) / len(y), accuracy

    def update(self, model: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """Return the model after one gradient step of size ``workload.step``."""
        return model - self.step * gradient


WORKLOADS.require(Objective, "evaluate")  # plug-ins: an Objective subclass with its own evaluate
