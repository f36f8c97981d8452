"""P2's nested gradient codes on an FRC ladder (docs/protocols.md#nested).

A ladder of tolerances s_1 < … < s_L (``code.ladder``) gives group sizes
n_ℓ = s_ℓ + 1 with n_ℓ | n_{ℓ+1} and n_L | m, and N = m chunks. Level-ℓ group
q is workers q·n_ℓ … (q+1)·n_ℓ − 1 and holds chunks q·n_ℓ … (q+1)·n_ℓ − 1.
Worker w works in *stages*: stage ℓ is the chunks of its level-ℓ block not in
its level-(ℓ−1) block; it sends the sum of a stage's chunk gradients when the
stage is done, i.e. after positions n_1 − 1, n_2 − 1, …, n_L − 1.

The master decodes at the first moment some level ℓ has, in every level-ℓ
group, a worker that delivered stages 1..ℓ: the sum of that worker's stage
messages is its level-ℓ block's gradient, and the blocks partition the
chunks. When several levels are complete at once (messages seen in the same
poll, or tied arrivals), the *lowest* complete level decodes, and in every
group the worker that completed that level *first* (in the order the master
heard of the messages) supplies the block. :attr:`Combination.level` is that
level as a 0-based index into the ladder (0 ↔ s_1); the run's resolved config
carries the ladder. Decoding blocks covered at different levels is left out
(docs/protocols.md#nested calls it an extension): exactness follows the level rule only,
so an approximate decode at a deadline or timeout is reported as status 1
even when its least-squares estimate happens to be exact (coef_error ≈ 0).

The layout is fixed by the ladder: ``code.load`` and ``code.ordering`` are
ignored (stages run in ladder order, chunks ascending inside a stage).
No :class:`~mpigc.codes.base.Block` is emitted early: which level decodes
is known only at the decode, so no message's weight is final before it.
"""
from __future__ import annotations

import numpy as np

from mpigc.codes.base import Block, Combination, Decoder, MessageKey, Plan, Scheme, least_squares_combination
from mpigc.codes.registry import register
from mpigc.errors import InputError


def check_ladder(code, workers: int) -> tuple[int, ...]:
    """Validate ``code.ladder`` (and ``code.parts``, ``code.chunks``) for ``workers``; return the group sizes.

    Raises
    ------
    InputError
        One line naming ``code.ladder`` (or ``code.parts`` / ``code.chunks``).
    """
    ladder = [int(s) for s in code.ladder]
    if not ladder:
        raise InputError("code.ladder", "nested needs at least one tolerance, e.g. ladder = [0, 1, 3]")
    if any(s < 0 for s in ladder):
        raise InputError("code.ladder", f"must list non-negative integers, got {ladder}")
    if any(b <= a for a, b in zip(ladder, ladder[1:])):
        raise InputError("code.ladder", f"must be strictly increasing, got {ladder}")
    sizes = tuple(s + 1 for s in ladder)
    for a, b in zip(sizes, sizes[1:]):
        if b % a:
            raise InputError("code.ladder", f"levels do not nest: group size {a} (s = {a - 1}) does not divide "
                                            f"{b} (s = {b - 1}), got {ladder}")
    if workers % sizes[-1]:
        raise InputError("code.ladder", f"the largest group size {sizes[-1]} (s = {sizes[-1] - 1}) must divide "
                                        f"code.workers = {workers}, got {ladder}")
    if int(code.parts) != 1:
        raise InputError("code.parts", "nested sends whole stage sums: it needs parts = 1")
    chunks = code.chunks
    if chunks is not None and int(chunks) != workers:
        raise InputError("code.chunks", f"nested uses N = m = {workers} chunks, got {chunks}")
    return sizes


def stages_of(worker: int, sizes: tuple[int, ...]) -> list[np.ndarray]:
    """Chunks of each stage of ``worker``, in processing order (ascending inside a stage)."""
    out, previous = [], np.zeros(0, dtype=int)
    for n in sizes:
        block = (worker // n) * n + np.arange(n)
        out.append(block[~np.isin(block, previous)])
        previous = block
    return out


@register("nested")
class NestedFrc(Scheme):
    """P2's nested FRC codes: one message per ladder stage, decode at the first complete level (§4.1)."""

    default_assignment = "nested"
    allowed_assignments = ("nested",)
    config_keys: tuple[str, ...] = ("code.ladder",)

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        m = plan.workers
        self.sizes = check_ladder(code, m)
        self.ladder = tuple(n - 1 for n in self.sizes)
        self.levels = len(self.sizes)
        self.ends = np.array(self.sizes) - 1  # position after which stage ℓ is sent
        self.stage_of_position = {int(p): j for j, p in enumerate(self.ends)}
        self._rows: dict[MessageKey, np.ndarray] = {}
        for w in range(m):
            for j, chunks in enumerate(stages_of(w, self.sizes)):
                row = np.zeros(plan.chunks)
                row[chunks] = 1.0
                self._rows[(w, int(self.ends[j]))] = row
        self.info.update({
            "ladder s": list(self.ladder),
            "group sizes n": list(self.sizes),
            "groups per level": [m // n for n in self.sizes],
            "stage sizes (chunks)": [int(a - b) for a, b in zip(self.sizes, (0, *self.sizes[:-1]))],
            "cumulative load per level": [round(n / m, 6) for n in self.sizes],
            "decode level": "lowest complete level (0-based ladder index)",
        })

    @classmethod
    def make_plan(cls, code, workers: int, seed: int) -> Plan:
        """Level-L blocks as the assignment; each worker's order lists its stages in turn."""
        sizes = check_ladder(code, workers)
        n = sizes[-1]
        chunk = np.arange(workers)
        assignment = (chunk[:, None] // n) == (np.arange(workers)[None, :] // n)
        orders = tuple(np.concatenate(stages_of(w, sizes)) for w in range(workers))
        return Plan(assignment, orders, 1)

    # -- worker side -------------------------------------------------------
    def sends_after(self, worker: int) -> np.ndarray:
        """After each stage of the ladder (cumulative loads)."""
        return self.ends.copy()

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the stage's FRC group sum at its ladder level."""
        return self._rows[(worker, position)]

    # -- master side -------------------------------------------------------
    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """Min over levels of max over groups of min over members of when stages 1..ℓ are all in."""
        staged = arrival[:, :, self.ends]  # (R, m, L)
        delivered = np.maximum.accumulate(staged, axis=2)  # stages 1..ℓ all in
        r, m = arrival.shape[:2]
        best = np.full(r, np.inf)
        for j, n in enumerate(self.sizes):
            per_group = delivered[:, :, j].reshape(r, m // n, n).min(axis=2)
            best = np.minimum(best, per_group.max(axis=1))
        return best

    def decoder(self) -> Decoder:
        """Decode at the lowest ladder level that is complete."""
        return _NestedDecoder(self)


class _NestedDecoder(Decoder):
    """Tracks, per level and group, the first worker that delivered stages 1..ℓ."""

    def __init__(self, scheme: NestedFrc) -> None:
        super().__init__(scheme)
        self.delivered = np.zeros((scheme.plan.workers, scheme.levels), dtype=bool)
        self.prefix = np.zeros(scheme.plan.workers, dtype=int)  # stages 1..prefix delivered
        self.first: list[dict[int, int]] = [{} for _ in range(scheme.levels)]  # level -> group -> worker

    def add(self, worker: int, position: int) -> list[Block]:
        s: NestedFrc = self.scheme
        stage = s.stage_of_position[int(position)]
        if self.delivered[worker, stage]:
            return []
        super().add(worker, position)
        self.delivered[worker, stage] = True
        old = int(self.prefix[worker])
        new = old
        while new < s.levels and self.delivered[worker, new]:
            new += 1
        self.prefix[worker] = new
        for level in range(old, new):
            self.first[level].setdefault(worker // s.sizes[level], worker)
        return []

    def complete_level(self) -> int:
        """Return the lowest level whose every group has a complete worker, −1 if none."""
        s: NestedFrc = self.scheme
        for level, n in enumerate(s.sizes):
            if len(self.first[level]) == s.plan.workers // n:
                return level
        return -1

    @property
    def exact(self) -> bool:
        return self.complete_level() >= 0

    def combination(self) -> Combination:
        s: NestedFrc = self.scheme
        level = self.complete_level()
        if level < 0:
            keys = list(self.keys)
            rows = np.array([s.message_row(*k) for k in keys]).reshape(len(keys), s.plan.chunks)
            comb = least_squares_combination(rows, keys, s.plan.chunks, 1)
            comb.exact = False  # exactness follows the level rule (module docstring)
            return comb
        keys: list[MessageKey] = []
        for q in range(s.plan.workers // s.sizes[level]):
            w = self.first[level][q]
            keys.extend((w, int(p)) for p in s.ends[: level + 1])
        return Combination(keys, np.ones((1, len(keys))), True, 0.0, level=level)
