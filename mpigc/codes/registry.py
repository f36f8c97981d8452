"""Scheme registry: each scheme module registers its class under its name."""
from __future__ import annotations

from typing import Callable, TypeVar

SCHEMES: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`~mpigc.codes.base.Scheme` available as ``code.scheme = name``."""

    def decorate(cls: T) -> T:
        SCHEMES[name] = cls
        return cls

    return decorate
