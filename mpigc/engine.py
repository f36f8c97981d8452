"""Round logic shared by the simulator and the MPI runtime.

When a round stops waiting, how its outcome is classified, and how the
decoded gradient is checked and applied: both backends call these, so they
agree on every rule of PROTOCOLS §3 (silent failures, deadlines, timeouts).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpigc.codes import Combination, Scheme

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

    @classmethod
    def for_scheme(cls, code, run, nominal_seconds: float, scheme: Scheme) -> "RoundPolicy":
        """Policy of a ``[code]`` entry.

        The timeout defaults to 10× a nominal worker's round, ``nominal_seconds``
        (10·δ·chunk_time for every model but a trace with a slope).
        """
        timeout = run.round_timeout or 10.0 * nominal_seconds
        approx = code.decode == "approx"
        return cls(approx, float(code.deadline) if approx else np.inf, float(timeout))


def status_of(comb: Combination) -> int:
    """0 exact, 1 approximate, 2 nothing usable arrived."""
    if comb.exact:
        return EXACT
    return APPROXIMATE if comb.coef_error < 1.0 else UNDECODABLE


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """||ĝ − g|| / ||g|| (PROTOCOLS §5)."""
    norm = float(np.linalg.norm(truth))
    return float(np.linalg.norm(estimate - truth)) / norm if norm > 0 else float(np.linalg.norm(estimate))
