"""Sequential gradient codes (P3, docs/protocols.md#sequential-schemes): GC, SR-SGC and M-SGC across rounds.

Jobs t = 0..J−1; job t starts in round t and must decode by the end of round
t + T_seq. Every round worker w runs ``slots`` mini-tasks; slot q of round r
holds a (job, kind) pair, ``job = −1`` for an idle slot (a job outside
0..J−1: the slot is still charged, as in P3's simulator, except in a round
in which no worker has any task, which costs nothing: :mod:`mpigc.core.sgc_engine`).
M-SGC lives in :mod:`mpigc.codes.msgc`. ``kind`` names the linear combination of
workload chunks ("units") the mini-task returns: :meth:`SequentialScheme.row`.

This module is pure math: it plans rounds from the straggler history,
checks a history against the scheme's straggler model, and says which
received results decode a job with which coefficients. The clock, the
(1+μ)·t_min rule and wait-outs live in :mod:`mpigc.core.sgc_engine`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mpigc.bursts import bursty_ok, check_bursty, window
from mpigc.codes.assignments import make_assignment_with_order
from mpigc.codes.base import Plan, Scheme
from mpigc.codes.classic import crc_coefficients, crc_residual, encoding_matrix
from mpigc.codes.registry import make_scheme, register, scheme_class
from mpigc.errors import InputError

ResultKey = tuple[int, int, int]  # (round, worker, slot)

#: survivor sets whose crc coefficients a scheme keeps (a wrapped trace repeats its sets every wrap)
COEF_CACHE = 256


@dataclass
class SeqState:
    """What the master knows: every round's plan and its recorded stragglers."""

    jobs: np.ndarray  # (R, m, P) job of each slot, -1 idle
    kinds: np.ndarray  # (R, m, P) task kind of each slot (see the scheme's ``row``)
    strag: np.ndarray  # (R, m) recorded stragglers (none in a wait-out round)
    total_jobs: int


@dataclass
class Decode:
    """Coefficients that combine received mini-task results into one job's gradient."""

    job: int
    keys: list[ResultKey]
    coefs: np.ndarray
    coef_error: float


def cyclic_plan(workers: int, load: int) -> Plan:
    """Return the ``cyclic`` plan: worker w holds chunks w … w+load−1 (mod m), in that order."""
    a, orders = make_assignment_with_order("cyclic", workers, load, seed=0)  # cyclic draws no randomness
    return Plan(a, tuple(orders), 1)


class SequentialScheme(Scheme):
    """Base of the schemes run by the sequential engine (``sequential = True``)."""

    sequential = True
    default_assignment = "cyclic"
    allowed_assignments = ("cyclic",)
    config_keys: tuple[str, ...] = ("code.mu", "workload.models")
    #: uncoded in this regime: no straggler is ever declared
    waits_for_all = False
    T = 0

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        if code.parts != 1:
            raise InputError("code.parts", f"{code.scheme} sends whole mini-task results: it needs parts = 1")
        self.m = plan.workers
        self.slots = 1
        self.units = self.m
        self.sizes = np.ones(1)
        self._coefs: dict[bytes, tuple[np.ndarray, float]] = {}

    def crc_solve(self, matrix: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, float]:
        """Return (coefficients, ‖C_Fᵀa − 1‖²) of survivors ``alive`` (sorted) of ``matrix``, memoised.

        The least-squares solve costs ~16 ms at m = 256 and is a pure
        function of the survivor set, which repeats on a wrapped trace (a
        256-worker Lambda run of 496 jobs meets 5–36 distinct sets): the
        cache returns the very same numbers, only sooner.
        """
        key = alive.tobytes()
        hit = self._coefs.get(key)
        if hit is None:
            a = crc_coefficients(matrix, alive)
            hit = (a, crc_residual(matrix, alive, a))
            if len(self._coefs) >= COEF_CACHE:
                self._coefs.pop(next(iter(self._coefs)))  # the oldest set
            self._coefs[key] = hit
        return hit[0].copy(), hit[1]

    @property
    def load(self) -> float:
        """Normalised load: the fraction of one job's data a worker processes per round."""
        return scheme_load(self.sizes, self.m)

    def new_state(self, jobs: int) -> SeqState:
        """Return an empty state for ``jobs`` jobs (J + T_seq rounds)."""
        shape = (jobs + self.T, self.m, self.slots)
        return SeqState(np.full(shape, -1, dtype=np.int64), np.full(shape, -1, dtype=np.int64),
                        np.zeros(shape[:2], dtype=bool), int(jobs))

    def received(self, st: SeqState, t: int, upto: int) -> tuple[np.ndarray, ...]:
        """Results of job ``t`` received in rounds ≤ ``upto``: arrays (round, worker, slot, kind).

        Ordered by round, then worker, then slot (the order decoders take
        the first result of each chunk or worker in).
        """
        hi = min(upto, t + self.T) + 1
        got = (st.jobs[t:hi] == t) & ~st.strag[t:hi, :, None]
        rr, w, q = np.nonzero(got)
        return rr + t, w, q, st.kinds[t:hi][rr, w, q]

    @staticmethod
    def first_keys(rr: np.ndarray, w: np.ndarray, q: np.ndarray, by: np.ndarray) -> tuple[np.ndarray, list[ResultKey]]:
        """Sorted distinct values of ``by`` and, for each, the key (round, worker, slot) of its first result."""
        values, first = np.unique(by, return_index=True)
        return values, list(zip(rr[first].tolist(), w[first].tolist(), q[first].tolist()))

    def coef_error(self, keys_kinds: list[tuple[int, int]], coefs: np.ndarray) -> float:
        """‖Σ a·row − 1‖² / N over the units (docs/protocols.md#errors)."""
        phi = np.zeros(self.units)
        for (w, kind), a in zip(keys_kinds, coefs):
            phi += a * self.row(w, kind)
        return float(np.sum((phi - 1.0) ** 2) / self.units)

    def plan_round(self, st: SeqState, r: int) -> None:
        """Fill ``st.jobs[r]``/``st.kinds[r]``: every worker's crc task of job r (idle past J)."""
        st.jobs[r, :, 0] = r if r < st.total_jobs else -1
        st.kinds[r, :, 0] = 0

    def row(self, w: int, kind: int) -> np.ndarray:
        """Coefficients over the units of the result of worker ``w``'s mini-task ``kind``."""
        raise NotImplementedError

    def conforms(self, st: SeqState, r: int, now: np.ndarray) -> bool:
        """Whether recording stragglers ``now`` in round r keeps the history in the scheme's model."""
        raise NotImplementedError

    def decode(self, st: SeqState, t: int, upto: int, solve: bool = True) -> Decode | None:
        """Coefficients decoding job t from results of rounds ≤ ``upto``; None if not yet decodable.

        With ``solve = False`` only decodability is decided (keys and coefficients left empty).
        """
        raise NotImplementedError

    def describe(self) -> dict:
        """Return the plan's summary for ``mpigc plan``: T_seq, mini-tasks per round, load, units."""
        return {**self.info, "T_seq": self.T, "mini-tasks per round": self.slots,
                "normalised load": self.load, "units (workload chunks)": self.units}

    # The single-round contract does not apply: the sequential engine drives these schemes.
    def sends_after(self, worker: int) -> np.ndarray:
        """Not used: the SGC engine, not the single-round contract, drives these schemes."""
        raise NotImplementedError("sequential schemes run in the sequential engine")

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Not used: the SGC engine, not the single-round contract, drives these schemes."""
        raise NotImplementedError("sequential schemes run in the sequential engine")

    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """Not used: the SGC engine, not the single-round contract, drives these schemes."""
        raise NotImplementedError("sequential schemes run in the sequential engine")


class BurstyDesign:
    """Mixin of the schemes designed for the bursty model: its keys (B, W, λ), checked before any plan.

    A subclass (listed before its :class:`SequentialScheme` base) supplies
    :meth:`bursty_plan`, called once ``check_bursty`` accepted the parameters.
    """

    config_keys = ("code.B", "code.W", "code.lambda", *SequentialScheme.config_keys)

    @classmethod
    def make_plan(cls, code, workers: int, seed: int) -> Plan:
        """Check (B, W, λ) against the workers, then plan (:meth:`bursty_plan`)."""
        check_bursty(code.B, code.W, code.lam, workers)
        return cls.bursty_plan(code, workers)

    @classmethod
    def bursty_plan(cls, code, workers: int) -> Plan:
        """Return the scheme's plan for parameters ``check_bursty`` accepted."""
        raise NotImplementedError


class _CrcJobs(SequentialScheme):
    """One (m, s) crc task per worker per round; job t decodes from ≥ m − s distinct workers."""

    def _setup_crc(self, s: int) -> None:
        self.s = int(s)
        self.matrix = encoding_matrix(cyclic_plan(self.m, self.s + 1), self.s, self.seed)
        self.sizes = np.array([self.s + 1.0])
        self.info["tolerance s"] = self.s

    def row(self, w: int, kind: int) -> np.ndarray:
        return self.matrix[w]

    def decode(self, st: SeqState, t: int, upto: int, solve: bool = True) -> Decode | None:
        rr, w, q, _ = self.received(st, t, upto)
        if len(np.unique(w)) < self.m - self.s:
            return None
        if not solve:
            return Decode(t, [], np.zeros(0), float("nan"))
        alive, keys = self.first_keys(rr, w, q, w)  # each worker's first result
        a, residual = self.crc_solve(self.matrix, alive)
        return Decode(t, keys, a, residual / self.units)


@register("gc-seq")
class GCSequential(_CrcJobs):
    """P3's GC baseline: an (m, s = load − 1) crc code, one job per round (T_seq = 0)."""

    config_keys = ("code.load", "code.mu", "workload.models")

    @classmethod
    def make_plan(cls, code, workers: int, seed: int) -> Plan:
        """Plan the cyclic assignment of an (m, s = load − 1) crc code."""
        if not 1 <= code.load <= workers:
            raise InputError("code.load", f"gc-seq needs 1 ≤ load ≤ {workers} workers, got {code.load}")
        return cyclic_plan(workers, code.load)

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        self._setup_crc(code.load - 1)

    def conforms(self, st: SeqState, r: int, now: np.ndarray) -> bool:
        """Return whether round r's stragglers number at most s."""
        return int(now.sum()) <= self.s


def sr_sgc_tolerance(B: int, W: int, lam: int) -> int:
    """SR-SGC's per-round tolerance s = ⌈Bλ / (W − 1 + B)⌉."""
    return math.ceil(B * lam / (W - 1 + B))


@register("sr-sgc")
class SelectiveRepeat(BurstyDesign, _CrcJobs):
    """Selective-repetition SGC: crc with s = ⌈Bλ/(W−1+B)⌉ plus redos B rounds later (T_seq = B)."""

    @classmethod
    def bursty_plan(cls, code, workers: int) -> Plan:
        """Plan the cyclic assignment of the crc code with SR-SGC's tolerance s."""
        if (code.W - 1) % code.B:
            raise InputError("code.W", f"sr-sgc needs W − 1 divisible by B; W − 1 = {code.W - 1}, B = {code.B}")
        return cyclic_plan(workers, sr_sgc_tolerance(code.B, code.W, code.lam) + 1)

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        self.B, self.W, self.lam = int(code.B), int(code.W), int(code.lam)
        self.T = self.B
        self._setup_crc(sr_sgc_tolerance(self.B, self.W, self.lam))

    def plan_round(self, st: SeqState, r: int) -> None:
        """Fill round r: job r's crc task, plus the redo of job r − B where round r − B lost it."""
        super().plan_round(st, r)
        d = r - self.B
        if 0 <= d < st.total_jobs:
            missing = ~((st.jobs[d, :, 0] == d) & ~st.strag[d])
            v = int(missing.sum())
            if v > self.s:
                redo = np.flatnonzero(missing)[: v - self.s]
                st.jobs[r, redo, 0] = d

    def exempt(self, st: SeqState, x: int) -> bool:
        """Round x had no redo and at most s stragglers: GC alone covered it (P3's exemption)."""
        jobs = st.jobs[x, :, 0]
        redo = (jobs >= 0) & (jobs != x)
        return not redo.any() and int(st.strag[x].sum()) <= self.s

    def conforms(self, st: SeqState, r: int, now: np.ndarray) -> bool:
        """Return whether the (B, W, λ)-bursty model holds, rounds GC covered alone exempted."""
        past = window(st.strag, r, self.W - 1).copy()
        for i, x in enumerate(range(r - self.W + 1, r)):
            if x >= 0 and self.exempt(st, x):
                past[i] = False
        return bool(bursty_ok(past, now, self.B, self.lam))


def scheme_load(sizes: np.ndarray, m: int) -> float:
    """Normalised load of slot sizes (in units of 1/m of the data); one formula for engine and tuner."""
    return float(np.sum(sizes)) / m


class SequentialUncoded(SequentialScheme):
    """``uncoded`` in the sequential regime: one chunk per worker, wait for every worker every round."""

    waits_for_all = True

    @classmethod
    def make_plan(cls, code, workers: int, seed: int) -> Plan:
        """Plan one chunk per worker (the uncoded assignment)."""
        return cyclic_plan(workers, 1)

    def row(self, w: int, kind: int) -> np.ndarray:
        """Return the unit vector of worker ``w``'s own chunk."""
        out = np.zeros(self.units)
        out[w] = 1.0
        return out

    def conforms(self, st: SeqState, r: int, now: np.ndarray) -> bool:
        """Return True only for a round without stragglers: uncoded waits for every worker."""
        return not now.any()

    def decode(self, st: SeqState, t: int, upto: int, solve: bool = True) -> Decode | None:
        """Decode job t once every worker's result of it has arrived (all weights 1)."""
        rr, w, q, _ = self.received(st, t, upto)
        if len(np.unique(w)) < self.m:
            return None
        _, keys = self.first_keys(rr, w, q, w)
        return Decode(t, keys, np.ones(self.m), 0.0)


def build_sequential(code, workers: int, seed: int) -> SequentialScheme:
    """Build a sequential scheme for a ``[code]`` entry (``uncoded`` → :class:`SequentialUncoded`)."""
    if code.scheme == "uncoded":
        return SequentialUncoded(SequentialUncoded.make_plan(code, workers, seed), code, seed)
    if not getattr(scheme_class(code.scheme), "sequential", False):
        raise InputError("code.scheme", f"{code.scheme!r} is a single-round scheme; it cannot run beside "
                                        "sequential schemes (only uncoded can: it then waits for every worker)")
    return make_scheme(code, workers, seed)


def is_sequential(config) -> bool:
    """Whether any scheme entry of ``config`` is sequential (then the whole config runs in that regime)."""
    return any(getattr(scheme_class(c.scheme), "sequential", False) for c in config.codes)
