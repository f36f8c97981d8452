"""Gradient codes: assignments, orderings and every scheme's encoder and decoder.

Pure math (numpy/scipy): nothing here knows MPI or a clock. Schemes are
looked up by name in :data:`~mpigc.codes.registry.SCHEMES`; every module of
this package is imported on first use, so a new scheme is one new module
that decorates its class with :func:`~mpigc.codes.registry.register`.
"""
from __future__ import annotations

from mpigc.codes.base import Combination, Decoder, Scheme, combine, split_parts
from mpigc.codes.plan import Plan, make_plan
from mpigc.codes.registry import SCHEMES, make_scheme, register, scheme_class

SCHEMES.require(Scheme)  # plug-ins (``package.module:Name``, entry points): concrete Scheme subclasses

__all__ = ["Combination", "Decoder", "Plan", "Scheme", "SCHEMES", "combine", "make_plan",
           "make_scheme", "register", "scheme_class", "split_parts"]
