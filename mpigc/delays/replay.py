"""``trace`` stragglers: replay measured per-round, per-worker seconds (sources in :mod:`mpigc.delays.trace`).

- Without ``delays.slope``: every chunk of worker w in round r takes
  ``chunk_time × value[r, w] / median(row r)`` seconds, the same at every
  position.
- With ``delays.slope`` (P3's affine model, docs/protocols.md#sequential-schemes): a worker's whole
  round at normalised load L takes ``value[r, w] + L·slope`` seconds
  (``chunk_time`` is not used). Per chunk, the load-0 value (invocation
  overhead) is charged to position 0 and every position costs
  ``slope × chunk_load``, where ``chunk_load`` is the normalised load of one
  chunk (1/N; default 1/m). A worker that finishes k chunks has therefore
  spent exactly ``value + (k·chunk_load)·slope`` — the affine time at its own
  load — and position p's duration does not depend on how many positions are
  asked for. ``delays.slope = "fit"`` takes the slope fitted to the trace
  (:func:`mpigc.delays.slope.fitted_slope`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from mpigc.delays.models import MODELS, StragglerModel
from mpigc.delays.trace import TraceReplay, load_trace
from mpigc.errors import InputError


class ValueReplay(StragglerModel):
    """A model whose round r is one value per worker, used as trace replay uses a trace (module docstring).

    Subclasses give :meth:`seconds` (the raw values) and :meth:`ratios` (values
    over the round's median) and set ``slope`` (None: ratios × ``chunk_time``).
    """

    def seconds(self, rnd: int) -> np.ndarray:
        """Return round ``rnd``'s values, shape (m,)."""
        raise NotImplementedError

    def ratios(self, rnd: int) -> np.ndarray:
        """Return round ``rnd``'s values over their median, shape (m,)."""
        raise NotImplementedError

    def durations(self, rnd: int, positions: int, chunk_load: float | None = None) -> np.ndarray:
        """Return seconds per (worker, position): scaled ratios, or the affine split described above."""
        if self.slope is None:
            per_chunk = self.chunk_time * self.ratios(rnd)
            return np.repeat(per_chunk[:, None], positions, axis=1)
        load = 1.0 / self.workers if chunk_load is None else float(chunk_load)
        out = np.full((self.workers, positions), self.slope * load)
        if positions:
            out[:, 0] += self.seconds(rnd)
        return out

    def nominal_seconds(self, positions: int, chunk_load: float | None = None) -> float:
        """Return round 0's median load-0 value plus the affine load time (ratios: ``chunk_time`` per task)."""
        if self.slope is None:
            return self.chunk_time * positions
        load = 1.0 / self.workers if chunk_load is None else float(chunk_load)
        return float(np.median(self.seconds(0))) + self.slope * load * positions

    def trace_seconds(self, rnd: int) -> np.ndarray:
        """Return the raw (load-0) values of every worker in round ``rnd``, shape (m,)."""
        return self.seconds(rnd)


@MODELS.register("trace")
class Trace(ValueReplay):
    """Replay a trace of per-round, per-worker seconds (CSV or an HDF5 result file)."""

    config_keys = ("delays.trace", "delays.slope", "delays.wrap")

    def __init__(self, cfg: Any, seed: int, workers: int, reader: Any = None) -> None:
        super().__init__(cfg, seed, workers, reader)
        if not cfg.trace:
            raise InputError("delays.trace", 'required when delays.model = "trace"')
        self.slope = _slope(cfg.slope, str(cfg.trace))
        self.replay = TraceReplay(load_trace(cfg.trace, reader), self.workers, cfg.wrap, str(cfg.trace),
                                  ratios=self.slope is None)

    def check_rounds(self, rounds: int) -> None:
        """Raise InputError if a run of ``rounds`` rounds would outrun a non-wrapping trace."""
        self.replay.check_rounds(rounds)

    def seconds(self, rnd: int) -> np.ndarray:
        """Return the raw values of round ``rnd``, shape (m,)."""
        return self.replay.seconds(rnd)

    def ratios(self, rnd: int) -> np.ndarray:
        """Return value / the whole trace row's median, shape (m,)."""
        return self.replay.ratios(rnd)


def _slope(value: float | str | None, trace: str) -> float | None:
    """``delays.slope`` as seconds per unit load: a number, the fit to ``trace`` (``"fit"``), or None."""
    if value is None:
        return None
    if value == "fit":
        try:
            from mpigc.delays.slope import fitted_slope  # only runs that ask for a fit load it
        except ImportError:
            raise InputError("delays.slope", '"fit" is not available in this build; give seconds') from None
        return float(fitted_slope(trace))
    return float(value)
