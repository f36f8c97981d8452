"""TOML values for :mod:`mpigc.config`: a small emitter and the typed key checks.

The emitter writes only what a resolved config needs: strings, integers,
floats (incl. inf and nan), booleans, arrays and inline tables, as TOML 1.0
that :mod:`tomllib` reads back to the same values. :class:`Key` describes one
config key; :func:`check` type- and range-checks a value read for it.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from mpigc.errors import InputError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def format_string(text: str) -> str:
    """Return ``text`` as a TOML basic string (quoted, escaped)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_key(key: str) -> str:
    """Return ``key`` bare when allowed, quoted otherwise."""
    return key if _BARE_KEY.match(key) else format_string(key)


def format_float(x: float) -> str:
    """Return a float as TOML (always with a '.' or exponent; inf and nan spelled out)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = repr(float(x))
    return text if any(c in text for c in ".eEn") else text + ".0"


def format_value(value: Any) -> str:
    """Return one TOML value: str, int, float, bool, list/tuple or mapping (inline table).

    Raises
    ------
    TypeError
        For a value TOML cannot hold (e.g. None).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return format_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{format_key(str(k))} = {format_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


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
    """The problem text for an out-of-range value of ``key``."""
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
