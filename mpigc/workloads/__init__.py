"""Training workloads: a model, chunked data built per chunk, and per-chunk gradients.

The objective is a sum over chunks, f(θ) = Σ_i f_i(θ), each f_i normalised by
the total sample count n, so the full gradient is exactly the sum of the
chunk gradients g_i that gradient codes combine. Synthetic chunk data comes
from ``stream(seed, "data", chunk)`` and the planted model from
``stream(seed, "model")``; a user dataset (``workload.dataset`` = a directory
of ``X.npy`` and ``y.npy``, or an ``.h5`` file with X and y, read through the
reader passed in) is read one chunk's row range at a time. Either
way a rank only builds the chunks it is asked for.

Models (``workload.model``, the names of :data:`WORKLOADS`): ``least-squares``
and ``logistic`` (d = features) and ``mlp`` (d = features·hidden + 2·hidden + 1).
A new model is one module of this package: an :class:`Objective` subclass
decorated with ``@WORKLOADS.register("name")``. With a user dataset,
``workload.samples`` and ``workload.features`` are ignored: they come from
X's shape.
"""
from __future__ import annotations

from typing import Any

from mpigc.workloads.base import WORKLOADS, Objective
from mpigc.workloads.data import FileData
from mpigc.workloads.linear import LeastSquares, Logistic
from mpigc.workloads.mlp import MLP

__all__ = ["WORKLOADS", "LeastSquares", "Logistic", "MLP", "Objective", "gradient_dim", "make_workload"]


def _model_class(workload: Any) -> type[Objective]:
    """Look up ``workload.model`` in :data:`WORKLOADS` (InputError naming the key otherwise)."""
    return WORKLOADS.lookup(workload.model)


def make_workload(workload: Any, chunks: int, seed: int, *, check: bool = True, reader: Any = None) -> Objective:
    """Build the workload named by ``workload.model`` for ``chunks`` chunks.

    Parameters
    ----------
    workload
        The ``[workload]`` config.
    chunks
        Number of data chunks N (contiguous row ranges; boundaries depend on N).
    seed
        Root seed (``run.seed``).
    check
        User datasets only: scan all of X for non-finite values now, a block
        at a time. Pass ``False`` on ranks that only compute a few chunks once
        another rank has checked the file; each chunk is still checked when
        read.
    reader
        Reads ``.h5`` user datasets (``read_matrix``/``read_rows``, as :mod:`mpigc.results`).

    Raises
    ------
    InputError
        Keyed ``workload.model``, ``workload.samples`` or ``workload.dataset``.
    """
    return _model_class(workload)(workload, chunks, seed, check=check, reader=reader)


def gradient_dim(workload: Any, reader: Any = None) -> int:
    """Return the gradient length d without building any chunk.

    For a user dataset this opens the file to read X's width (and y).
    """
    cls = _model_class(workload)
    features = workload.features
    if workload.dataset != "synthetic":
        features = FileData(workload.dataset, 1, check=False, reader=reader).features
    return cls.dimension(features, workload.hidden)
