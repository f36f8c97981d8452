"""A scheme's plan: which worker holds which chunk, and in which order it works through them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpigc.codes.assignments import make_assignment_with_order
from mpigc.codes.ordering import make_orders


@dataclass(frozen=True)
class Plan:
    """What every worker holds and in which order it processes it."""

    assignment: np.ndarray  # bool (N, m)
    orders: tuple[np.ndarray, ...]  # orders[w] = chunk indices in processing order
    parts: int

    @property
    def chunks(self) -> int:
        """Number of chunks N."""
        return self.assignment.shape[0]

    @property
    def workers(self) -> int:
        """Number of workers m."""
        return self.assignment.shape[1]

    @property
    def loads(self) -> np.ndarray:
        """Chunks per worker δ_w, shape (m,)."""
        return np.array([len(o) for o in self.orders])

    @property
    def max_load(self) -> int:
        """Largest load: the number of task positions P."""
        return int(self.loads.max())


def make_plan(code, workers: int, seed: int, default_assignment: str = "cyclic") -> Plan:
    """Plan the assignment and per-worker orders of a ``[code]`` entry."""
    name = code.assignment or default_assignment
    assignment, natural = make_assignment_with_order(name, workers, code.load, seed, code.chunks)
    orders = make_orders(assignment, code.ordering, seed, natural, code.parts)
    return Plan(assignment, tuple(orders), int(code.parts))
