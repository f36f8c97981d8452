"""Classic one-message-per-worker gradient codes: uncoded, FRC and CRC (Tandon et al.)."""
from __future__ import annotations

import numpy as np

from mpigc.codes.base import Block, Combination, Decoder, MessageKey, Plan, Scheme
from mpigc.codes.registry import register
from mpigc.errors import InputError
from mpigc.seeding import stream


class OneShot(Scheme):
    """A worker sends one message, after its last task."""

    def sends_after(self, worker: int) -> np.ndarray:
        """One message, after the worker's last task."""
        return np.array([len(self.plan.orders[worker]) - 1])

    def finish_arrivals(self, arrival: np.ndarray) -> np.ndarray:
        """Arrival of each worker's single message, shape (R, m)."""
        last = self.plan.loads - 1
        return arrival[:, np.arange(self.plan.workers), last]


@register("uncoded")
class Uncoded(OneShot):
    """No redundancy: every worker sends the sum of its own chunks (docs/protocols.md#uncoded)."""

    config_keys = ("code.chunks", "code.decode", "code.deadline", "code.rescale")

    default_assignment = "uncoded"
    allowed_assignments = ("uncoded",)

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the sum of the worker's own chunks (its column of the assignment)."""
        return self.plan.assignment[:, worker].astype(float)

    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """Return the last arrival of every round: uncoded waits for all m workers."""
        return self.finish_arrivals(arrival).max(axis=1)

    def decoder(self) -> Decoder:
        """Sum the workers heard, rescaled by m/k when ``rescale`` is set."""
        return _UncodedDecoder(self)


class _UncodedDecoder(Decoder):
    def add(self, worker: int, position: int) -> list[Block]:
        fresh = (worker, position) not in self.keys
        super().add(worker, position)
        # with rescaling the weight depends on how many arrive, so nothing is final early
        return [Block(((worker, position),), np.ones((1, 1)))] if fresh and not self.scheme.code.rescale else []

    @property
    def exact(self) -> bool:
        return len(set(w for w, _ in self.keys)) == self.scheme.plan.workers

    def combination(self) -> Combination:
        plan = self.scheme.plan
        keys = list(dict.fromkeys(self.keys))
        scale = 1.0
        if self.scheme.code.rescale and keys:
            scale = plan.workers / len(keys)
        weights = np.full((1, len(keys)), scale)
        covered = plan.assignment[:, [w for w, _ in keys]].any(axis=1)
        err = (np.sum(~covered) + np.sum(covered) * (scale - 1.0) ** 2) / plan.chunks
        return Combination(keys, weights, bool(covered.all()), float(err))


@register("frc")
class FractionalRepetition(OneShot):
    """Groups of δ workers share δ chunks; one message per group suffices (§3.2)."""

    config_keys = ("code.load", "code.decode", "code.deadline", "code.rescale")

    default_assignment = "frc"
    allowed_assignments = ("frc",)

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        if plan.parts != 1:
            raise InputError("code.parts", "frc sends whole group sums: it needs parts = 1")
        holders = [tuple(np.flatnonzero(plan.assignment[:, w])) for w in range(plan.workers)]
        labels = {h: q for q, h in enumerate(dict.fromkeys(holders))}
        self.group = np.array([labels[h] for h in holders])
        self.groups = len(labels)
        self.info["groups"] = self.groups
        self.info["tolerance s"] = int(plan.loads.min()) - 1

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the sum of the worker's group of chunks."""
        return self.plan.assignment[:, worker].astype(float)

    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """When every group has been heard from at least once."""
        t = self.finish_arrivals(arrival)
        per_group = np.full((t.shape[0], self.groups), np.inf)
        for q in range(self.groups):
            per_group[:, q] = t[:, self.group == q].min(axis=1)
        return per_group.max(axis=1)

    def decoder(self) -> Decoder:
        """Take one message per group (the first heard); ``rescale``: times groups / groups heard (§6.1)."""
        return _FrcDecoder(self)


class _FrcDecoder(Decoder):
    def add(self, worker: int, position: int) -> list[Block]:
        group = int(self.scheme.group[worker])
        first = all(int(self.scheme.group[w]) != group for w, _ in self.keys)
        super().add(worker, position)
        # with rescaling (ErasureHead's) the weight depends on how many groups arrive: nothing is final early
        return [Block(((worker, position),), np.ones((1, 1)))] if first and not self.scheme.code.rescale else []

    def combination(self) -> Combination:
        plan = self.scheme.plan
        first: dict[int, MessageKey] = {}
        for key in self.keys:
            first.setdefault(int(self.scheme.group[key[0]]), key)
        keys = list(first.values())
        covered = plan.assignment[:, [w for w, _ in keys]].any(axis=1)
        scale = self.scheme.groups / len(keys) if self.scheme.code.rescale and keys else 1.0
        err = float((np.sum(~covered) + np.sum(covered) * (scale - 1.0) ** 2) / plan.chunks)
        return Combination(keys, np.full((1, len(keys)), scale), bool(covered.all()), err)

    @property
    def exact(self) -> bool:
        return len({int(self.scheme.group[w]) for w, _ in self.keys}) == self.scheme.groups


@register("crc")
class CyclicRepetition(OneShot):
    """Tandon's cyclic repetition code (Alg. 2): any m − s workers decode (§3.3)."""

    config_keys = ("code.load", "code.decode", "code.deadline")

    allowed_assignments = ("cyclic",)

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        if plan.parts != 1:
            raise InputError("code.parts", "crc is an l = 1 code: set parts = 1 (use poly or partial for l > 1)")
        m, n = plan.workers, plan.chunks
        if n != m or not np.all(plan.loads == plan.loads[0]):
            raise InputError("code.assignment", "crc needs the cyclic assignment (N = m, equal loads)")
        self.tolerance = int(plan.loads[0]) - 1
        self.matrix = encoding_matrix(plan, self.tolerance, seed)
        self.info["tolerance s"] = self.tolerance

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the worker's row of the cyclic-repetition encoding matrix B."""
        return self.matrix[worker]

    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """Return the (m − s)-th arrival of every round."""
        t = np.sort(self.finish_arrivals(arrival), axis=1)
        return t[:, self.plan.workers - self.tolerance - 1]

    def decoder(self) -> Decoder:
        """Solve a·B_F = 1 for the survivor set F (memoised per set)."""
        return _CrcDecoder(self)

    def worst_condition(self, samples: int = 200) -> float:
        """Worst condition number of C_F over sampled sets F of m − s workers."""
        m = self.plan.workers
        rng = stream(self.seed, "code", 1)
        worst = 1.0
        for _ in range(samples):
            alive = np.sort(rng.choice(m, m - self.tolerance, replace=False))
            worst = max(worst, float(np.linalg.cond(self.matrix[alive])))
        return worst


class _CrcDecoder(Decoder):
    @property
    def exact(self) -> bool:
        return len(set(self.keys)) >= self.scheme.plan.workers - self.scheme.tolerance

    def combination(self) -> Combination:
        keys = list(dict.fromkeys(self.keys))
        n = self.scheme.plan.chunks
        if not keys:
            return Combination([], np.zeros((1, 0)), False, 1.0)
        alive = [w for w, _ in keys]
        a = crc_coefficients(self.scheme.matrix, alive)
        err = crc_residual(self.scheme.matrix, alive, a) / n
        return Combination(keys, a[None, :], self.exact, err)


def crc_coefficients(matrix: np.ndarray, alive) -> np.ndarray:
    """Return a with ``C_Fᵀ a = 1`` for the rows ``alive`` of a crc encoding matrix (least squares)."""
    c_t = matrix[alive].T
    ones = np.ones(matrix.shape[1])
    a, *_ = np.linalg.lstsq(c_t, ones, rcond=None)
    # One step of iterative refinement: C_F is ill-conditioned for large m and s (coefficients
    # reach ~1e4), and solving again for the residual cuts ||C_Fᵀa − 1|| by orders of magnitude.
    a += np.linalg.lstsq(c_t, ones - c_t @ a, rcond=None)[0]
    return a


def crc_residual(matrix: np.ndarray, alive, a: np.ndarray) -> float:
    """Return ‖C_Fᵀ a − 1‖², the squared coefficient error of a crc decode (N times ``coef_error``)."""
    return float(np.sum((matrix[alive].T @ a - 1.0) ** 2))


def encoding_matrix(plan: Plan, tolerance: int, seed: int) -> np.ndarray:
    """Tandon's Alg. 2: C (m × N) with row w supported on worker w's chunks and 1 in B's row space.

    H (s × N) is Gaussian with H·1 = 0; row w has C[w, w] = 1 and
    H[:, supp_w] C[w, supp_w]ᵀ = 0, so every row of C is orthogonal to H's
    rows, as is 1, and any m − s rows span that (m − s)-dimensional space.
    """
    m, n = plan.workers, plan.chunks
    c = np.zeros((m, n))
    if tolerance == 0:
        c[np.arange(m), np.arange(m)] = 1.0
        return c
    h = stream(seed, "code", 0).standard_normal((tolerance, n))
    h[:, -1] = -h[:, :-1].sum(axis=1)
    for w in range(m):
        support = plan.orders[w]
        others = support[support != w]
        coef = np.linalg.solve(h[:, others], -h[:, w])
        c[w, w] = 1.0
        c[w, others] = coef
    return c
