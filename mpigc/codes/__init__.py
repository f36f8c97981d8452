"""Gradient codes: assignments, orderings and every scheme's encoder and decoder.

Pure math (numpy/scipy): nothing here knows MPI or a clock. Schemes are
looked up by name in :data:`~mpigc.codes.registry.SCHEMES`; every module of
this package is imported on first use, so a new scheme is one new module
that decorates its class with :func:`~mpigc.codes.registry.register`.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil

from mpigc.codes.base import Combination, Decoder, Plan, Scheme, combine, split_parts
from mpigc.codes.registry import SCHEMES, register
from mpigc.errors import InputError

__all__ = ["Combination", "Decoder", "Plan", "Scheme", "SCHEMES", "combine", "make_plan",
           "make_scheme", "register", "scheme_class", "split_parts"]


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def scheme_class(name: str) -> type[Scheme]:
    """The class registered as ``name``; an :class:`InputError` naming ``code.scheme`` otherwise."""
    _load_all()
    try:
        return SCHEMES[name]
    except KeyError:
        hint = difflib.get_close_matches(name, SCHEMES, n=1)
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        raise InputError("code.scheme", f"unknown scheme {name!r}{tip} (known: {', '.join(sorted(SCHEMES))})") from None


def make_plan(code, workers: int, seed: int, default_assignment: str = "cyclic") -> Plan:
    """Assignment and per-worker orders for a ``[code]`` entry."""
    from mpigc.codes.assignments import make_assignment_with_order
    from mpigc.codes.ordering import make_orders

    name = code.assignment or default_assignment
    assignment, natural = make_assignment_with_order(name, workers, code.load, seed, code.chunks)
    orders = make_orders(assignment, code.ordering, seed, natural, code.parts)
    return Plan(assignment, tuple(orders), int(code.parts))


def make_scheme(code, workers: int, seed: int) -> Scheme:
    """Plan and build the scheme ``code.scheme`` for ``workers`` workers."""
    cls = scheme_class(code.scheme)
    if cls.allowed_assignments and code.assignment not in (None, *cls.allowed_assignments):
        raise InputError("code.assignment", f"{code.scheme} is defined on the {cls.default_assignment!r} "
                         f"assignment only, not {code.assignment!r}")
    return cls(cls.make_plan(code, workers, seed), code, seed)
