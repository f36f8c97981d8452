"""The contract every gradient code fulfils, whatever moves its messages.

A scheme is planned once from metadata (assignment, orders, seeds). It then
answers three questions that both backends ask:

* worker side: after its ``p``-th task, does worker ``w`` send a message,
  and which linear combination of its chunk-part gradients is it
  (:meth:`Scheme.message_row`, :meth:`Scheme.encode`);
* master side, vectorised over rounds: given when each message arrives, when
  can the master first decode exactly (:meth:`Scheme.decode_times`);
* master side, per round: given the set of messages that arrived, which
  coefficients combine them into the gradient (:class:`Decoder`).

Coefficients are planned from metadata only; vectors are only combined. A
chunk-part gradient ``g_i^(k)`` is column ``i * parts + k`` of a message's
coefficient row, and message vectors have length ``d_pad / parts``.

Plans that change per round (optional; ``bcc`` is the one built-in user).
Every other scheme keeps the defaults below and runs exactly as before. A
scheme whose workers compute different chunks in different rounds overrides

* :meth:`Scheme.round_orders`: every worker's order in round ``r``, a
  function of (seed, r) only, so the simulator and every MPI rank agree;
* :meth:`Scheme.round_decode_times`: the vectorised decode times of given
  rounds, from each round's orders (the simulator's call);
* :meth:`Scheme.held_chunks`: the chunks whose data a worker holds (every
  chunk it may draw), built before the clock starts.

Both backends then take :meth:`Scheme.for_round` (a copy whose :attr:`Scheme.plan`
has the round's orders) for everything a round does: workers encode with it
and the master decodes with its :meth:`Scheme.decoder`. The scheme itself
stays a consistent fixed-plan scheme for one representative round (its
:attr:`~Scheme.plan`), so :meth:`Scheme.decode_times` and :meth:`Scheme.decoder`
agree on it. A round's orders keep each worker's load (the plan's), so a
round's durations, timeout and send points are the plan's.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from mpigc.codes.inplace import combine_into, scratch_for
from mpigc.codes.plan import Plan, make_plan

MessageKey = tuple[int, int]  # (worker, task position)


@dataclass
class Combination:
    """Decoder output: part ``k`` of the gradient is ``sum_j weights[k, j] * v[keys[j]]``."""

    keys: list[MessageKey]
    weights: np.ndarray  # (parts, len(keys))
    exact: bool
    coef_error: float
    cond: float = float("nan")  # worst condition number of a system actually solved
    level: int = -1  # multi-level schemes (nested): the level that decoded; -1 otherwise

    @property
    def used(self) -> set[MessageKey]:
        """Keys of the messages that enter the decode with a nonzero weight."""
        mask = np.any(self.weights != 0, axis=0)
        return {k for k, u in zip(self.keys, mask) if u}


def combine(comb: Combination, vectors: dict[MessageKey, np.ndarray], dim: int) -> np.ndarray:
    """Apply a combination to message vectors; return the first ``dim`` decoded coordinates."""
    if not comb.keys:
        return np.zeros(dim)
    stacked = np.stack([vectors[k] for k in comb.keys])
    out = (comb.weights.astype(stacked.dtype, copy=False) @ stacked).reshape(-1)  # in the messages' dtype
    return out[:dim]


def split_parts(grad: np.ndarray, parts: int) -> np.ndarray:
    """Pad a gradient with zeros to a multiple of ``parts``; return shape (parts, d_pad/parts)."""
    d = grad.shape[0]
    part_len = -(-d // parts)
    if part_len * parts != d:
        grad = np.concatenate([grad, np.zeros(part_len * parts - d)])
    return grad.reshape(parts, part_len)


def least_squares_combination(rows: np.ndarray, keys: list[MessageKey], chunks: int, parts: int) -> Combination:
    """Best linear decode of arbitrary messages: ``X = E pinv(M)`` (docs/protocols.md#approximate-decoding)."""
    target = np.zeros((parts, chunks * parts))
    for k in range(parts):
        target[k, k::parts] = 1.0
    if len(keys) == 0:
        return Combination([], np.zeros((parts, 0)), False, 1.0)
    weights = target @ np.linalg.pinv(rows)
    err = coef_error(weights @ rows, target)
    return Combination(list(keys), weights, err < 1e-12, err)


def coef_error(phi: np.ndarray, target: np.ndarray) -> float:
    """``||Phi - E||_F^2 / ||E||_F^2`` (docs/protocols.md#errors)."""
    return float(np.sum((phi - target) ** 2) / np.sum(target**2))


@dataclass(frozen=True)
class Block:
    """A final piece of the decode: gradient parts += weights @ [v[k] for k in keys]."""

    keys: tuple[MessageKey, ...]
    weights: np.ndarray  # (parts, len(keys))


class Decoder(ABC):
    """Master-side state of one round: metadata of the messages heard of so far.

    :meth:`add` may return :class:`Block` s that are final: their weights are
    exactly those the eventual :meth:`combination` gives their keys, so a
    runtime can apply them while stragglers are still computing and only the
    rest of the combination stays on the critical path.
    """

    def __init__(self, scheme: Scheme) -> None:
        self.scheme = scheme
        self.keys: list[MessageKey] = []

    def add(self, worker: int, position: int) -> list[Block]:
        """Record that the message of ``worker`` after task ``position`` arrived."""
        self.keys.append((worker, position))
        return []

    def needs(self, key: MessageKey) -> bool:
        """Whether an added message not applied in a :class:`Block` may still enter :meth:`combination`.

        False lets a runtime free the message's vector at once (a surplus
        message). The default keeps every vector: least-squares decoders may
        weigh any of them.
        """
        return True

    @property
    @abstractmethod
    def exact(self) -> bool:
        """Whether the messages so far determine the gradient exactly."""

    @abstractmethod
    def combination(self) -> Combination:
        """Exact coefficients when :attr:`exact`, else the best approximate ones."""

    def instructions(self) -> dict[int, list[tuple[int, np.ndarray]]]:
        """Two-phase schemes: per worker, the (chunk, weights over parts) it must combine and send."""
        raise NotImplementedError(f"{type(self.scheme).__name__} decodes in one phase")


class GenericDecoder(Decoder):
    """Decodes any scheme by least squares over the message coefficient rows."""

    @property
    def exact(self) -> bool:
        """True when the least-squares combination of the messages so far is exact."""
        return self.combination().exact

    def combination(self) -> Combination:
        """Least-squares coefficients over the messages that count (exact when they span the target)."""
        s = self.scheme
        keys = [k for k in self.keys if s.counts(k, self.keys)]
        rows = np.array([s.message_row(*k) for k in keys]).reshape(len(keys), -1)
        return least_squares_combination(rows, keys, s.plan.chunks, s.plan.parts)


class Scheme(ABC):
    """A gradient code planned for one configuration (see module docstring).

    Subclasses are registered by name with :func:`mpigc.codes.register` and
    built by :func:`mpigc.codes.make_scheme`.
    """

    #: the assignment used when ``code.assignment`` is unset
    default_assignment: str = "cyclic"
    #: the only assignments the scheme is defined on (empty: any)
    allowed_assignments: tuple[str, ...] = ()
    #: config keys the scheme reads (listed by ``mpigc schemes``)
    config_keys: tuple[str, ...] = ()
    #: P3's sequential codes (one job per round over several models, :mod:`mpigc.codes.sgc`) set True
    sequential: bool = False

    #: messages after tasks carry coded vectors; False: they are progress notes and
    #: the vectors come in a second phase (:meth:`Decoder.instructions`, :meth:`answer`)
    carries_vectors: bool = True

    def __init__(self, plan: Plan, code, seed: int) -> None:
        self.plan = plan
        self.code = code
        self.seed = seed
        self.info: dict = {}

    @classmethod
    def make_plan(cls, code, workers: int, seed: int) -> Plan:
        """Plan the assignment and orders for ``code``; schemes with their own layout override this."""
        return make_plan(code, workers, seed, cls.default_assignment)

    @property
    def two_phase(self) -> bool:
        """Whether the master sends instructions and collects one answer per worker."""
        return not self.carries_vectors

    def answer(self, instructions: list[tuple[int, np.ndarray]], chunk_grads: dict[int, np.ndarray]) -> np.ndarray:
        """Second phase: one vector, sum over instructed chunks of weights @ parts."""
        any_grad = chunk_grads[int(instructions[0][0])]
        out = np.empty(split_parts(any_grad, self.plan.parts).shape[1], dtype=any_grad.dtype)
        self.answer_into(instructions, chunk_grads, out)
        return out

    def answer_into(self, instructions: list[tuple[int, np.ndarray]], chunk_grads: dict[int, np.ndarray],
                    out: np.ndarray) -> None:
        """:meth:`answer` written into ``out`` (a message's payload), without d-sized temporaries."""
        scratch = scratch_for(out)
        for j, (chunk, weights) in enumerate(instructions):
            combine_into(out, weights, split_parts(chunk_grads[int(chunk)], self.plan.parts), scratch, add=j > 0)

    # -- worker side -------------------------------------------------------
    @abstractmethod
    def sends_after(self, worker: int) -> np.ndarray:
        """Task positions after which ``worker`` sends a message (sorted)."""

    @abstractmethod
    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Coefficient row (length N*parts) of the message sent after ``position``."""

    def encode(self, worker: int, position: int, chunk_grads: dict[int, np.ndarray]) -> np.ndarray:
        """Message vector from the worker's chunk gradients (full length d each)."""
        any_grad = next(iter(chunk_grads.values()))
        out = np.empty(split_parts(any_grad, self.plan.parts).shape[1], dtype=any_grad.dtype)
        self.encode_into(worker, position, chunk_grads, out)
        return out

    def encode_into(self, worker: int, position: int, chunk_grads: dict[int, np.ndarray], out: np.ndarray) -> None:
        """:meth:`encode` written into ``out`` (a message's payload), without d-sized temporaries."""
        parts = self.plan.parts
        row = self.message_row(worker, position).reshape(self.plan.chunks, parts)
        scratch = scratch_for(out)
        first = True
        for chunk in self.plan.orders[worker][: position + 1]:
            coefs = row[chunk]
            if not np.any(coefs):
                continue
            combine_into(out, coefs, split_parts(chunk_grads[int(chunk)], parts), scratch, add=not first)
            first = False
        if first:
            out.fill(0.0)

    # -- master side -------------------------------------------------------
    def send_mask(self) -> np.ndarray:
        """Bool (m, P): whether worker w sends after position p."""
        mask = np.zeros((self.plan.workers, self.plan.max_load), dtype=bool)
        for w in range(self.plan.workers):
            mask[w, self.sends_after(w)] = True
        return mask

    def counts(self, key: MessageKey, heard: list[MessageKey]) -> bool:
        """Whether a received message may enter the decode (ablations override)."""
        return True

    @abstractmethod
    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """First exact-decode time per round.

        ``arrival`` has shape (R, m, P): arrival time of the message worker w
        sends after position p, ``inf`` where none arrives (not a send point,
        failed worker, or beyond its load). Returns shape (R,), ``inf`` where
        the round never decodes exactly.
        """

    def decoder(self) -> Decoder:
        """Return a fresh master-side decoder for one round."""
        return GenericDecoder(self)

    # -- plans that change per round (optional, see the module docstring) ---
    def round_orders(self, rnd: int) -> tuple[np.ndarray, ...] | None:
        """Return every worker's processing order in round ``rnd``; None (the default): the plan's orders.

        An override returns one order per worker, each as long as the plan's
        (``plan.loads`` is every round's load) and made of chunks in
        :meth:`held_chunks`; it depends on (seed, ``rnd``) only.
        """
        return None

    def for_round(self, rnd: int) -> Scheme:
        """Return the scheme as it runs in round ``rnd``: ``self`` unless :meth:`round_orders` gives orders.

        With orders, a shallow copy whose :attr:`plan` holds them (and the
        assignment they imply), so its :meth:`sends_after`, :meth:`message_row`,
        :meth:`encode` and :meth:`decoder` are the round's.
        """
        orders = self.round_orders(rnd)
        if orders is None:
            return self
        assignment = np.zeros_like(self.plan.assignment)
        for w, order in enumerate(orders):
            assignment[order, w] = True
        view = copy.copy(self)
        view.plan = Plan(assignment, tuple(orders), self.plan.parts)
        return view

    def round_decode_times(self, arrival: np.ndarray, rounds: range) -> np.ndarray:
        """Return :meth:`decode_times` of rounds ``rounds``; ``arrival[j]`` belongs to round ``rounds[j]``.

        Fixed plans ignore ``rounds``; schemes with :meth:`round_orders` use each round's orders.
        """
        return self.decode_times(arrival)

    def held_chunks(self, worker: int) -> np.ndarray:
        """Return the chunks whose data ``worker`` holds: its planned chunks, or all it may draw per round."""
        return self.plan.orders[worker]

    def describe(self) -> dict:
        """Facts for ``mpigc plan``: scheme-specific extras."""
        return dict(self.info)
