"""Config keys declared once: a dataclass field made by :func:`key` carries its :class:`Key`.

Each table of the config is a frozen dataclass whose fields are made with
:func:`key`: the field's default, and in its metadata the key's type, range,
choices and help. :func:`keys_of` reads them back in field order, so the
validator, the emitted TOML and ``mpigc validate --keys`` all come from the
one declaration. :func:`check_value` type- and range-checks a value read for
a key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any

from mpigc.config.toml import format_value, show
from mpigc.errors import InputError

#: metadata entry of a dataclass field that holds its :class:`Key`
_METADATA = "mpigc.config.key"
_KIND_NAMES = {"int": "integer", "float": "float", "bool": "boolean", "str": "string", "ints": "integer list"}


@dataclass(frozen=True)
class Key:
    """How one TOML key is typed, bounded and documented.

    ``name``, ``field`` and ``default`` are filled in by :func:`keys_of`
    from the dataclass field the key is declared on.
    """

    kind: str  # "int" | "float" | "bool" | "str" | "ints"
    doc: str
    lo: float | None = None
    lo_open: bool = False
    hi: float | None = None
    choices: tuple[str, ...] = ()
    message: str = ""  # replaces the generated range message
    unset: str = "auto"  # how a None value is shown: "auto" (resolved later) or "unset"
    name: str = ""  # the TOML key; the field's name unless that is not a Python identifier (lambda)
    field: str = ""  # the dataclass attribute
    default: Any = None

    def rule(self) -> str:
        """Human text for the allowed values."""
        if self.choices:
            return " | ".join(f'"{c}"' for c in self.choices)
        kind = _KIND_NAMES[self.kind]
        if self.lo is not None and self.hi is not None:
            return f"{kind} in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {self.lo:g}"
        return kind


def key(default: Any, kind: str, doc: str, *, name: str = "", **limits: Any) -> Any:
    """Declare a config key as a dataclass field: its default and its :class:`Key`.

    Parameters
    ----------
    default : the value when the config does not set the key (None: resolved later, or unset).
    kind : ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"ints"`` (a list of integers).
    doc : one line of help, shown by ``mpigc validate --keys``.
    name : the TOML key when it differs from the field's name (``lambda`` is a Python keyword).
    **limits : ``lo``, ``lo_open``, ``hi``, ``choices``, ``message``, ``unset`` of :class:`Key`.
    """
    if kind not in _KIND_NAMES:
        raise ValueError(f"unknown key kind {kind!r}")
    return dataclasses.field(default=default, metadata={_METADATA: Key(kind, doc, name=name, **limits)})


def keys_of(table: type) -> tuple[Key, ...]:
    """Return the keys declared on a table's dataclass, in field order, names and defaults filled in.

    Raises
    ------
    TypeError
        If a field of ``table`` was not declared with :func:`key`.
    """
    keys = []
    for f in dataclasses.fields(table):
        if _METADATA not in f.metadata:
            raise TypeError(f"{table.__name__}.{f.name} is not declared with mpigc.config.spec.key()")
        spec = f.metadata[_METADATA]
        keys.append(dataclasses.replace(spec, name=spec.name or f.name, field=f.name, default=f.default))
    return tuple(keys)


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


def check_value(key: Key, label: str, value: Any) -> Any:
    """Type- and range-check one value read for ``key``; return it converted (float, tuple).

    Raises
    ------
    InputError
        Keyed by ``label``, for a value of the wrong type, out of range or not among the choices.
    """
    kind = key.kind
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(label, f"must be an integer, got {show(value)}")
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(label, f"must be a number, got {show(value)}")
        value = float(value)
        if math.isnan(value):
            raise InputError(label, f"must be a number, got {show(value)}")
        if math.isinf(value):
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
