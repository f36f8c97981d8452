"""TOML values for :mod:`mpigc.config`, written by tomli-w, one per line.

:func:`format_value` and :func:`format_key` leave quoting, escaping and
number spelling (inf, nan, exponents) to tomli-w, so :mod:`tomllib` reads
them back to the same values. They only join arrays and inline tables on one
line: a resolved config keeps each key on its own line beside
``# key = (auto)`` comments, and tomli-w writes whole documents, with arrays
one item per line, tables as sections and no comments. :func:`show` quotes
a value with its type for error messages.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w

_SCALARS = (bool, int, float, str)


def format_key(key: str) -> str:
    """Return ``key`` bare when TOML allows it, quoted otherwise (as tomli-w writes it)."""
    return tomli_w.dumps({key: 0}).removesuffix(" = 0\n")


def format_value(value: Any) -> str:
    """Return one TOML value on one line: str, int, float, bool, list/tuple or mapping (inline table).

    Raises
    ------
    TypeError
        For a value TOML cannot hold (e.g. None).
    """
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{format_key(str(k))} = {format_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if not isinstance(value, _SCALARS):  # tomli-w would also write dates, which no key holds
        raise TypeError(f"cannot write {type(value).__name__} as TOML")
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")


def type_name(value: Any) -> str:
    """Return the TOML name of a value's type, for error messages."""
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       ((list, tuple), "array"), (Mapping, "table")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def show(value: Any) -> str:
    """Return ``value`` as it would be written in TOML plus its type, e.g. ``1.5 (float)``."""
    try:
        text = format_value(value)
    except TypeError:
        text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type_name(value)})"
