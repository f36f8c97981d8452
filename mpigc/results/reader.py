"""Reading result files and user datasets (never more rows than asked for).

A result file's runs are its ``/runs/<name>`` groups, followed by the runs
of its side files (runs in progress, ``<stem>.running<k><suffix>``; see
:mod:`mpigc.results.store`), opened in SWMR mode. :func:`scan_runs` reads
every run it can and names the others: a damaged or foreign run never hides
the healthy ones.

A run is **healthy** when its group opens, every attribute reads (JSON ones
decode), every dataset in it is one of the schema's tables (``rounds``,
``events``, ``workers``, ``jobs``) as a 1-D compound array holding the
schema's published fields with compatible types, every table reads in
full, and the tables in ``require`` are there. Anything else under
``/runs`` (a dataset, a link, a group some other tool wrote, a table of the
wrong dtype, a corrupt chunk, an undecodable attribute) is **damaged**, with
a one-line reason.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from mpigc.errors import InputError
from mpigc.results import sides
from mpigc.results.schema import (
    _JSON_KEYS,
    DEFAULTS,
    TABLES,
    _is_ours,
    _open_read,
    _plain,
)
from mpigc.results.store import damaged_files, running_files

#: what ``on_damage`` of :func:`read_runs` accepts
ON_DAMAGE = ("raise", "skip")
#: errors h5py and numpy raise on a damaged object (corrupt chunk, bad link, undecodable bytes)
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, UnicodeDecodeError)


@dataclass
class RunData:
    """One run read back from a result file."""

    name: str
    attrs: dict
    tables: dict[str, np.ndarray]


@dataclass(frozen=True)
class DamagedRun:
    """A run that could not be read whole: its name and why (one line)."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


@dataclass
class RunScan:
    """What :func:`scan_runs` found: healthy runs and damaged ones, each in file order."""

    runs: list[RunData] = field(default_factory=list)
    damaged: list[DamagedRun] = field(default_factory=list)
    #: files named like side files that mpigc did not make or made with another schema: left alone
    ignored: list[DamagedRun] = field(default_factory=list)
    #: damaged side files a writer set aside (``<stem>.damaged<k><suffix>``): not runs of the file
    set_aside: list[DamagedRun] = field(default_factory=list)


def scan_runs(path: str | os.PathLike, names: Sequence[str] | None = None,
              require: Sequence[str] = ()) -> RunScan:
    """Read every healthy run of a result file (and its side files) and name the damaged ones.

    Parameters
    ----------
    path : str or os.PathLike
        The result file. If it does not exist but side files of a running
        job do, their runs are read.
    names : sequence of str, optional
        Read only these runs, in this order (default: all, file order).
    require : sequence of str
        Tables a healthy run must have, e.g. ``["rounds"]``, which every
        run of ``run`` and ``simulate`` has (default: none; F4's Lagrange
        runs hold attributes only, a trace may hold only ``workers``).

    Returns
    -------
    RunScan
        ``runs`` (healthy) and ``damaged`` (name and reason).

    Raises
    ------
    InputError
        Keyed by the file name if the file itself cannot be read or is not an
        mpigc result file, or lacks one of ``names``.
    """
    key = os.fspath(path)
    side_paths = running_files(path)
    groups: list[tuple[str, Path, bool]] = []      # (run name, file, side file?)
    scan = RunScan()
    if os.path.exists(key) or not side_paths:
        with _open_read(path) as f:
            groups += [(n, Path(key), False) for n in _list_runs(f, key)]
    for side in side_paths:
        if not _side_ok(side, scan):
            continue
        try:
            with h5py.File(side, "r", swmr=True, locking=False) as f:
                groups += [(n, side, True) for n in (_list_runs(f, str(side)) if "runs" in f else [])]
        except FileNotFoundError:
            continue                                # committed and removed meanwhile
        except (*_READ_ERRORS, InputError) as exc:
            if side.exists():
                scan.damaged.append(DamagedRun(side.name, f"side file of a running run unreadable: {_why(exc)}"))
    available = [n for n, _, _ in groups]
    if names is not None:
        missing = [n for n in names if n not in available]
        if missing:
            raise InputError(key, f"no run named {', '.join(map(repr, missing))} "
                                  f"(runs: {', '.join(available) or 'none'})")
        where = {n: (p, s) for n, p, s in reversed(groups)}   # the first of a name wins
        groups = [(n, *where[n]) for n in names]
    by_file: dict[tuple[Path, bool], list[str]] = {}
    for name, p, side in groups:
        by_file.setdefault((p, side), []).append(name)
    found: dict[tuple[str, Path], RunData | DamagedRun] = {}
    for (p, side), members in by_file.items():
        try:
            with (h5py.File(p, "r", swmr=True, locking=False) if side else _open_read(p)) as f:
                for name in members:
                    found[(name, p)] = _read_run(f["runs"], name, tuple(require))
        except FileNotFoundError:
            continue
        except (*_READ_ERRORS, InputError) as exc:
            for name in members:
                found.setdefault((name, p), DamagedRun(name, f"unreadable: {_why(exc)}"))
    for name, p, _ in groups:
        item = found.get((name, p))
        if isinstance(item, RunData):
            scan.runs.append(item)
        elif item is not None:
            scan.damaged.append(item)
    for aside in damaged_files(path):
        scan.set_aside.append(DamagedRun(aside.name, f"side file set aside, not merged: {sides.verify(aside).reason}"))
    return scan


def _side_ok(side: Path, scan: RunScan) -> bool:
    """Whether a side file's run may be read: its writer lives, or it verifies whole (else it is named)."""
    if sides.is_live(side):
        return True
    verdict = sides.verify(side)
    if verdict.kind == sides.DAMAGED:
        scan.damaged.append(DamagedRun(side.name, f"side file left by a job that ended: {verdict.reason}"))
    elif not verdict.healthy:
        scan.ignored.append(DamagedRun(side.name, f"named like a side file but {verdict.reason}; left alone"))
    return verdict.healthy


def read_runs(path: str | os.PathLike, names: Sequence[str] | None = None, *,
              on_damage: str = "raise", require: Sequence[str] = ()) -> list[RunData]:
    """Read runs (all, in file order, or ``names`` in that order) from a result file.

    Side files of a running job (runs in progress) come after the file's
    own runs. ``on_damage="skip"`` leaves damaged runs out; use
    :func:`scan_runs` to also learn which and why.

    Raises
    ------
    InputError
        Keyed by the file name if it is missing, unreadable, not an mpigc
        result file, lacks one of ``names``, or (``on_damage="raise"``) holds
        a damaged run.
    ValueError
        For an ``on_damage`` other than ``"raise"`` or ``"skip"``.
    """
    if on_damage not in ON_DAMAGE:
        raise ValueError(f"on_damage must be one of {ON_DAMAGE}, got {on_damage!r}")
    scan = scan_runs(path, names, require)
    if scan.damaged and on_damage == "raise":
        raise InputError(os.fspath(path), "damaged run(s): " + "; ".join(map(str, scan.damaged)))
    return scan.runs


def run_names(path: str | os.PathLike) -> list[str]:
    """Names of the runs in a result file and its side files, in order; [] if there are none.

    Raises
    ------
    InputError
        Keyed by the file name if it exists but is not a readable mpigc result file.
    """
    names: list[str] = []
    if os.path.exists(os.fspath(path)):
        with _open_read(path) as f:
            names += _list_runs(f, os.fspath(path))
    for side in running_files(path):
        try:
            with h5py.File(side, "r", swmr=True, locking=False) as f:
                names += list(f["runs"]) if isinstance(f.get("runs"), h5py.Group) else []
        except (*_READ_ERRORS,):
            continue
    return names


# ----------------------------------------------------------------------------- one run

def _list_runs(f: h5py.File, key: str) -> list[str]:
    """Return the names under ``/runs`` of an open file; InputError if it is not a readable result file."""
    if not _is_ours(f):
        raise InputError(key, "not an mpigc result file (no /runs group)")
    try:
        runs = f.get("runs")
        if runs is None:
            return []
        if not isinstance(runs, h5py.Group):
            raise InputError(key, "not an mpigc result file (/runs is not a group)")
        return list(runs)
    except _READ_ERRORS as exc:
        raise InputError(key, f"damaged: cannot list its runs ({_why(exc)})") from None


def _why(exc: BaseException) -> str:
    """Return a one-line reason from an exception (HDF5's messages can span lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160] + ("..." if len(text) > 160 else "")


def _read_run(runs: h5py.Group, name: str, require: tuple[str, ...]) -> RunData | DamagedRun:
    """Read one run group, or say why it is damaged."""
    try:
        link = runs.get(name, getlink=True)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            return DamagedRun(name, f"a {type(link).__name__.lower().replace('link', ' link')}, not a run group")
        group = runs[name]
    except _READ_ERRORS as exc:
        return DamagedRun(name, f"cannot be opened: {_why(exc)}")
    if not isinstance(group, h5py.Group):
        return DamagedRun(name, "a dataset, not a run group (not written by mpigc)")
    attrs = _attrs(group)
    if isinstance(attrs, str):
        return DamagedRun(name, attrs)
    tables: dict[str, np.ndarray] = {}
    try:
        members = list(group.items())
    except _READ_ERRORS as exc:
        return DamagedRun(name, f"cannot list its tables: {_why(exc)}")
    for table, obj in members:
        if isinstance(obj, h5py.Group):
            continue                                 # not part of the schema; nothing reads it
        problem = _table_problem(table, obj)
        if problem:
            return DamagedRun(name, problem)
        try:
            tables[table] = obj[()]
        except _READ_ERRORS as exc:
            return DamagedRun(name, f"table {table!r} unreadable: {_why(exc)}")
    missing = [t for t in require if t not in tables]
    if missing:
        return DamagedRun(name, f"no {missing[0]!r} table (tables: {', '.join(tables) or 'none'})")
    return RunData(name=name, attrs=attrs, tables=tables)


def _attrs(group: h5py.Group) -> dict | str:
    """Return a run's attributes (JSON ones decoded), or the reason they cannot be read."""
    try:
        keys = list(group.attrs)
    except _READ_ERRORS as exc:
        return f"attributes unreadable: {_why(exc)}"
    out: dict = {}
    json_keys: set[str] = set()
    try:
        if _JSON_KEYS in keys:
            json_keys = set(json.loads(_plain(group.attrs[_JSON_KEYS])))
    except (*_READ_ERRORS, json.JSONDecodeError) as exc:
        return f"attribute {_JSON_KEYS!r} unreadable: {_why(exc)}"
    for key in keys:
        if key == _JSON_KEYS:
            continue
        try:
            value = _plain(group.attrs[key])
            if key in json_keys and isinstance(value, str):
                value = json.loads(value)
        except (*_READ_ERRORS, json.JSONDecodeError) as exc:
            return f"attribute {key!r} unreadable: {_why(exc)}"
        out[key] = value
    return out


_KINDS = {"i": "iu", "u": "iu", "f": "fiu", "b": "biu"}   # stored field kinds a schema field accepts


def _table_problem(table: str, ds: h5py.Dataset) -> str:
    """Why dataset ``table`` is not a table of the schema ('' if it is)."""
    expected = TABLES.get(table)
    if expected is None:
        return f"foreign dataset {table!r} (tables: {', '.join(TABLES)})"
    dtype = ds.dtype
    if ds.ndim != 1 or dtype.names is None:
        return f"table {table!r} has the wrong shape or dtype ({dtype}, shape {ds.shape}; expected 1-D records)"
    for fname in expected.names:
        if fname not in dtype.names:
            if fname in DEFAULTS[table]:
                continue                             # an optional field of an older file
            return f"table {table!r} lacks field {fname!r}"
        got = dtype.fields[fname][0]
        if got.kind not in _KINDS.get(expected.fields[fname][0].kind, got.kind):
            return f"table {table!r} field {fname!r} has the wrong type ({got}, expected {expected.fields[fname][0]})"
    return ""


def read_matrix(path: str | os.PathLike, dataset: str) -> np.ndarray:
    """Read a whole dataset (e.g. ``X``, ``y`` or a trace) from an HDF5 file.

    Raises
    ------
    InputError
        Keyed by the file name if it is missing or unreadable or has no such dataset.
    """
    with _open_read(path) as f:
        return np.asarray(_dataset(f, dataset, os.fspath(path))[()])


def read_rows(path: str | os.PathLike, dataset: str, start: int, stop: int) -> np.ndarray:
    """Read rows ``start:stop`` of a dataset without loading the rest.

    Rows past the end are cut off as in numpy slicing, so ``start = stop = 0``
    gives an empty array with the dataset's trailing shape.

    Raises
    ------
    InputError
        Keyed by the file name if it is missing or unreadable, has no such
        dataset, or the dataset is a scalar.
    """
    key = os.fspath(path)
    with _open_read(path) as f:
        obj = _dataset(f, dataset, key)
        if not obj.shape:
            raise InputError(key, f"dataset {dataset!r} is a scalar, not an array of rows")
        n = obj.shape[0]
        lo, hi = min(max(int(start), 0), n), min(max(int(stop), 0), n)
        if hi <= lo:
            return np.empty((0, *obj.shape[1:]), dtype=obj.dtype)
        return np.asarray(obj[lo:hi])


def _datasets(f: h5py.File) -> list[str]:
    """List the paths of the datasets in a file (for error messages)."""
    found: list[str] = []
    f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
    return found[:20] or ["none"]


def _dataset(f: h5py.File, name: str, key: str) -> h5py.Dataset:
    """Return the dataset ``name`` of an open file, or an InputError listing the datasets there are."""
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        what = "is a group, not a dataset" if obj is not None else "does not exist"
        raise InputError(key, f"dataset {name!r} {what} (datasets: {', '.join(_datasets(f))})")
    return obj
