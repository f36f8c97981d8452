"""Straggler models: seeded chunk durations per (round, worker, position) and silent failures.

Each round draws its whole position × worker matrix from its own stream
(``stream(seed, "delays", round)``), row by row in position order, so the
duration of (round, worker, position) is the same whatever number of
positions a scheme asks for: every scheme sees the same realisation. This
holds for every model, including ``gilbert-elliott`` (state carried across
rounds, see :mod:`mpigc.delays.models`) and ``trace`` (no randomness).
Failures come from a separate stream per round (``"failures"``).

Trace replay (:mod:`mpigc.delays.trace` for sources, validation and wrapping)
--------------------------------------------------------------------------
- Without ``delays.slope``: every chunk of worker w in round r takes
  ``chunk_time × value[r, w] / median(row r)`` seconds, the same at every
  position.
- With ``delays.slope`` (P3's affine model, PROTOCOLS §4.2): a worker's whole
  round at normalised load L takes ``value[r, w] + L·slope`` seconds
  (``chunk_time`` is not used). Per chunk, the load-0 value (invocation
  overhead) is charged to position 0 and every position costs
  ``slope × chunk_load``, where ``chunk_load`` is the normalised load of one
  chunk (1/N; default 1/m). A worker that finishes k chunks has therefore
  spent exactly ``value + (k·chunk_load)·slope`` — the affine time at its own
  load — and position p's duration does not depend on how many positions are
  asked for. :meth:`DelayModel.affine_round_time` gives the whole-round time
  for any load directly, for drivers that work in rounds (sequential schemes).
"""
from __future__ import annotations

import numpy as np

from mpigc.delays.bursty import Bursty
from mpigc.delays.models import MEMORYLESS, GilbertElliott
from mpigc.delays.trace import TraceReplay, load_trace
from mpigc.errors import InputError
from mpigc.seeding import stream

__all__ = ["DelayModel", "MODELS", "load_trace"]

MODELS: tuple[str, ...] = (*MEMORYLESS, "gilbert-elliott", "bursty", "trace")


class DelayModel:
    """Chunk durations (seconds) and failures for every round, from ``[delays]`` and ``run.seed``.

    Parameters
    ----------
    delays : DelaysConfig
        The ``[delays]`` table.
    seed : int
        ``run.seed``.
    workers : int
        Number of workers m.
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
        for w in getattr(delays, "slow", ()):
            if not 0 <= w < workers:
                raise InputError("delays.slow", f"worker {w} does not exist (workers are 0..{workers - 1})")
        self._ge: GilbertElliott | None = None
        self._bursty: Bursty | None = None
        self._trace: TraceReplay | None = None
        self.slope: float | None = None
        if self.model == "gilbert-elliott":
            self._ge = GilbertElliott(delays.p_bad, delays.p_good, self.seed, self.workers)
        elif self.model == "bursty":
            self._bursty = Bursty(delays.B, delays.W, delays.lam, delays.violate, self.seed, self.workers)
        elif self.model == "trace":
            if not delays.trace:
                raise InputError("delays.trace", 'required when delays.model = "trace"')
            self.slope = None if delays.slope is None else float(delays.slope)
            self._trace = TraceReplay(load_trace(delays.trace, reader), self.workers, delays.wrap, str(delays.trace),
                                      ratios=self.slope is None)
        elif self.model not in MEMORYLESS:
            raise InputError("delays.model", f"{self.model!r} is not available yet in this build")

    def check_rounds(self, rounds: int) -> None:
        """Raise InputError now if a run of ``rounds`` rounds would outrun a non-wrapping trace."""
        if self._trace is not None:
            self._trace.check_rounds(rounds)

    def durations(self, rnd: int, positions: int, chunk_load: float | None = None) -> np.ndarray:
        """Return the seconds worker w spends on its p-th task in round ``rnd``, shape (m, positions).

        ``chunk_load`` (normalised load of one chunk, default 1/m) matters only
        for a trace with ``slope``.
        """
        if self._trace is not None:
            return self._trace_durations(rnd, positions, chunk_load)
        if self._ge is not None:
            slow = self._ge.slowdown(rnd, positions, self.cfg.factor)
        elif self._bursty is not None:
            slow = self._bursty.slowdown(rnd, positions, self.cfg.factor)
        else:
            slow = MEMORYLESS[self.model](stream(self.seed, "delays", rnd), positions, self.workers, self.cfg)
        return self.chunk_time * slow.T

    def _trace_durations(self, rnd: int, positions: int, chunk_load: float | None) -> np.ndarray:
        if self.slope is None:
            per_chunk = self.chunk_time * self._trace.ratios(rnd)
            return np.repeat(per_chunk[:, None], positions, axis=1)
        load = 1.0 / self.workers if chunk_load is None else float(chunk_load)
        out = np.full((self.workers, positions), self.slope * load)
        if positions:
            out[:, 0] += self._trace.seconds(rnd)
        return out

    def nominal_seconds(self, positions: int, chunk_load: float | None = None) -> float:
        """Seconds a worker at nominal speed spends on ``positions`` tasks (sets the default timeout)."""
        if self._trace is not None and self.slope is not None:
            load = 1.0 / self.workers if chunk_load is None else float(chunk_load)
            return float(np.median(self._trace.seconds(0))) + self.slope * load * positions
        return self.chunk_time * positions

    def trace_seconds(self, rnd: int) -> np.ndarray:
        """Return the raw (load-0) trace seconds of every worker in round ``rnd``, wrapped, shape (m,)."""
        if self._trace is None:
            raise ValueError(f"delays.model is {self.model!r}, not 'trace'")
        return self._trace.seconds(rnd)

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
