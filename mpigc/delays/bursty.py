"""``bursty`` stragglers: patterns drawn to conform to P3's (B, W, λ) model (docs/protocols.md#sequential-schemes).

Round r's stragglers come from ``stream(seed, "delays", r)`` and the pattern
so far, computed forward from round 0 and cached, so they depend on (seed, r)
only. A conforming round keeps every running burst going and starts new
bursts (length uniform on 1..B) on workers that did not straggle in the
previous W − 1 rounds; how many is uniform on 0..(room left under λ in the
window), so patterns press against the model's limits. With probability
``violate`` the round then breaks the model: enough extra one-round
stragglers to exceed λ distinct workers in the window, or, when m ≤ λ, a
worker that straggles again after its burst. Stragglers are ``factor`` times
slower in every position; everyone else has slowdown 1.

Note: under the (1+μ)·t_min rule a slowdown counts as straggling only if
``factor`` > 1 + μ (e.g. factor 4 with μ = 1).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from mpigc.bursts import check_bursty, window
from mpigc.delays.models import MODELS, StragglerModel
from mpigc.seeding import stream


@MODELS.register("bursty")
class BurstyModel(StragglerModel):
    """Patterns conforming to P3's (B, W, λ) model (or breaking it with probability ``violate``)."""

    config_keys = ("delays.B", "delays.W", "delays.lambda", "delays.violate", "delays.factor")

    def __init__(self, cfg: Any, seed: int, workers: int, reader: Any = None) -> None:
        super().__init__(cfg, seed, workers, reader)
        self.patterns = Bursty(cfg.B, cfg.W, cfg.lam, cfg.violate, self.seed, self.workers)

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        """Return ``factor`` for round ``rnd``'s stragglers, 1 otherwise."""
        return self.patterns.slowdown(rnd, positions, self.cfg.factor)


class Bursty:
    """Seeded (B, W, λ)-bursty straggler patterns for m workers.

    Parameters
    ----------
    B, W, lam : int
        Burst length, window and distinct stragglers per window.
    violate : float
        Probability that a round breaks the model.
    seed, workers : int
        ``run.seed`` and m.
    """

    def __init__(self, B: int, W: int, lam: int, violate: float, seed: int, workers: int) -> None:
        check_bursty(B, W, lam, None, prefix="delays")
        self.B, self.W, self.lam = int(B), int(W), int(lam)
        self.violate = float(violate)
        self.seed, self.m = int(seed), int(workers)
        self._buf = np.zeros((64, self.m), dtype=bool)  # capacity doubles as rounds are drawn
        self._rounds = 0
        self._left = np.zeros(self.m, dtype=np.int64)  # rounds left in each worker's running burst

    def stragglers(self, rnd: int) -> np.ndarray:
        """Return which workers straggle in round ``rnd``, shape (m,)."""
        if rnd < 0:
            raise ValueError(f"round {rnd} is negative")
        while self._rounds <= rnd:
            self._extend()
        return self._buf[rnd].copy()

    def _extend(self) -> None:
        r = self._rounds
        if r == self._buf.shape[0]:
            self._buf = np.concatenate([self._buf, np.zeros_like(self._buf)])
        rng = stream(self.seed, "delays", r)
        u_violate, u_count = rng.random(2)
        perm = rng.permutation(self.m)
        lengths = rng.integers(1, self.B + 1, self.m)
        past = window(self._buf, r, self.W - 1)
        recent = past.any(axis=0)
        now = self._left > 0
        room = self.lam - int((recent | now).sum())
        fresh = perm[~(recent | now)[perm]]
        k = min(int(u_count * (max(room, 0) + 1)), fresh.size)
        start = fresh[:k]
        self._left[start] = lengths[start]
        now[start] = True
        if u_violate < self.violate:
            self._break(past, recent, now, perm)
        self._left[now] = np.maximum(self._left[now] - 1, 0)
        self._buf[r] = now
        self._rounds = r + 1

    def _break(self, past: np.ndarray, recent: np.ndarray, now: np.ndarray, perm: np.ndarray) -> None:
        """Add stragglers to ``now`` so that the round breaks the model (if m allows)."""
        outside = perm[~(recent | now)[perm]]
        need = self.lam + 1 - int((recent | now).sum())
        if 0 < need <= outside.size:
            now[outside[:need]] = True
            return
        if need <= 0 and outside.size:
            now[outside[0]] = True
            return
        early = past[: max(0, past.shape[0] + 1 - self.B)].any(axis=0) & ~now
        again = perm[early[perm]]
        if again.size:
            now[again[0]] = True

    def slowdown(self, rnd: int, positions: int, factor: float) -> np.ndarray:
        """Return slowdowns (positions, m): ``factor`` for stragglers of round ``rnd``, 1 otherwise."""
        row = np.where(self.stragglers(rnd), float(factor), 1.0)
        return np.broadcast_to(row, (positions, self.m)).copy()
