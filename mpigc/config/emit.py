"""A resolved config back to TOML (:func:`to_toml`) and the key table (:func:`describe_keys`)."""
from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

from mpigc.config.keys import KEYS, REGISTRY_OF, WORDS, CodeConfig, Config
from mpigc.config.spec import Key
from mpigc.config.toml import format_key, format_value
from mpigc.report import format_table


def _line(key: Key, value: Any) -> str:
    if value is None:
        return f"# {key.name} = ({key.unset})"
    return f"{format_key(key.name)} = {format_value(value)}"


def _code_lines(codes: tuple[CodeConfig, ...]) -> list[str]:
    keys = [k for k in KEYS["code"].values() if k.name != "scheme"]
    if len(codes) == 1:
        first = codes[0]
        lines = [_line(KEYS["code"]["scheme"], first.scheme)]
        return lines + [_line(k, getattr(first, k.field)) for k in keys]
    shared = {}  # [code]'s own values: those every entry has (None where entries differ)
    for k in keys:
        values = [getattr(c, k.field) for c in codes]
        shared[k.field] = None if any(v is None for v in values) else values[0]
    lines = ["scheme = ["]
    for c in codes:
        overrides = {k.name: getattr(c, k.field) for k in keys
                     if getattr(c, k.field) is not None and getattr(c, k.field) != shared[k.field]}
        lines.append(f"  {format_value({'scheme': c.scheme, **overrides}) if overrides else format_value(c.scheme)},")
    lines.append("]")
    return lines + [_line(k, shared[k.field]) for k in keys]


def to_toml(config: Config) -> str:
    """Write the resolved config as TOML; ``load_config`` reads it back to an equal Config.

    None values (resolved later, per scheme) are written as ``# key = (auto)`` comments.
    """
    out = [f"# mpigc resolved config (backend {config.backend!r}); every default written out.", ""]
    for table, keys in KEYS.items():
        out.append(f"[{table}]")
        if table == "code":
            out += _code_lines(config.codes)
        else:
            obj = getattr(config, table)
            out += [_line(k, getattr(obj, k.field)) for k in keys.values()]
        out.append("")
    return "\n".join(out)


def describe_keys() -> str:
    """Return a text table of every key: default, allowed values and meaning."""
    rows = [("key", "default", "allowed", "meaning")]
    for table, keys in KEYS.items():
        for k in keys.values():
            shown = f"({k.unset})" if k.default is None else format_value(k.default)
            name = f"{table}.{k.name}"
            if name in REGISTRY_OF:
                k = dataclasses.replace(k, choices=REGISTRY_OF[name].names())
            allowed = " | ".join([k.rule(), *(f'"{w}"' for w in WORDS.get(name, ()))])
            rows.append((name, shown, allowed, k.doc))
    lines = []
    for row in rows:  # "allowed" wrapped to a 30-character column, continued on lines of its own
        allowed = textwrap.wrap(row[2], 30, break_on_hyphens=False) or [""]
        lines += [(*(row[:2] if i == 0 else ("", "")), part.ljust(30), row[3] if i == 0 else "")
                  for i, part in enumerate(allowed)]
    return format_table(lines, left=range(4))
