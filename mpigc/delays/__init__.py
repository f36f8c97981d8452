"""Straggler models: seeded chunk durations per (round, worker, position) and silent failures.

Each round draws its whole position × worker matrix from its own stream
(``stream(seed, "delays", round)``), row by row in position order, so the
duration of (round, worker, position) is the same whatever number of
positions a scheme asks for: every scheme sees the same realisation.
Failures come from a separate stream per round.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from mpigc.errors import InputError
from mpigc.seeding import stream

# A model maps (generator, positions, workers, round) to slowdowns, shape (positions, workers),
# in units of chunk_time.
Slowdown = Callable[[np.random.Generator, int, int, int], np.ndarray]


class DelayModel:
    """Chunk durations (seconds) and failures for every round, from ``[delays]`` and ``run.seed``."""

    def __init__(self, delays, seed: int, workers: int) -> None:
        self.cfg = delays
        self.seed = int(seed)
        self.workers = int(workers)
        self.chunk_time = float(delays.chunk_time)
        if delays.fail_count >= workers and delays.fail_count > 0:
            raise InputError("delays.fail_count", f"{delays.fail_count} silent workers leave none of {workers} alive")
        for w in getattr(delays, "slow", ()):
            if not 0 <= w < workers:
                raise InputError("delays.slow", f"worker {w} does not exist (workers are 0..{workers - 1})")
        try:
            self._slowdown = MODELS[delays.model]
        except KeyError:
            raise InputError("delays.model", f"{delays.model!r} is not available yet in this build") from None

    def durations(self, rnd: int, positions: int) -> np.ndarray:
        """Seconds worker w spends on its p-th task in round ``rnd``, shape (m, positions)."""
        rng = stream(self.seed, "delays", rnd)
        slow = self._slowdown(rng, positions, self.workers, self.cfg)
        return self.chunk_time * slow.T

    def failed(self, rnd: int) -> np.ndarray:
        """Which workers are silent in round ``rnd``, shape (m,)."""
        rng = stream(self.seed, "failures", rnd)
        u = rng.random(self.workers)
        if self.cfg.fail_count:
            out = np.zeros(self.workers, dtype=bool)
            out[np.argsort(u)[: self.cfg.fail_count]] = True
            return out
        return u < self.cfg.failures

    def block(self, rounds: range, positions: int) -> tuple[np.ndarray, np.ndarray]:
        """Durations (R, m, P) and failures (R, m) for a range of rounds."""
        dur = np.empty((len(rounds), self.workers, positions))
        fail = np.empty((len(rounds), self.workers), dtype=bool)
        for j, r in enumerate(rounds):
            dur[j] = self.durations(r, positions)
            fail[j] = self.failed(r)
        return dur, fail


def _per_worker(draw: Callable[[int], np.ndarray], rng, positions: int, workers: int, cfg) -> np.ndarray:
    """Draw per chunk, or once per worker-round repeated over positions (``per = "worker"``)."""
    if getattr(cfg, "per", "chunk") == "worker":
        return np.broadcast_to(draw(workers), (positions, workers)).copy()
    return draw(positions * workers).reshape(positions, workers)


def _none(rng, positions, workers, cfg) -> np.ndarray:
    return np.ones((positions, workers))


def _constant(rng, positions, workers, cfg) -> np.ndarray:
    out = np.ones((positions, workers))
    out[:, list(cfg.slow)] = cfg.factor
    return out


def _shifted_exponential(rng, positions, workers, cfg) -> np.ndarray:
    return _per_worker(lambda n: cfg.shift + rng.exponential(cfg.scale, n), rng, positions, workers, cfg)


def _pareto(rng, positions, workers, cfg) -> np.ndarray:
    # numpy's pareto is the Lomax distribution; +1 gives the classic Pareto with minimum 1.
    return _per_worker(lambda n: 1.0 + rng.pareto(cfg.alpha, n), rng, positions, workers, cfg)


def _bimodal(rng, positions, workers, cfg) -> np.ndarray:
    slow = rng.random(workers) < cfg.p
    return np.broadcast_to(np.where(slow, cfg.factor, 1.0), (positions, workers)).copy()


MODELS: dict[str, Slowdown] = {
    "none": _none,
    "constant": _constant,
    "shifted-exponential": _shifted_exponential,
    "pareto": _pareto,
    "bimodal": _bimodal,
}
