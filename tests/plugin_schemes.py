"""Plug-ins defined outside the package, named in configs as ``tests.plugin_schemes:Name``.

Nothing here registers itself: a config names these classes by module path,
and :meth:`mpigc.registry.Registry.lookup` imports this module and checks them.

* :class:`MyCrc` — crc, subclassed and left alone: must give exactly crc's results.
* :class:`PerturbedCrc` — crc whose decoder weights are 1 % too large: the kit must fail it.
* :class:`ClockedCrc` — crc whose weights move with the wall clock: the kit's clock check must fail it.
* :class:`Slow` / :class:`Half` — a straggler model and a workload that satisfy their interfaces.
* the rest — things that do not satisfy an interface (bad input).
"""
from __future__ import annotations

import time

import numpy as np

from mpigc.codes import Combination, Decoder, Scheme
from mpigc.codes.classic import CyclicRepetition
from mpigc.delays import StragglerModel
from mpigc.workloads import Objective
from mpigc.workloads.linear import LeastSquares

__version__ = "0.0.test"

PERTURBATION = 1.01


class MyCrc(CyclicRepetition):
    """crc, unchanged, from outside the package."""


class PerturbedCrc(CyclicRepetition):
    """crc whose decoder weights are perturbed by 1 %."""

    def decoder(self) -> Decoder:
        """Return crc's decoder with every weight times 1.01."""
        return _Perturbed(super().decoder())


class _Perturbed(Decoder):
    def __init__(self, inner: Decoder, factor: float = PERTURBATION) -> None:
        super().__init__(inner.scheme)
        self.inner = inner
        self.factor = factor

    def add(self, worker: int, position: int):
        super().add(worker, position)
        return self.inner.add(worker, position)

    @property
    def exact(self) -> bool:
        return self.inner.exact

    def combination(self) -> Combination:
        comb = self.inner.combination()
        return Combination(comb.keys, comb.weights * self.factor, comb.exact, comb.coef_error, comb.cond)


class ClockedCrc(CyclicRepetition):
    """crc whose decoder weights wobble by 1e-13 with the wall clock: exact enough, but not reproducible."""

    def decoder(self) -> Decoder:
        """Return crc's decoder with weights times 1 + 1e-13·(fraction of the current second)."""
        return _Perturbed(super().decoder(), 1.0 + 1e-13 * (time.time() % 1.0))


class Slow(StragglerModel):
    """Every chunk takes 1.5 chunk times."""

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        """Return 1.5 everywhere."""
        return np.full((positions, self.workers), 1.5)


class Half(LeastSquares):
    """Least squares, registered under another name (same gradients)."""


class NotAScheme:
    """A class with nothing of the interface."""


class HalfAScheme(Scheme):
    """A Scheme subclass that forgot decode_times and message_row."""

    def sends_after(self, worker: int) -> np.ndarray:
        """Send once, after the last task."""
        return np.array([len(self.plan.orders[worker]) - 1])


class LazyModel(StragglerModel):
    """A StragglerModel subclass defining neither slowdown nor durations."""


class NoEvaluate(Objective):
    """An Objective subclass without evaluate."""


not_a_class = 42
