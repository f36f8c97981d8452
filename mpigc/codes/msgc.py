"""M-SGC, P3's multiplexed sequential gradient code (docs/protocols.md#sequential-schemes).

Every worker holds (W−1)(λ+1) uncoded D1 units of its own and B crc-coded D2
groups of λ+1 units; the closed forms (:func:`msgc_split`, :func:`msgc_load`)
are shared with the tuner, so engine and grid search charge the same load.
"""
from __future__ import annotations

import numpy as np

from mpigc.bursts import bursty_ok, window
from mpigc.codes.base import Plan
from mpigc.codes.classic import encoding_matrix
from mpigc.codes.registry import register
from mpigc.codes.sgc import BurstyDesign, Decode, SeqState, SequentialScheme, cyclic_plan


def msgc_sizes(B: int, W: int, lam: int) -> np.ndarray:
    """M-SGC's W − 1 + B equal mini-task sizes, in units of 1/m of the data."""
    return np.full(W - 1 + B, msgc_split(B, W, lam)[1])


def msgc_split(B: int, W: int, lam: int) -> tuple[float, float]:
    """M-SGC: (fraction of the data in D1, one mini-task's size in units of 1/m of the data)."""
    denom = B + (W - 1) * (lam + 1)
    return (W - 1) * (lam + 1) / denom, (lam + 1) / denom


def msgc_load(m: int, B: int, W: int, lam: int) -> float:
    """M-SGC's normalised load (λ+1)(W−1+B) / (m(B + (W−1)(λ+1))), λ < m."""
    return (lam + 1) * (W - 1 + B) / (m * (B + (W - 1) * (lam + 1)))


@register("m-sgc")
class Multiplexed(BurstyDesign, SequentialScheme):
    """Multiplexed SGC (P3's main scheme): uncoded D1 chunks and crc-coded D2 groups (T_seq = W−2+B)."""

    @classmethod
    def bursty_plan(cls, code, workers: int) -> Plan:
        """Plan the (W−1)(λ+1) D1 units of every worker and its B D2 groups of λ+1 units."""
        m, B, W, lam = workers, code.B, code.W, code.lam
        units = m * ((W - 1) * (lam + 1) + B)
        a = np.zeros((units, m), dtype=bool)
        for w in range(m):
            a[w * (W - 1) * (lam + 1):(w + 1) * (W - 1) * (lam + 1), w] = True
            for j in range(B):
                a[m * (W - 1) * (lam + 1) + j * m + (w + np.arange(lam + 1)) % m, w] = True
        return Plan(a, tuple(np.flatnonzero(a[:, w]) for w in range(m)), 1)

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        self.B, self.W, self.lam = int(code.B), int(code.W), int(code.lam)
        self.T = self.W - 2 + self.B
        self.slots = self.W - 1 + self.B
        self.d1 = self.m * (self.W - 1)  # D1 chunks; kinds 0..d1-1, then d1 + j for D2 group j
        self.d1_units = self.d1 * (self.lam + 1)
        self.units = self.d1_units + self.B * self.m
        frac = msgc_split(self.B, self.W, self.lam)[0]
        self.sizes = msgc_sizes(self.B, self.W, self.lam)
        self.matrix = encoding_matrix(cyclic_plan(self.m, self.lam + 1), self.lam, seed)
        self.info.update({"D1 fraction": frac, "D2 groups": self.B, "D2 tolerance": self.lam})

    def row(self, w: int, kind: int) -> np.ndarray:
        """Return the coefficients of mini-task ``kind``: a D1 unit, or a crc row over a D2 group."""
        out = np.zeros(self.units)
        if kind < self.d1:
            out[kind * (self.lam + 1):(kind + 1) * (self.lam + 1)] = 1.0
        else:
            j = kind - self.d1
            out[self.d1_units + j * self.m:self.d1_units + (j + 1) * self.m] = self.matrix[w]
        return out

    def _have(self, st: SeqState, t: int, r: int) -> np.ndarray:
        """Bool (m, W−1): which own D1 chunks of job t each worker delivered in rounds t … r−1."""
        have = np.zeros((self.m, self.W - 1), dtype=bool)
        for q in range(r - t):
            rr = t + q
            k = st.kinds[rr, :, q]
            ok = ~st.strag[rr] & (st.jobs[rr, :, q] == t) & (k >= 0) & (k < self.d1)
            w = np.flatnonzero(ok)
            have[w, k[w] - w * (self.W - 1)] = True
        return have

    def plan_round(self, st: SeqState, r: int) -> None:
        """Fill round r: slot q serves job r − q, with an own D1 chunk, else a missing one, else its D2 task."""
        own = np.arange(self.m) * (self.W - 1)
        for q in range(self.slots):
            t = r - q
            if not 0 <= t < st.total_jobs:
                continue
            st.jobs[r, :, q] = t
            if q < self.W - 1:
                st.kinds[r, :, q] = own + q
                continue
            missing = ~self._have(st, t, r)
            st.kinds[r, :, q] = np.where(missing.any(axis=1), own + missing.argmax(axis=1),
                                         self.d1 + q - (self.W - 1))

    def conforms(self, st: SeqState, r: int, now: np.ndarray) -> bool:
        """Return whether the (B, W, λ)-bursty model holds for the window ending at round r."""
        return bool(bursty_ok(window(st.strag, r, self.W - 1), now, self.B, self.lam))

    def decode(self, st: SeqState, t: int, upto: int, solve: bool = True) -> Decode | None:
        """Decode job t from its D1 units and every D2 group's crc decode, or None if one is missing."""
        rr, w, q, kind = self.received(st, t, upto)
        in_d1 = kind < self.d1
        if len(np.unique(kind[in_d1])) < self.d1:
            return None
        # a D2 result counts once per (group, worker): code it as group·m + worker
        d2 = (kind[~in_d1] - self.d1) * self.m + w[~in_d1]
        counts = np.bincount(np.unique(d2) // self.m, minlength=self.B)
        if np.any(counts < self.m - self.lam):
            return None
        if not solve:
            return Decode(t, [], np.zeros(0), float("nan"))
        _, keys = self.first_keys(rr[in_d1], w[in_d1], q[in_d1], kind[in_d1])  # chunk c's first result, c = 0..
        coefs = [np.ones(self.d1)]
        err = 0.0  # D1 chunks enter once with weight 1: only the D2 groups can err
        for j in range(self.B):
            sel = ~in_d1 & (kind == self.d1 + j)
            alive, group_keys = self.first_keys(rr[sel], w[sel], q[sel], w[sel])
            a, residual = self.crc_solve(self.matrix, alive)
            coefs.append(a)
            keys += group_keys
            err += residual
        return Decode(t, keys, np.concatenate(coefs), err / self.units)
