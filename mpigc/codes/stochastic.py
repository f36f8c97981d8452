"""Stochastic gradient coding (Bitar, Wootters, El Rouayheb 2020; docs/protocols.md#stochastic).

Every chunk is placed on d = ``code.load`` distinct random workers (the
``random`` assignment: a seeded random bipartite graph, about N·d/m chunks per
worker). Worker w sends one message, f_w = Σ_{i held by w} g_i, after its last
chunk. The master returns ĝ = Σ_{w heard} f_w / (d(1 − p)): chunk i enters
with weight c_i / (d(1 − p)), c_i the number of its holders heard, whose mean
is 1 when every worker is heard independently with probability 1 − p. So the
estimate is unbiased, and approximate by design.

**When it is exact.** Only when the combination equals the gradient, i.e.
every chunk is covered by exactly d(1 − p) heard holders. That needs
d(1 − p) to be a whole number T: with p = 0 (T = d) it is the moment every
worker has been heard, as ``uncoded``; with, say, d = 2 and p = 1/2 (T = 1)
it is a moment when every chunk has been heard exactly once, and a later
message spoils it again. Otherwise (most p) no round is ever exact: rounds
end by ``code.wait_for``, a deadline or the timeout, with status 1.

``code.p`` unset: p = 1 − k/m with ``code.wait_for = k`` (each worker misses
the round's end with that probability when delays are exchangeable, so the
estimate is unbiased then too), else 0.
"""
from __future__ import annotations

import numpy as np

from mpigc.codes.base import Block, Combination, Decoder, Plan
from mpigc.codes.classic import OneShot
from mpigc.codes.registry import register
from mpigc.errors import InputError

#: how close d(1 − p) must be to a whole number for a round to be able to decode exactly
WHOLE = 1e-9


def straggle_probability(code) -> float:
    """Return the configured p, or its default: 1 − wait_for/m with ``code.wait_for``, else 0."""
    if code.p is not None:
        return float(code.p)
    k = getattr(code, "wait_for", None)
    return 1.0 - k / code.workers if k else 0.0


@register("stochastic")
class StochasticCoding(OneShot):
    """Random d-fold placement; the master weighs every heard worker sum by 1/(d(1 − p)) (§6.2)."""

    config_keys = ("code.load", "code.chunks", "code.p", "code.wait_for", "code.decode", "code.deadline")

    default_assignment = "random"

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        if plan.parts != 1:
            raise InputError("code.parts", "stochastic sends whole worker sums: it needs parts = 1")
        replication = plan.assignment.sum(axis=1)
        if not np.all(replication == replication[0]):
            raise InputError("code.assignment", "stochastic needs every chunk on the same number of workers "
                             f"(got {replication.min()} to {replication.max()})")
        self.replication = int(replication[0])
        self.p = straggle_probability(code)
        if not 0.0 <= self.p < 1.0:
            raise InputError("code.p", f"must be in [0, 1), got {self.p:g}")
        expected = self.replication * (1.0 - self.p)  # mean heard holders of a chunk
        self.weight = 1.0 / expected
        whole = round(expected)
        #: the coverage at which the weights are exactly 1 (None: no round is ever exact)
        self.exact_cover = whole if abs(expected - whole) <= WHOLE * expected else None
        self.info.update({"p": self.p, "weight": self.weight, "exact possible": self.exact_cover is not None})

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the unweighted sum of the worker's chunks (its column of the assignment)."""
        return self.plan.assignment[:, worker].astype(float)

    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """Return the first time every chunk is covered exactly ``exact_cover`` times (``inf`` if never).

        Workers' single messages are taken in arrival order; messages that
        arrive at the same time enter together (as the decoder sees them).
        """
        t = self.finish_arrivals(arrival)
        out = np.full(t.shape[0], np.inf)
        if self.exact_cover is None:
            return out
        order = np.argsort(t, axis=1, kind="stable")
        ts = np.take_along_axis(t, order, axis=1)
        held = self.plan.assignment.T.astype(np.int64)  # (m, N)
        cover = np.zeros((t.shape[0], self.plan.chunks), dtype=np.int64)
        for j in range(t.shape[1]):
            cover += held[order[:, j]]
            later = ts[:, j + 1] if j + 1 < t.shape[1] else np.full(t.shape[0], np.inf)
            hit = np.isfinite(ts[:, j]) & (later > ts[:, j]) & np.all(cover == self.exact_cover, axis=1)
            out = np.where(np.isinf(out) & hit, ts[:, j], out)
        return out

    def decoder(self) -> Decoder:
        """Weigh every worker heard by 1/(d(1 − p)); each message is final the moment it arrives."""
        return _StochasticDecoder(self)


class _StochasticDecoder(Decoder):
    def add(self, worker: int, position: int) -> list[Block]:
        fresh = (worker, position) not in self.keys
        super().add(worker, position)
        # the weight never depends on what else arrives: apply it at once
        return [Block(((worker, position),), np.full((1, 1), self.scheme.weight))] if fresh else []

    def _cover(self, keys) -> np.ndarray:
        plan = self.scheme.plan
        return plan.assignment[:, [w for w, _ in keys]].sum(axis=1)

    @property
    def exact(self) -> bool:
        target = self.scheme.exact_cover
        return target is not None and bool(np.all(self._cover(dict.fromkeys(self.keys)) == target))

    def combination(self) -> Combination:
        keys = list(dict.fromkeys(self.keys))
        cover = self._cover(keys)
        err = float(np.sum((cover * self.scheme.weight - 1.0) ** 2) / self.scheme.plan.chunks)
        return Combination(keys, np.full((1, len(keys)), self.scheme.weight), self.exact, err)
