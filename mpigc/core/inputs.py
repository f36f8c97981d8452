"""Straggler models, workloads and traces built from a config, reading HDF5 through :mod:`mpigc.results`.

``mpigc.delays`` and ``mpigc.workloads`` read CSV traces and ``.npy`` data
themselves and never import the results module (import-linter forbids it,
so that ``import mpigc.workloads`` never loads h5py); for an HDF5 trace or
dataset they call the reader they are given. Every backend builds them here,
which hands them :mod:`mpigc.results` as that reader.
"""
from __future__ import annotations

import numpy as np

from mpigc import results
from mpigc.config import Config
from mpigc.delays import DelayModel
from mpigc.delays import load_trace as _load_trace
from mpigc.workloads import Objective, gradient_dim, make_workload

READER = results  # has read_runs, read_matrix and read_rows: the readers delays and workloads ask for


def build_delays(config: Config, workers: int) -> DelayModel:
    """Return the ``[delays]`` model of ``config`` for ``workers`` workers.

    Raises
    ------
    InputError
        For a bad ``[delays]`` table or trace.
    """
    return DelayModel(config.delays, config.run.seed, workers, reader=READER)


def build_workload(config: Config, chunks: int, *, check: bool = True) -> Objective:
    """Return the ``[workload]`` of ``config`` cut into ``chunks`` chunks (see :func:`make_workload`).

    Raises
    ------
    InputError
        For a bad ``[workload]`` table or user dataset.
    """
    return make_workload(config.workload, chunks, config.run.seed, check=check, reader=READER)


def workload_dim(config: Config) -> int:
    """Return the gradient length d of ``config``'s workload (opens a user dataset, builds no chunk)."""
    return gradient_dim(config.workload, reader=READER)


def load_trace(source: str) -> np.ndarray:
    """Read and validate a trace (CSV, ``FILE.h5`` or ``FILE.h5:RUN``), shape (rounds, workers).

    Raises
    ------
    InputError
        Keyed ``delays.trace``, naming ``source`` and the problem.
    """
    return _load_trace(source, READER)
