"""When a round stops waiting, and how its outcome is classified (PROTOCOLS §3).

One definition of a round for both backends: its clock starts (t = 0) just
before the first START is sent, with the data and the START payload already
built; the master listens until the exact decode or the cutoff
(:attr:`RoundPolicy.cutoff`), whichever is first. A message heard after the
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
        return cls(approx, float(code.deadline) if approx else np.inf, float(timeout))


def status_of(comb: Combination) -> int:
    """0 exact, 1 approximate, 2 nothing usable arrived."""
    if comb.exact:
        return EXACT
    # not ``coef_error < 1``: rescaled uncoded from fewer than m/2 workers errs by more than 1
    # (PROTOCOLS §3) yet is a real, unbiased estimate
    return APPROXIMATE if comb.used else UNDECODABLE
