"""Stochastic gradient coding (Bitar, Wootters, El Rouayheb 2020), as a plug-in.

Written only against mpigc's public interface (docs/extending.md): it gives
exactly the built-in ``stochastic`` scheme's results on the same seed.

* Placement: each chunk on d = ``code.load`` random workers — mpigc's
  ``random`` assignment, planned by :meth:`Scheme.make_plan` from the seed.
* Worker side: one message after the last chunk, the sum of the worker's
  chunk gradients (:meth:`message_row` is the worker's column of the
  assignment; the base class's :meth:`~mpigc.codes.Scheme.encode` builds
  the vector from it).
* Master side: ĝ = Σ_{heard w} f_w / (d(1 − p)). With ``code.p`` unset,
  p = 1 − wait_for/m (0 without ``code.wait_for``). The decode is exact only
  when every chunk is covered exactly d(1 − p) times, which needs d(1 − p)
  to be a whole number.
"""
from __future__ import annotations

import numpy as np

from mpigc.codes import Combination, Decoder, Scheme
from mpigc.errors import InputError

WHOLE = 1e-9


class Stochastic(Scheme):
    """Stochastic gradient coding: random d-fold placement, heard worker sums weighed by 1/(d(1 − p))."""

    default_assignment = "random"
    config_keys = ("code.load", "code.chunks", "code.p", "code.wait_for", "code.decode", "code.deadline")

    def __init__(self, plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        if plan.parts != 1:
            raise InputError("code.parts", "example-stochastic sends whole worker sums: it needs parts = 1")
        replication = plan.assignment.sum(axis=1)
        if not np.all(replication == replication[0]):
            raise InputError("code.assignment", "example-stochastic needs every chunk on the same number of workers")
        self.replication = int(replication[0])
        wait_for = getattr(code, "wait_for", None)
        self.p = float(code.p) if code.p is not None else (1.0 - wait_for / code.workers if wait_for else 0.0)
        if not 0.0 <= self.p < 1.0:
            raise InputError("code.p", f"must be in [0, 1), got {self.p:g}")
        expected = self.replication * (1.0 - self.p)
        self.weight = 1.0 / expected
        whole = round(expected)
        self.exact_cover = whole if abs(expected - whole) <= WHOLE * expected else None
        self.info.update({"p": self.p, "weight": self.weight, "exact possible": self.exact_cover is not None})

    # -- worker side -----------------------------------------------------------
    def sends_after(self, worker: int) -> np.ndarray:
        """Send once, after the worker's last chunk."""
        return np.array([len(self.plan.orders[worker]) - 1])

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the sum of the worker's chunks: its column of the assignment."""
        return self.plan.assignment[:, worker].astype(float)

    # -- master side -----------------------------------------------------------
    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """Return, per round, the first time every chunk is covered exactly ``exact_cover`` times (else inf)."""
        last = self.plan.loads - 1
        t = arrival[:, np.arange(self.plan.workers), last]          # (R, m): each worker's one message
        out = np.full(t.shape[0], np.inf)
        if self.exact_cover is None:
            return out
        order = np.argsort(t, axis=1, kind="stable")
        ts = np.take_along_axis(t, order, axis=1)
        held = self.plan.assignment.T.astype(np.int64)
        cover = np.zeros((t.shape[0], self.plan.chunks), dtype=np.int64)
        for j in range(t.shape[1]):
            cover += held[order[:, j]]
            later = ts[:, j + 1] if j + 1 < t.shape[1] else np.full(t.shape[0], np.inf)
            # messages arriving at the same moment enter the decoder together: decide after the last of them
            hit = np.isfinite(ts[:, j]) & (later > ts[:, j]) & np.all(cover == self.exact_cover, axis=1)
            out = np.where(np.isinf(out) & hit, ts[:, j], out)
        return out

    def decoder(self) -> Decoder:
        """Return a decoder weighing every heard worker by 1/(d(1 − p))."""
        return StochasticDecoder(self)


class StochasticDecoder(Decoder):
    """Sum of the heard worker sums, each weighed by the scheme's weight."""

    scheme: Stochastic

    def _cover(self, keys) -> np.ndarray:
        return self.scheme.plan.assignment[:, [w for w, _ in keys]].sum(axis=1)

    @property
    def exact(self) -> bool:
        """Whether every chunk is covered exactly ``exact_cover`` times."""
        target = self.scheme.exact_cover
        return target is not None and bool(np.all(self._cover(dict.fromkeys(self.keys)) == target))

    def combination(self) -> Combination:
        """Weigh every heard worker by 1/(d(1 − p)); coef_error = Σ_i (c_i·weight − 1)² / N."""
        keys = list(dict.fromkeys(self.keys))
        cover = self._cover(keys)
        err = float(np.sum((cover * self.scheme.weight - 1.0) ** 2) / self.scheme.plan.chunks)
        return Combination(keys, np.full((1, len(keys)), self.scheme.weight), self.exact, err)
