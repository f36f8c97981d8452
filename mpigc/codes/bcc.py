"""``bcc``: batched coupon's collector (Li, Kalan, Avestimehr, Soltanolkotabi 2018; docs/protocols.md#bcc).

The N chunks form b = ``code.batches`` batches of s = N/b consecutive chunks
(batch q is chunks qs … qs + s − 1). Every worker holds every chunk's data;
in round r it draws one batch, :func:`batch_draws` (element w of
``stream(seed, "bcc", r).integers(b, size=m)``: a function of (seed, r, w)
alone, the same for any m > w, in the simulator and on every MPI rank),
computes that batch's s chunk gradients in natural order and sends their sum
once finished. The master decodes exactly once every batch has arrived at
least once: ĝ = Σ_batches (first message of the batch); before that, the
approximate decode is the sum of the covered batches (coef_error = the
fraction of batches missing), which is also what least squares gives.

This is the one built-in scheme whose plan changes per round
(:meth:`~mpigc.codes.base.Scheme.round_orders`). The scheme object itself is
planned on round 0's draw, so ``mpigc plan`` shows round 0's orders.
Expected workers heard until every batch is covered: b·H_b (coupon collector).
"""
from __future__ import annotations

import numpy as np

from mpigc.codes.base import Block, Combination, Decoder, MessageKey
from mpigc.codes.classic import OneShot
from mpigc.codes.plan import Plan
from mpigc.codes.registry import register
from mpigc.errors import InputError
from mpigc.seeding import stream


def batch_draws(seed: int, rnd: int, workers: int, batches: int) -> np.ndarray:
    """Return the batch every worker draws in round ``rnd``, shape (m,), uniform on 0..b−1."""
    return stream(seed, "bcc", rnd).integers(batches, size=workers)


def batch_count(code, chunks: int) -> int:
    """Return b from ``code.batches``, checked (1..N, dividing N); auto = N / (smallest divisor of N ≥ load).

    Raises
    ------
    InputError
        Naming ``code.batches`` when b is outside 1..N or does not divide N.
    """
    b = code.batches
    if b is None:
        size = next(s for s in range(min(int(code.load), chunks), chunks + 1) if chunks % s == 0)
        return chunks // size
    if not 1 <= b <= chunks or chunks % b:
        raise InputError("code.batches", f"must divide code.chunks = {chunks} (batches of equal size, 1..{chunks}), "
                                         f"got {b}")
    return int(b)


def cover_times(t: np.ndarray, draws: np.ndarray, batches: int) -> np.ndarray:
    """Return, per round, when every batch has arrived once: max over batches of its earliest arrival.

    ``t`` (R, m) is each worker's message arrival (``inf``: none); ``draws``
    (R, m) or (1, m) its batch.
    """
    per_batch = np.full((t.shape[0], batches), np.inf)
    rows = np.broadcast_to(np.arange(t.shape[0])[:, None], t.shape)
    np.minimum.at(per_batch, (rows, np.broadcast_to(draws, t.shape)), t)
    return per_batch.max(axis=1)


@register("bcc")
class BatchedCoupon(OneShot):
    """Every worker computes a random batch each round; exact once every batch arrived (§6.3)."""

    config_keys = ("code.chunks", "code.load", "code.batches", "code.decode", "code.deadline")

    default_assignment = "all"  # every worker holds every chunk's data (held_chunks)
    allowed_assignments = ("all",)

    @classmethod
    def make_plan(cls, code, workers: int, seed: int) -> Plan:
        """Plan round 0's draw: worker w's order is its batch's chunks in natural order."""
        if code.parts != 1:
            raise InputError("code.parts", "bcc sends whole batch sums: it needs parts = 1")
        if code.ordering != "natural":
            raise InputError("code.ordering", "bcc computes its drawn batch in natural order: it needs "
                                              f'ordering = "natural", got {code.ordering!r}')
        chunks = int(code.chunks or workers)
        b = batch_count(code, chunks)
        orders = _orders(batch_draws(seed, 0, workers, b), chunks // b)
        assignment = np.zeros((chunks, workers), dtype=bool)
        for w, order in enumerate(orders):
            assignment[order, w] = True
        return Plan(assignment, orders, 1)

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        self.size = int(plan.loads[0])
        self.batches = plan.chunks // self.size
        self.info["batches b"] = self.batches
        self.info["chunks per batch"] = self.size
        harmonic = float(np.sum(1.0 / np.arange(1, self.batches + 1)))
        self.info["expected workers to cover every batch (b*H_b)"] = self.batches * harmonic
        self.info["orders shown"] = "round 0's draw (every round draws afresh)"

    def batch_of(self, worker: int) -> int:
        """Return the batch ``worker`` computes under this object's plan (a round's, from :meth:`for_round`)."""
        return int(self.plan.orders[worker][0]) // self.size

    def round_orders(self, rnd: int) -> tuple[np.ndarray, ...]:
        """Return each worker's drawn batch, as its chunks in natural order."""
        return _orders(batch_draws(self.seed, rnd, self.plan.workers, self.batches), self.size)

    def held_chunks(self, worker: int) -> np.ndarray:
        """Return every chunk: a worker may draw any batch."""
        return np.arange(self.plan.chunks)

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the sum of the worker's batch."""
        return self.plan.assignment[:, worker].astype(float)

    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """When every batch has arrived once, every round drawn as this object's plan."""
        draws = np.array([self.batch_of(w) for w in range(self.plan.workers)])
        return cover_times(self.finish_arrivals(arrival), draws[None, :], self.batches)

    def round_decode_times(self, arrival: np.ndarray, rounds: range) -> np.ndarray:
        """When every batch has arrived once, with each round's own draw."""
        m = self.plan.workers
        draws = np.array([batch_draws(self.seed, r, m, self.batches) for r in rounds]).reshape(len(rounds), m)
        return cover_times(self.finish_arrivals(arrival), draws, self.batches)

    def exact_stats(self, arrival: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """coef_error and condition of exactly decoded rounds: 0 and NaN (sums, no system solved)."""
        return np.zeros(len(arrival)), np.full(len(arrival), np.nan)

    def decoder(self) -> Decoder:
        """Take the first message of every batch."""
        return _BccDecoder(self)


def _orders(draws: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    return tuple(np.arange(int(q) * size, (int(q) + 1) * size) for q in draws)


class _BccDecoder(Decoder):
    def __init__(self, scheme: BatchedCoupon) -> None:
        super().__init__(scheme)
        self.first: dict[int, MessageKey] = {}  # batch -> its first message

    def add(self, worker: int, position: int) -> list[Block]:
        super().add(worker, position)
        batch = self.scheme.batch_of(worker)
        if batch in self.first:
            return []
        self.first[batch] = (worker, position)
        return [Block(((worker, position),), np.ones((1, 1)))]

    def needs(self, key: MessageKey) -> bool:
        return key in self.first.values()

    @property
    def exact(self) -> bool:
        return len(self.first) == self.scheme.batches

    def combination(self) -> Combination:
        keys = list(self.first.values())
        missing = self.scheme.batches - len(keys)
        return Combination(keys, np.ones((1, len(keys))), missing == 0, missing / self.scheme.batches)
