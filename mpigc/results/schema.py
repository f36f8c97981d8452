"""The result schema: table dtypes, provenance, attribute encoding, opening files.

Fields and attributes with a meaning beyond their name (docs/results-safety.md):

* ``rounds.status``: 0 exact, 1 approximate, 2 undecodable, 3 unsound (the
  scheme decoded exactly on paper, but the decode's condition number ``cond``
  exceeds ``mpigc.core.policy.cond_limit(dtype)`` or, with ``run.verify``,
  ``grad_error`` exceeds ``grad_tolerance(dtype)``: 1e-6 for float64, 1e-3
  for float32), 4 non-finite (NaN or infinity in the decoded gradient or
  loss, or in the true gradient: the model is not updated).
* run attribute ``interrupted``: why a run stopped early: a signal's name
  (``SIGTERM``, ``SIGINT``), ``killed`` (its job died; set by the next
  writer) or ``failed`` (a plug-in failed; ``mpigc simulate``).
* side files only (``<stem>.running<k><suffix>``; never copied into the
  result file): root attributes ``mpigc_schema`` and ``mpigc_side`` (JSON:
  the writer's host, pid, started, token, result file name) and the root
  dataset ``mpigc_ledger`` (uint64, one row per table of :data:`TABLES` in
  order: rows written, CRC-32 of their bytes); see :mod:`mpigc.results.sides`.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
from collections import namedtuple
from typing import Any

import h5py
import numpy as np

import mpigc
from mpigc.errors import InputError

ROUNDS_DTYPE = np.dtype([
    ("round", "i8"), ("latency", "f8"), ("status", "i1"), ("messages", "i4"),
    ("chunks_done", "i4"), ("coef_error", "f8"), ("grad_error", "f8"), ("loss", "f8"),
    ("waitout", "i1"), ("level", "i2"), ("cond", "f8"), ("eval_loss", "f8"), ("eval_accuracy", "f8"),
])
EVENTS_DTYPE = np.dtype([
    ("round", "i8"), ("job", "i8"), ("worker", "i4"), ("task", "i4"), ("chunk", "i4"),
    ("t_arrive", "f8"), ("nbytes", "i8"), ("stale", "?"), ("used", "?"),
])
WORKERS_DTYPE = np.dtype([
    ("round", "i8"), ("worker", "i4"), ("busy", "f8"), ("injected", "f8"),
    ("tasks_done", "i4"), ("failed", "?"), ("overrun", "f8"),
])
JOBS_DTYPE = np.dtype([
    ("job", "i8"), ("model", "i4"), ("round_done", "i8"), ("t_done", "f8"), ("loss", "f8"),
])
TABLES: dict[str, np.dtype] = {
    "rounds": ROUNDS_DTYPE, "events": EVENTS_DTYPE, "workers": WORKERS_DTYPE, "jobs": JOBS_DTYPE,
}
# Values for fields a caller may leave out (the extra fields beyond the published schema).
DEFAULTS: dict[str, dict[str, Any]] = {
    "rounds": {"level": -1, "cond": np.nan, "eval_loss": np.nan, "eval_accuracy": np.nan},
    "events": {},
    "workers": {"overrun": 0.0},
    "jobs": {},
}



def _row_type(table: str) -> type:
    """Return a named tuple type of ``table``'s fields in dtype order, its optional fields defaulted."""
    names = TABLES[table].names
    optional = DEFAULTS[table]
    if list(optional) != list(names[len(names) - len(optional):]):
        raise AssertionError(f"{table}: the fields with defaults must come last")
    row = namedtuple(f"{table[:-1].title()}Row", names, defaults=tuple(optional.values()) or None)  # noqa: PYI024
    row.__doc__ = f"One row of the ``{table}`` table, built by field name: {', '.join(names)}."
    return row


#: one row type per table, generated from :data:`TABLES`: build rows by field name, never by position
ROWS: dict[str, type] = {table: _row_type(table) for table in TABLES}
RoundRow, EventRow, WorkerRow, JobRow = (ROWS[t] for t in ("rounds", "events", "workers", "jobs"))


def new_rows(table: str, n: int) -> np.ndarray:
    """Return ``n`` rows of ``table`` (zeros, optional fields at their defaults) to fill column by column."""
    out = np.zeros(n, dtype=TABLES[table])
    for name, value in DEFAULTS[table].items():
        out[name] = value
    return out


def as_rows(table: str, rows: Any, copy: bool = False) -> np.ndarray:
    """Return ``rows`` as a 1-D array of the table's dtype: the one conversion of rows.

    ``rows`` may be a structured array or record (fields by name; optional
    fields left out get their defaults, unknown ones are an error), a list
    of such arrays (concatenated), or a list of rows (:data:`ROWS` named
    tuples, or tuples in field order that may stop before the optional
    fields). With ``copy`` the result never shares memory with ``rows``.

    Raises
    ------
    ValueError
        A field without a default is missing, or a field is unknown.
    """
    dtype = TABLES[table]
    if isinstance(rows, np.void):
        rows = np.array([rows])
    if isinstance(rows, np.ndarray) and rows.dtype.names is not None:
        return _records(table, rows.reshape(-1), copy)
    if isinstance(rows, (list, tuple)) and rows and isinstance(rows[0], np.ndarray):
        return np.concatenate([_records(table, r.reshape(-1), False) for r in rows])
    if isinstance(rows, np.ndarray) or not isinstance(rows, (list, tuple)):
        return np.atleast_1d(np.array(rows, dtype=dtype))
    return np.array([_padded(table, row) for row in rows], dtype=dtype).reshape(-1)


def _records(table: str, flat: np.ndarray, copy: bool) -> np.ndarray:
    """Return ``flat`` in ``table``'s dtype, its missing optional fields at their defaults."""
    dtype = TABLES[table]
    if flat.dtype == dtype:
        return flat.copy() if copy else flat
    extra = set(flat.dtype.names) - set(dtype.names)
    if extra:
        raise ValueError(f"{table}: unknown fields {sorted(extra)}")
    out = np.empty(flat.size, dtype=dtype)
    for fname in dtype.names:
        if fname in flat.dtype.names:
            out[fname] = flat[fname]
        elif fname in DEFAULTS[table]:
            out[fname] = DEFAULTS[table][fname]
        else:
            raise ValueError(f"{table}: missing field {fname!r}")
    return out


def _padded(table: str, row: tuple) -> tuple:
    """Return ``row`` in field order, with the optional fields it stops before at their defaults."""
    names = TABLES[table].names
    n = len(row)
    if n == len(names):
        return row
    missing = [f for f in names[n:] if f not in DEFAULTS[table]]
    if n > len(names) or missing:
        raise ValueError(f"{table}: a row of {n} fields; expected {len(names)}"
                         + (f" (no default for {missing[0]!r})" if missing else ""))
    return tuple(row) + tuple(DEFAULTS[table][f] for f in names[n:])


SCHEMA_VERSION = 1
CHUNK_ROWS = 4096
_MARKER = "mpigc_schema"     # root attribute that identifies our files
_JSON_KEYS = "json_attrs"    # run attribute listing the attributes stored as JSON text


def provenance(backend: str) -> dict[str, str]:
    """Return the provenance attributes of a run made on this host with ``backend``.

    Parameters
    ----------
    backend : str
        ``"mpi"`` or ``"sim"``.

    Returns
    -------
    dict
        mpigc_version, created (ISO 8601 UTC), host, python, numpy, h5py, backend.
        MPI runs add ``mpi_library`` and ``hosts`` themselves.
    """
    return {
        "mpigc_version": mpigc.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "backend": backend,
    }


# ----------------------------------------------------------------------------- attributes

def _encode_attrs(attrs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Convert attribute values to HDF5-storable ones; return them and the JSON-encoded keys."""
    out: dict[str, Any] = {}
    json_keys: list[str] = []
    for key, value in attrs.items():
        if not isinstance(key, str) or not key or key == _JSON_KEYS:
            raise ValueError(f"invalid run attribute name {key!r}")
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            out[key] = ""
        elif isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (dict, list, tuple, np.ndarray)):
            if isinstance(value, np.ndarray):
                value = value.tolist()
            try:
                out[key] = json.dumps(value, default=_json_default)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"run attribute {key!r} cannot be JSON-encoded: {exc}") from exc
            json_keys.append(key)
        else:
            raise ValueError(f"run attribute {key!r} has unsupported type {type(value).__name__}")
    return out, json_keys


def _json_default(obj: Any) -> Any:
    """Encode numpy scalars and arrays nested in JSON attributes."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _write_attrs(group: h5py.Group, encoded: dict[str, Any], json_keys: list[str]) -> None:
    """Write encoded attributes and merge the group's list of JSON-encoded keys."""
    old = set(json.loads(_plain(group.attrs.get(_JSON_KEYS, "[]"))))
    old -= set(encoded)            # a key rewritten as a plain value is no longer JSON
    old |= set(json_keys)
    for key, value in encoded.items():
        group.attrs[key] = value
    group.attrs[_JSON_KEYS] = json.dumps(sorted(old))


def _plain(value: Any) -> Any:
    """Turn an attribute value read by h5py into a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- files

def _is_ours(f: h5py.File) -> bool:
    """Tell whether an open HDF5 file is an mpigc result file."""
    return _MARKER in f.attrs or isinstance(f.get("runs"), h5py.Group)


def _open_read(path: str | os.PathLike) -> h5py.File:
    """Open an existing HDF5 file for reading or raise an InputError naming it.

    Result files are never written in place (``mpigc.results.store``), so a
    plain open always sees a consistent file. A side file of a running run
    (or one a killed job left) refuses plain opens ("already open for
    write"): it is opened in SWMR read mode, which sees a consistent prefix
    of its rows. A file an older mpigc writer holds open (HDF5's lock) is
    read without taking the lock.
    """
    key = os.fspath(path)
    if not os.path.exists(key):
        raise InputError(key, "no such file")
    if os.path.isdir(key):
        raise InputError(key, "is a directory, not an HDF5 file")
    try:
        if not h5py.is_hdf5(key):
            raise InputError(key, "not an HDF5 file")
        try:
            return h5py.File(key, "r")
        except OSError as exc:
            text = str(exc)
            if "lock" not in text and "already open for write" not in text:
                raise
            return h5py.File(key, "r", locking=False, swmr="already open for write" in text)
    except OSError as exc:
        raise InputError(key, f"cannot be read as HDF5 ({exc})") from exc
