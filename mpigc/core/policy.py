"""When a round stops waiting, and how its outcome is classified (docs/protocols.md#the-round).

One definition of a round for both backends: its clock starts (t = 0) just
before the first START is sent, with the data and the START payload already
built; the master listens until the exact decode or the cutoff
(:attr:`RoundPolicy.cutoff`), or, with ``code.wait_for = k``, until k distinct
workers have sent their last message of the round (docs/protocols.md#wait_for), whichever
is first: the simulator takes the k-th smallest last arrival
(:meth:`RoundPolicy.stop_times`), the MPI master counts them as they come
(:class:`LastMessages`). A message heard after the
cutoff never enters the round's decode nor its ``messages`` and
``chunks_done`` (the MPI runtime records it as stale; the simulator never
sees it).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from mpigc.codes import Combination, Scheme
from mpigc.delays import DelayModel

EXACT, APPROXIMATE, UNDECODABLE = 0, 1, 2
#: the scheme decoded exactly on paper, but the decode is not numerically sound: its condition
#: number is above :func:`cond_limit`, or (``run.verify``) its error above :func:`grad_tolerance`
UNSOUND = 3
#: the decoded gradient or loss holds NaN or infinity (from a worker or a plug-in)
NONFINITE = 4
#: what each status means, as summaries name them
STATUS_NAMES = {EXACT: "exact", APPROXIMATE: "approximate", UNDECODABLE: "undecodable",
                UNSOUND: "unsound", NONFINITE: "non-finite"}
#: relative gradient error an exact round may have, per dtype of the gradients (docs/protocols.md#errors)
GRAD_TOLERANCE = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-3}


def grad_tolerance(dtype=np.float64) -> float:
    """Largest relative error ||ĝ − g|| / ||g|| of a round that counts as exact, for gradients of ``dtype``.

    1e-6 for float64, 1e-3 for float32: far above rounding (a well-conditioned
    decode of float64 gradients errs by ~1e-15) and far below any real
    approximation (the approximate schemes err by 1e-2 and more).
    """
    dtype = np.dtype(dtype)
    if dtype not in GRAD_TOLERANCE:
        raise ValueError(f"no exactness tolerance for gradients of dtype {dtype}")
    return GRAD_TOLERANCE[dtype]


def cond_limit(dtype=np.float64) -> float:
    """Largest condition number of a decode that counts as exact: ``grad_tolerance(dtype) / eps(dtype)``.

    Solving a system of condition number κ loses up to κ·eps of relative
    accuracy, so above this limit rounding alone may exceed the tolerance
    (float64: 4.5e9; float32: 8.4e3).
    """
    return grad_tolerance(dtype) / float(np.finfo(np.dtype(dtype)).eps)

#: bytes/s assumed for a round's messages by ``mpigc run`` when ``[network]`` sets no bandwidth:
#: 100 MB/s, below one 1 GbE link and 10-50x below shared memory on a loaded node, so the
#: automatic timeout errs long (it only ends rounds whose workers have failed)
ASSUMED_BANDWIDTH = 1e8
#: the automatic timeout is this many nominal rounds (work and messages)
TIMEOUT_ROUNDS = 10.0


def round_message_seconds(scheme: Scheme, message_bytes: int, start_bytes: int, latency: float,
                          bandwidth: float) -> float:
    """Seconds a round's traffic takes through rank 0, all of it one message after another.

    Every worker gets one START of ``start_bytes`` and every send point of
    the plan sends one ``message_bytes`` result; each message costs
    ``latency`` plus its bytes over ``bandwidth`` (0: free).
    """
    results = int(scheme.send_mask().sum())
    count = scheme.plan.workers + results
    nbytes = scheme.plan.workers * start_bytes + results * message_bytes
    return count * latency + (nbytes / bandwidth if bandwidth > 0 else 0.0)


@dataclass(frozen=True)
class RoundPolicy:
    """When the master stops waiting for an exact decode."""

    approx: bool
    deadline: float
    timeout: float
    wait_for: int | None = None  # end the round once this many workers sent their last message

    def stop_times(self, scheme: Scheme, arrival: np.ndarray, exact_at: np.ndarray) -> np.ndarray:
        """When each round stops waiting, shape (R,): the exact decode, the cutoff or the k-th finished worker.

        Parameters
        ----------
        scheme
            The planned scheme (its send points say which message is a worker's last).
        arrival
            Shape (R, m, P): arrival of the message worker w sends after position p, ``inf`` if none.
        exact_at
            Shape (R,): the scheme's first exact-decode times (:meth:`Scheme.decode_times`).
        """
        stop = np.minimum(exact_at, self.cutoff)
        if self.wait_for is None:
            return stop
        last = last_sends(scheme)
        # a worker with nothing to send has sent everything from the start
        done = np.where(last >= 0, arrival[:, np.arange(len(last)), np.maximum(last, 0)], 0.0)
        waited = np.partition(done, self.wait_for - 1, axis=1)[:, self.wait_for - 1]
        return np.minimum(stop, waited)

    @property
    def cutoff(self) -> float:
        """Seconds after the round start at which the master decodes what it has."""
        return min(self.deadline, self.timeout) if self.approx else self.timeout

    def answers_due(self, decided: float) -> float:
        """Seconds after the round start at which a two-phase round stops waiting for answers.

        The round's timeout, but at least a tenth of it after ``decided``, the
        moment the instructions went out: with the default timeout that is one
        nominal worker round, time for a worker in the middle of a chunk to
        reach its next stop check. Missing answers leave the decode approximate.
        """
        return max(self.timeout, decided + 0.1 * self.timeout)

    @classmethod
    def for_scheme(cls, code, run, delays: DelayModel, scheme: Scheme, *, chunk_seconds: float = 0.0,
                   message_seconds: float = 0.0) -> RoundPolicy:
        """Policy of a ``[code]`` entry.

        The timeout defaults to :func:`auto_timeout`: 10× a nominal worker's
        round (δ·chunk_time for every model but a trace with a slope), plus
        δ × ``chunk_seconds`` (real compute per chunk, measured by the MPI
        workers under ``compute = "real"``) plus ``message_seconds`` (a
        round's traffic, :func:`round_message_seconds`).
        """
        timeout = run.round_timeout or auto_timeout(delays, scheme, chunk_seconds, message_seconds)
        approx = code.decode == "approx"
        wait_for = getattr(code, "wait_for", None)
        return cls(approx, float(code.deadline) if approx else np.inf, float(timeout),
                   int(wait_for) if wait_for is not None else None)


def auto_timeout(delays: DelayModel, scheme: Scheme, chunk_seconds: float = 0.0,
                 message_seconds: float = 0.0) -> float:
    """Return the automatic ``run.round_timeout``: ``10 × (nominal + δ × chunk_seconds + message_seconds)``.

    ``nominal`` is a nominal worker's modelled round on its longest task
    list δ (``delays.nominal_seconds``). With the two extra terms 0 this is
    the rule of every earlier version, so simulations without a
    ``[network]`` keep their timeouts.
    """
    load = scheme.plan.max_load
    nominal = delays.nominal_seconds(load, 1.0 / scheme.plan.chunks)
    return TIMEOUT_ROUNDS * (nominal + load * max(0.0, chunk_seconds) + max(0.0, message_seconds))


def last_sends(scheme: Scheme) -> np.ndarray:
    """Position after which each worker sends its last message of a round, shape (m,); -1 if it sends none."""
    mask = scheme.send_mask()
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), last, -1)


class LastMessages:
    """Counts, during one round, the workers that have sent everything they will send (``code.wait_for``).

    Parameters
    ----------
    wait_for
        k, or None: never done (the round ends by the exact decode or the cutoff).
    last
        :func:`last_sends` of the scheme.
    """

    def __init__(self, wait_for: int | None, last: np.ndarray) -> None:
        self.wait_for = wait_for
        self.last = last
        self.finished = {int(w) for w in np.flatnonzero(last < 0)}

    def add(self, worker: int, position: int) -> None:
        """Record the arrival of the message ``worker`` sent after ``position``."""
        if position == self.last[worker]:
            self.finished.add(int(worker))

    @property
    def done(self) -> bool:
        """Whether k workers have sent their last message: the round ends now."""
        return self.wait_for is not None and len(self.finished) >= self.wait_for


class Soundness:
    """Decides whether a decoded round is sound, for both backends; warns once about non-finite values.

    Parameters
    ----------
    dtype
        The gradients' dtype (``workload.dtype``; float64 when nothing is computed).
    run
        A label for the warning (the run's name).
    """

    def __init__(self, dtype=np.float64, run: str = "") -> None:
        self.cond_limit = cond_limit(dtype)
        self.tolerance = grad_tolerance(dtype)
        self.run = run
        self.warned = False

    def judge(self, status: int, cond: float, grad_error: float = float("nan"),
              finite: bool = True, rnd: int = -1) -> int:
        """Return the round's final status from the scheme's (:func:`status_of`) and the checks.

        Non-finite values make any decoded round :data:`NONFINITE`; an exact
        decode whose condition number is above the limit, or whose verified
        error is above the tolerance, is :data:`UNSOUND`. NaN ``cond`` (no
        system solved) and NaN ``grad_error`` (not verified) pass.
        """
        if status == UNDECODABLE:
            return status
        if not finite:
            self._warn(rnd)
            return NONFINITE
        if status == EXACT and (cond > self.cond_limit or grad_error > self.tolerance):
            return UNSOUND
        return status

    def judge_exact(self, cond: np.ndarray) -> np.ndarray:
        """Statuses of exactly decoded rounds known only by their condition numbers (vectorised)."""
        return np.where(np.asarray(cond) > self.cond_limit, UNSOUND, EXACT).astype(np.int8)

    def _warn(self, rnd: int) -> None:
        if not self.warned:
            self.warned = True
            where = f"run {self.run}: " if self.run else ""
            print(f"mpigc: warning: {where}round {rnd}: the decoded gradient or loss is not finite (NaN or "
                  f"infinity from a worker or a plug-in); such rounds get status {NONFINITE} and do not update "
                  "the model (warned once)", file=sys.stderr)


def finite(*values) -> bool:
    """Whether every value (arrays or scalars) is finite; None counts as finite."""
    return all(v is None or bool(np.all(np.isfinite(v))) for v in values)


def status_of(comb: Combination) -> int:
    """0 exact, 1 approximate, 2 nothing usable arrived."""
    if comb.exact:
        return EXACT
    # not ``coef_error < 1``: rescaled uncoded from fewer than m/2 workers errs by more than 1
    # (docs/protocols.md#approximate-decoding) yet is a real, unbiased estimate
    return APPROXIMATE if comb.used else UNDECODABLE
