"""TOML values for :mod:`mpigc.config`: values written by tomli-w, and the typed key checks.

:func:`format_value` and :func:`format_key` leave quoting, escaping and
number spelling (inf, nan, exponents) to tomli-w, so :mod:`tomllib` reads
them back to the same values. They only join arrays and inline tables on one
line: a resolved config keeps each key on its own line beside
``# key = (auto)`` comments, and tomli-w writes whole documents, with arrays
one item per line, tables as sections and no comments. :class:`Key`
describes one config key; :func:`check` type- and range-checks a value read
for it.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tomli_w

from mpigc.errors import InputError

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


@dataclass(frozen=True)
class Key:
    """How one TOML key is typed, bounded and documented."""

    name: str
    kind: str  # "int" | "float" | "bool" | "str" | "ints"
    doc: str
    lo: float | None = None
    lo_open: bool = False
    hi: float | None = None
    choices: tuple[str, ...] = ()
    message: str = ""  # replaces the generated range message
    finite: bool = True
    unset: str = "auto"  # how a None value is shown: "auto" (resolved later) or "unset"

    @property
    def field(self) -> str:
        """The dataclass attribute (``lambda`` is a Python keyword: ``lam``)."""
        return "lam" if self.name == "lambda" else self.name

    def rule(self) -> str:
        """Human text for the allowed values."""
        if self.choices:
            return " | ".join(f'"{c}"' for c in self.choices)
        kind = {"int": "integer", "float": "float", "bool": "boolean", "str": "string",
                "ints": "integer list"}[self.kind]
        if self.lo is not None and self.hi is not None:
            return f"{kind} in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {self.lo:g}"
        return kind


def range_problem(key: Key) -> str:
    """Return the problem text for an out-of-range value of ``key``."""
    if key.message:
        return key.message
    if key.kind in ("int", "ints") and key.lo in (0, 1) and key.hi is None:
        what = "positive integer" if key.lo == 1 else "non-negative integer"
        return f"must be a {what}" if key.kind == "int" else f"must list {what}s"
    if key.hi is not None:
        return f"must be a probability in [{key.lo:g}, {key.hi:g}]"
    return f"must be {'>' if key.lo_open else '>='} {key.lo:g}"


def in_range(key: Key, x: float) -> bool:
    """Whether ``x`` satisfies the bounds of ``key``."""
    if key.lo is not None and (x <= key.lo if key.lo_open else x < key.lo):
        return False
    return key.hi is None or x <= key.hi


def check(key: Key, label: str, value: Any) -> Any:
    """Type- and range-check one value; return it converted (float, tuple)."""
    kind = key.kind
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(label, f"must be an integer, got {show(value)}")
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(label, f"must be a number, got {show(value)}")
        value = float(value)
        if math.isnan(value):
            raise InputError(label, f"must be a number, got {show(value)}")
        if key.finite and math.isinf(value):
            raise InputError(label, f"must be a finite number, got {show(value)}")
    if kind == "bool" and not isinstance(value, bool):
        raise InputError(label, f"must be true or false, got {show(value)}")
    if kind == "str" and not isinstance(value, str):
        raise InputError(label, f"must be a string, got {show(value)}")
    if kind == "ints":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise InputError(label, f"must be a list of integers, got {show(value)}")
        if not all(in_range(key, v) for v in value):
            raise InputError(label, f"{range_problem(key)}, got {format_value(value)}")
        return tuple(value)
    if key.choices and value not in key.choices:
        close = difflib.get_close_matches(value, key.choices, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise InputError(label, f"must be one of {key.rule()}, got {show(value)}{hint}")
    if kind in ("int", "float") and not in_range(key, value):
        raise InputError(label, f"{range_problem(key)}, got {format_value(value)}")
    return value
