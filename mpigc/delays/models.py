"""Straggler models: the registry of ``delays.model`` and the synthetic models.

A straggler model is a :class:`StragglerModel` subclass registered under its
name with ``@MODELS.register("name")``; :class:`~mpigc.delays.DelayModel`
builds the configured one and adds failures. Every model returns, for one
round, a (positions × workers) matrix of slowdowns in units of
``delays.chunk_time`` (or overrides :meth:`StragglerModel.durations` to give
seconds directly, as trace replay does).

Memoryless models (:class:`Memoryless`) draw a round from that round's
generator (``stream(seed, "delays", round)``) row by row in position order,
so the slowdown of (round, worker, position) does not depend on how many
positions are asked for. Stateful models carry state across rounds and must
make round r's state a function of (seed, r) only, never of which rounds were
asked before: ``gilbert-elliott`` below computes its chain forward from round
0 with round r's transition uniforms the first m draws of round r's stream.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mpigc.registry import Registry
from mpigc.seeding import stream

#: every straggler model by name (``delays.model``); the modules of :mod:`mpigc.delays` register on first use
MODELS: Registry[type[StragglerModel]] = Registry("straggler model", "delays.model", package="mpigc.delays",
                                                  group="mpigc.delays")


class StragglerModel:
    """Chunk durations of every round for m workers; subclasses define :meth:`slowdown`.

    Parameters
    ----------
    cfg : DelaysConfig
        The ``[delays]`` table.
    seed : int
        ``run.seed``.
    workers : int
        Number of workers m.
    reader : optional
        Reads HDF5 files for models that load data (see :mod:`mpigc.delays.trace`).
    """

    #: ``[delays]`` keys the model reads besides the shared chunk_time, failures, fail_count, compute
    config_keys: tuple[str, ...] = ()
    #: seconds per unit of normalised load of P3's affine model; None unless the model sets it
    slope: float | None = None

    def __init__(self, cfg: Any, seed: int, workers: int, reader: Any = None) -> None:
        self.cfg = cfg
        self.seed = int(seed)
        self.workers = int(workers)
        self.chunk_time = float(cfg.chunk_time)

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        """Return slowdowns of round ``rnd``, shape (positions, m), in units of ``chunk_time``."""
        raise NotImplementedError

    def durations(self, rnd: int, positions: int, chunk_load: float | None = None) -> np.ndarray:
        """Return seconds per (worker, position) of round ``rnd``, shape (m, positions)."""
        return self.chunk_time * self.slowdown(rnd, positions).T

    def nominal_seconds(self, positions: int, chunk_load: float | None = None) -> float:
        """Return the seconds a worker at nominal speed spends on ``positions`` tasks."""
        return self.chunk_time * positions

    def check_rounds(self, rounds: int) -> None:
        """Raise InputError if the model cannot give ``rounds`` rounds (finite data); most always can."""

    def trace_seconds(self, rnd: int) -> np.ndarray:
        """Return the load-0 seconds of every worker in round ``rnd``; only replayed traces have them."""
        raise ValueError(f"delays.model is {self.cfg.model!r}, not 'trace'")


class Memoryless(StragglerModel):
    """A model drawing each round afresh from ``stream(seed, "delays", round)``; subclasses define :meth:`draw`."""

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        """Return :meth:`draw` on round ``rnd``'s own generator."""
        return self.draw(stream(self.seed, "delays", rnd), positions)

    def draw(self, rng: np.random.Generator, positions: int) -> np.ndarray:
        """Return one round's slowdowns, shape (positions, m), drawn row by row from ``rng``."""
        raise NotImplementedError

    def per_worker(self, draw: Callable[[int], np.ndarray], positions: int) -> np.ndarray:
        """Draw per chunk (row by row), or once per worker-round repeated over positions (``per = "worker"``)."""
        if self.cfg.per == "worker":
            return np.broadcast_to(draw(self.workers), (positions, self.workers)).copy()
        return draw(positions * self.workers).reshape(positions, self.workers)


# plug-ins: a StragglerModel subclass defining slowdown or durations (a Memoryless one: draw)
MODELS.require(StragglerModel, "slowdown|durations|draw", skeletons=(Memoryless,))


@MODELS.register("none")
class NoStragglers(Memoryless):
    """Every chunk takes chunk_time."""

    def draw(self, rng: np.random.Generator, positions: int) -> np.ndarray:
        """Return ones."""
        return np.ones((positions, self.workers))


@MODELS.register("constant")
class Constant(Memoryless):
    """The workers in ``slow`` are ``factor`` times slower in every round."""

    config_keys = ("delays.slow", "delays.factor")

    def draw(self, rng: np.random.Generator, positions: int) -> np.ndarray:
        """Return ``factor`` in the slow workers' columns, 1 elsewhere."""
        out = np.ones((positions, self.workers))
        out[:, list(self.cfg.slow)] = self.cfg.factor
        return out


@MODELS.register("shifted-exponential")
class ShiftedExponential(Memoryless):
    """shift + Exp(scale) per chunk (or per worker-round)."""

    config_keys = ("delays.shift", "delays.scale", "delays.per")

    def draw(self, rng: np.random.Generator, positions: int) -> np.ndarray:
        """Return shift + Exp(scale) draws."""
        return self.per_worker(lambda n: self.cfg.shift + rng.exponential(self.cfg.scale, n), positions)


@MODELS.register("pareto")
class Pareto(Memoryless):
    """Pareto(alpha) with minimum 1 per chunk (or per worker-round)."""

    config_keys = ("delays.alpha", "delays.per")

    def draw(self, rng: np.random.Generator, positions: int) -> np.ndarray:
        """Return classic Pareto draws (numpy's Lomax + 1)."""
        return self.per_worker(lambda n: 1.0 + rng.pareto(self.cfg.alpha, n), positions)


@MODELS.register("bimodal")
class Bimodal(Memoryless):
    """Each worker-round is ``factor`` times slower with probability p."""

    config_keys = ("delays.p", "delays.factor")

    def draw(self, rng: np.random.Generator, positions: int) -> np.ndarray:
        """Return ``factor`` for the round's slow workers in every position, 1 elsewhere."""
        slow = rng.random(self.workers) < self.cfg.p
        return np.broadcast_to(np.where(slow, self.cfg.factor, 1.0), (positions, self.workers)).copy()


@MODELS.register("gilbert-elliott")
class GilbertElliottModel(StragglerModel):
    """Per-worker good/bad Markov chain across rounds; bad rounds are ``factor`` times slower."""

    config_keys = ("delays.p_bad", "delays.p_good", "delays.factor")

    def __init__(self, cfg: Any, seed: int, workers: int, reader: Any = None) -> None:
        super().__init__(cfg, seed, workers, reader)
        self.chain = GilbertElliott(cfg.p_bad, cfg.p_good, self.seed, self.workers)

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        """Return the chain's slowdowns of round ``rnd``."""
        return self.chain.slowdown(rnd, positions, self.cfg.factor)


class GilbertElliott:
    """Per-worker good/bad Markov chain across rounds, every worker good at round 0 unless ``start`` > 0.

    Parameters
    ----------
    p_bad, p_good : float
        Transition probabilities good → bad and bad → good, applied between
        round r − 1 and round r with the uniforms of ``stream(seed, "delays", r)``.
    seed : int
        ``run.seed``.
    workers : int
        Number of workers m.
    start : float
        Probability a worker starts bad; with ``start`` > 0 round 0's state is
        ``u < start`` for the first m uniforms of round 0's stream (0: all good,
        and round 0 draws nothing).

    Notes
    -----
    The current state is cached, so sequential rounds cost one draw each; a
    checkpoint every ``CHECKPOINT`` rounds makes going back cheap. Asking for
    round r first computes the chain forward from round 0 once.
    """

    CHECKPOINT = 1024

    def __init__(self, p_bad: float, p_good: float, seed: int, workers: int, start: float = 0.0) -> None:
        self.p_bad = float(p_bad)
        self.p_good = float(p_good)
        self.seed = int(seed)
        self.workers = int(workers)
        self._round = 0
        self._state = np.zeros(self.workers, dtype=bool)
        if start > 0:
            self._state = stream(self.seed, "delays", 0).random(self.workers) < float(start)
        self._checkpoints: dict[int, np.ndarray] = {0: self._state.copy()}

    def bad(self, rnd: int) -> np.ndarray:
        """Return which workers are in the bad state in round ``rnd``, shape (m,)."""
        rnd = int(rnd)
        if rnd < 0:
            raise ValueError(f"round {rnd} is negative")
        if rnd < self._round:
            start = rnd - rnd % self.CHECKPOINT      # passed on the way to self._round
            self._round, self._state = start, self._checkpoints[start].copy()
        while self._round < rnd:
            self._round += 1
            u = stream(self.seed, "delays", self._round).random(self.workers)
            self._state = np.where(self._state, u >= self.p_good, u < self.p_bad)
            if self._round % self.CHECKPOINT == 0:
                self._checkpoints[self._round] = self._state.copy()
        return self._state.copy()

    def slowdown(self, rnd: int, positions: int, factor: float) -> np.ndarray:
        """Return slowdowns (positions, m): ``factor`` in bad rounds, 1 otherwise."""
        row = np.where(self.bad(rnd), float(factor), 1.0)
        return np.broadcast_to(row, (positions, self.workers)).copy()
