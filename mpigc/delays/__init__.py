"""Straggler models: seeded chunk durations per (round, worker, position) and silent failures.

Each round draws its whole position × worker matrix from its own stream
(``stream(seed, "delays", round)``), row by row in position order, so the
duration of (round, worker, position) is the same whatever number of
positions a scheme asks for: every scheme sees the same realisation. This
holds for every model, including ``gilbert-elliott`` (state carried across
rounds, see :mod:`mpigc.delays.models`) and ``trace`` (no randomness).
Failures come from a separate stream per round (``"failures"``).

A model is one module of this package: a :class:`~mpigc.delays.models.StragglerModel`
subclass registered with ``@MODELS.register("name")`` (see
:mod:`mpigc.delays.models`); :class:`DelayModel` looks ``delays.model`` up in
:data:`MODELS` and adds failures. Trace replay, with P3's affine load model
under ``delays.slope``, is :mod:`mpigc.delays.replay` (sources, validation
and wrapping in :mod:`mpigc.delays.trace`). :meth:`DelayModel.affine_round_time`
gives the whole-round time for any load directly, for drivers that work in
rounds (sequential schemes).
"""
from __future__ import annotations

import numpy as np

from mpigc.delays.models import MODELS, StragglerModel
from mpigc.delays.trace import load_trace
from mpigc.errors import InputError
from mpigc.seeding import stream

__all__ = ["DelayModel", "MODELS", "StragglerModel", "load_trace"]


class DelayModel:
    """Chunk durations (seconds) and failures for every round, from ``[delays]`` and ``run.seed``.

    Parameters
    ----------
    delays : DelaysConfig
        The ``[delays]`` table.
    seed, workers : int
        ``run.seed`` and the number of workers m.
    reader : optional
        Reads HDF5 traces (``read_runs``, as :mod:`mpigc.results`); CSV traces need none.

    Raises
    ------
    InputError
        For an unavailable model, impossible failures or slow workers, or a
        bad trace (``delays.trace``: missing, malformed, too narrow without wrap).
    """

    def __init__(self, delays, seed: int, workers: int, reader=None) -> None:
        self.cfg = delays
        self.seed = int(seed)
        self.workers = int(workers)
        self.chunk_time = float(delays.chunk_time)
        self.model = str(delays.model)
        if delays.fail_count >= workers and delays.fail_count > 0:
            raise InputError("delays.fail_count", f"{delays.fail_count} silent workers leave none of {workers} alive")
        for w in delays.slow:
            if not 0 <= w < workers:
                raise InputError("delays.slow", f"worker {w} does not exist (workers are 0..{workers - 1})")
        self.impl: StragglerModel = MODELS.lookup(self.model)(delays, self.seed, self.workers, reader)
        self.slope: float | None = self.impl.slope

    def check_rounds(self, rounds: int) -> None:
        """Raise InputError now if a run of ``rounds`` rounds would outrun the model's data (a trace)."""
        self.impl.check_rounds(rounds)

    def durations(self, rnd: int, positions: int, chunk_load: float | None = None) -> np.ndarray:
        """Return the seconds worker w spends on its p-th task in round ``rnd``, shape (m, positions).

        ``chunk_load`` (normalised load of one chunk, default 1/m) matters only
        for a trace with ``slope``.
        """
        return self.impl.durations(rnd, positions, chunk_load)

    def nominal_seconds(self, positions: int, chunk_load: float | None = None) -> float:
        """Seconds a worker at nominal speed spends on ``positions`` tasks (sets the default timeout)."""
        return self.impl.nominal_seconds(positions, chunk_load)

    def trace_seconds(self, rnd: int) -> np.ndarray:
        """Return the raw (load-0) trace seconds of every worker in round ``rnd``, wrapped, shape (m,)."""
        return self.impl.trace_seconds(rnd)

    def affine_round_time(self, rnd: int, load: float | np.ndarray) -> np.ndarray:
        """Return P3's round time ``value + load × slope`` of every worker, shape (m,).

        ``load`` is the normalised load (a scalar, or one per worker); 1/m for ``uncoded``.
        """
        if self.slope is None:
            raise ValueError("affine round times need delays.model = 'trace' with delays.slope set")
        return self.trace_seconds(rnd) + np.asarray(load, dtype=float) * self.slope

    def failed(self, rnd: int) -> np.ndarray:
        """Return which workers are silent in round ``rnd``, shape (m,)."""
        rng = stream(self.seed, "failures", rnd)
        u = rng.random(self.workers)
        if self.cfg.fail_count:
            out = np.zeros(self.workers, dtype=bool)
            out[np.argsort(u)[: self.cfg.fail_count]] = True
            return out
        return u < self.cfg.failures

    def block(self, rounds: range, positions: int, chunk_load: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return durations (R, m, P) and failures (R, m) for a range of rounds."""
        dur = np.empty((len(rounds), self.workers, positions))
        fail = np.empty((len(rounds), self.workers), dtype=bool)
        for j, r in enumerate(rounds):
            dur[j] = self.durations(r, positions, chunk_load)
            fail[j] = self.failed(r)
        return dur, fail
