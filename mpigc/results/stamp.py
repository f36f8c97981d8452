"""File-level attributes of a result file: what made it (e.g. a figure sweep's settings).

Runs carry their own provenance; a file made by a campaign (a figure sweep,
``analysis/make_figures.py``) also records the settings it was made with as
one JSON root attribute, so a later campaign can tell whether the file fits
its own settings before reusing it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mpigc.errors import InputError
from mpigc.results import store
from mpigc.results.schema import _is_ours, _open_read, _plain

#: root attributes mpigc itself uses, which a stamp must not replace
_RESERVED = ("mpigc_schema",)


def set_file_attr(path: str | os.PathLike, key: str, value: Any) -> None:
    """Store ``value`` (JSON-encodable) as the root attribute ``key`` of an existing result file.

    Written by a commit (copy, write, rename: :func:`mpigc.results.store.commit`),
    for a file no job is writing (e.g. a sweep's file before it is renamed
    into place).

    Raises
    ------
    InputError
        Keyed by the file name if it is not an mpigc result file.
    ValueError
        For a reserved ``key`` or a value JSON cannot encode.
    ResultWriteError
        If the file cannot be written; it is then unchanged.
    """
    if not key or key in _RESERVED:
        raise ValueError(f"invalid file attribute name {key!r}")
    text = json.dumps(value, sort_keys=True)
    with _open_read(path) as f:
        if not _is_ours(f):
            raise InputError(os.fspath(path), "not an mpigc result file (no /runs group)")
    store.commit(Path(path), lambda f: f.attrs.__setitem__(key, text))


def file_attr(path: str | os.PathLike, key: str, default: Any = None) -> Any:
    """Return the root attribute ``key`` stored by :func:`set_file_attr` (``default`` if absent or undecodable).

    Raises
    ------
    InputError
        Keyed by the file name if it is missing or cannot be read as HDF5.
    """
    with _open_read(path) as f:
        if key not in f.attrs:
            return default
        try:
            return json.loads(_plain(f.attrs[key]))
        except (OSError, TypeError, ValueError):
            return default
