"""Scheme registry: each scheme module registers its class under its name."""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import TYPE_CHECKING, Callable, TypeVar

from mpigc.errors import InputError

if TYPE_CHECKING:
    from mpigc.codes.base import Scheme

SCHEMES: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`~mpigc.codes.base.Scheme` available as ``code.scheme = name``."""

    def decorate(cls: T) -> T:
        SCHEMES[name] = cls
        return cls

    return decorate


def _load_all() -> None:
    for module in pkgutil.iter_modules(importlib.import_module("mpigc.codes").__path__):
        importlib.import_module(f"mpigc.codes.{module.name}")


def scheme_class(name: str) -> type[Scheme]:
    """The class registered as ``name``; an :class:`InputError` naming ``code.scheme`` otherwise."""
    _load_all()
    try:
        return SCHEMES[name]
    except KeyError:
        hint = difflib.get_close_matches(name, SCHEMES, n=1)
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        raise InputError("code.scheme", f"unknown scheme {name!r}{tip} (known: {', '.join(sorted(SCHEMES))})") from None


def make_scheme(code, workers: int, seed: int) -> Scheme:
    """Plan and build the scheme ``code.scheme`` for ``workers`` workers."""
    cls = scheme_class(code.scheme)
    if cls.allowed_assignments and code.assignment not in (None, *cls.allowed_assignments):
        raise InputError("code.assignment", f"{code.scheme} is defined on the {cls.default_assignment!r} "
                         f"assignment only, not {code.assignment!r}")
    return cls(cls.make_plan(code, workers, seed), code, seed)
