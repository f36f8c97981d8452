"""Scheme registry: each scheme module registers its class under its name."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from mpigc.errors import InputError
from mpigc.registry import Registry

if TYPE_CHECKING:
    from mpigc.codes.base import Scheme

#: every scheme by name (``code.scheme``); the modules of :mod:`mpigc.codes` register on first use
SCHEMES: Registry[type] = Registry("scheme", "code.scheme", package="mpigc.codes", group="mpigc.schemes")

T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`~mpigc.codes.base.Scheme` available as ``code.scheme = name``."""
    return SCHEMES.register(name)


def scheme_class(name: str, key: str = "code.scheme") -> type[Scheme]:
    """Return the class registered as ``name``; raise an :class:`InputError` naming ``key`` otherwise."""
    return SCHEMES.lookup(name, key)


def make_scheme(code, workers: int, seed: int) -> Scheme:
    """Plan and build the scheme ``code.scheme`` for ``workers`` workers."""
    cls = scheme_class(code.scheme)
    if cls.allowed_assignments and code.assignment not in (None, *cls.allowed_assignments):
        raise InputError("code.assignment", f"{code.scheme} is defined on the {cls.default_assignment!r} "
                         f"assignment only, not {code.assignment!r}")
    return cls(cls.make_plan(code, workers, seed), code, seed)
