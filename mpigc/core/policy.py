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

from dataclasses import dataclass

import numpy as np

from mpigc.codes import Combination, Scheme
from mpigc.delays import DelayModel

EXACT, APPROXIMATE, UNDECODABLE = 0, 1, 2


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
    def for_scheme(cls, code, run, delays: DelayModel, scheme: Scheme) -> RoundPolicy:
        """Policy of a ``[code]`` entry.

        The timeout defaults to 10× a nominal worker's round (10·δ·chunk_time
        for every model but a trace with a slope).
        """
        nominal = delays.nominal_seconds(scheme.plan.max_load, 1.0 / scheme.plan.chunks)
        timeout = run.round_timeout or 10.0 * nominal
        approx = code.decode == "approx"
        wait_for = getattr(code, "wait_for", None)
        return cls(approx, float(code.deadline) if approx else np.inf, float(timeout),
                   int(wait_for) if wait_for is not None else None)


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


def status_of(comb: Combination) -> int:
    """0 exact, 1 approximate, 2 nothing usable arrived."""
    if comb.exact:
        return EXACT
    # not ``coef_error < 1``: rescaled uncoded from fewer than m/2 workers errs by more than 1
    # (docs/protocols.md#approximate-decoding) yet is a real, unbiased estimate
    return APPROXIMATE if comb.used else UNDECODABLE
