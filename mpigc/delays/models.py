"""Synthetic straggler models: slowdowns in units of ``delays.chunk_time``.

Every model returns, for one round, a (positions × workers) matrix of
slowdowns. Memoryless models draw it from that round's generator
(``stream(seed, "delays", round)``) row by row in position order, so the
slowdown of (round, worker, position) does not depend on how many positions
are asked for. ``gilbert-elliott`` carries a per-worker state across rounds;
its transition uniforms for round r are the first m draws of round r's
stream, and the state of round r is computed forward from round 0, so it
depends on the seed and r only, never on which rounds were asked before.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from mpigc.seeding import stream

# (generator, positions, workers, [delays] config) -> slowdowns, shape (positions, workers).
Slowdown = Callable[[np.random.Generator, int, int, object], np.ndarray]


def _per_worker(draw: Callable[[int], np.ndarray], positions: int, workers: int, cfg) -> np.ndarray:
    """Draw per chunk (row by row), or once per worker-round repeated over positions (``per = "worker"``)."""
    if getattr(cfg, "per", "chunk") == "worker":
        return np.broadcast_to(draw(workers), (positions, workers)).copy()
    return draw(positions * workers).reshape(positions, workers)


def _none(rng: np.random.Generator, positions: int, workers: int, cfg) -> np.ndarray:
    return np.ones((positions, workers))


def _constant(rng: np.random.Generator, positions: int, workers: int, cfg) -> np.ndarray:
    out = np.ones((positions, workers))
    out[:, list(cfg.slow)] = cfg.factor
    return out


def _shifted_exponential(rng: np.random.Generator, positions: int, workers: int, cfg) -> np.ndarray:
    return _per_worker(lambda n: cfg.shift + rng.exponential(cfg.scale, n), positions, workers, cfg)


def _pareto(rng: np.random.Generator, positions: int, workers: int, cfg) -> np.ndarray:
    # numpy's pareto is the Lomax distribution; +1 gives the classic Pareto with minimum 1.
    return _per_worker(lambda n: 1.0 + rng.pareto(cfg.alpha, n), positions, workers, cfg)


def _bimodal(rng: np.random.Generator, positions: int, workers: int, cfg) -> np.ndarray:
    slow = rng.random(workers) < cfg.p
    return np.broadcast_to(np.where(slow, cfg.factor, 1.0), (positions, workers)).copy()


MEMORYLESS: dict[str, Slowdown] = {
    "none": _none,
    "constant": _constant,
    "shifted-exponential": _shifted_exponential,
    "pareto": _pareto,
    "bimodal": _bimodal,
}


class GilbertElliott:
    """Per-worker good/bad Markov chain across rounds, every worker good at round 0.

    Parameters
    ----------
    p_bad, p_good : float
        Transition probabilities good → bad and bad → good, applied between
        round r − 1 and round r with the uniforms of ``stream(seed, "delays", r)``.
    seed : int
        ``run.seed``.
    workers : int
        Number of workers m.

    Notes
    -----
    The current state is cached, so sequential rounds cost one draw each; a
    checkpoint every ``CHECKPOINT`` rounds makes going back cheap. Asking for
    round r first computes the chain forward from round 0 once.
    """

    CHECKPOINT = 1024

    def __init__(self, p_bad: float, p_good: float, seed: int, workers: int) -> None:
        self.p_bad = float(p_bad)
        self.p_good = float(p_good)
        self.seed = int(seed)
        self.workers = int(workers)
        self._round = 0
        self._state = np.zeros(self.workers, dtype=bool)
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
