"""Trace replay (``delays.model = "trace"``): measured per-round, per-worker seconds.

Sources (``delays.trace``)
--------------------------
- a CSV file: an optional header line, recognised by none of its cells being
  a number (e.g. ``w0,w1,…`` as in the Lambda traces, docs/data.md), then one line per round, one column per
  worker, every value a finite number ≥ 0 in seconds; blank lines are skipped;
- ``FILE.h5`` or ``FILE.h5:RUN`` (also ``.hdf5``): the ``workers`` table of a
  run of an earlier mpigc result file, its ``busy`` column pivoted to
  (round, worker). Trace row k is the k-th distinct round of that table in
  increasing order; every (round, worker) pair must appear exactly once.
  Without ``:RUN`` the file must hold exactly one run. This module never
  opens HDF5 itself: the caller passes a reader (:class:`RunReader`;
  ``mpigc.core.inputs`` passes :mod:`mpigc.results`).

Any problem raises ``InputError("delays.trace", "<source>: <problem>")`` with
the line and column (CSV) or round and worker (HDF5) at fault.

Replay
------
Run round r reads trace row r mod R and run worker w reads column w mod n
(``wrap = true``). With ``wrap = false`` a trace with fewer than m columns is
rejected when the model is built and one with fewer rows than the run needs
by :meth:`TraceReplay.check_rounds`. Slowdowns (no ``slope``) divide a value
by the median of its whole trace row (all n columns, not only the m used), so
a row median of 0 is rejected in that mode.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mpigc.errors import InputError

KEY = "delays.trace"
_H5 = re.compile(r"^(?P<path>.+\.(?:h5|hdf5))(?::(?P<run>[^:]+))?$", re.IGNORECASE)


class RunReader(Protocol):
    """What reads the runs of an mpigc result file (:func:`mpigc.results.read_runs` has this shape)."""

    def read_runs(self, path: str, names: Sequence[str] | None) -> list[Any]:
        """Return the runs ``names`` (all if None) of ``path``, each with ``.name`` and ``.tables``."""


def _fail(source: str, problem: str) -> InputError:
    return InputError(KEY, f"{source}: {problem}")


def load_trace(source: str, reader: RunReader | None = None, censored: str = "refuse") -> np.ndarray:
    """Read and validate a trace, shape (rounds, workers), seconds.

    Parameters
    ----------
    source : str
        A CSV path, ``FILE.h5`` or ``FILE.h5:RUN``.
    reader : RunReader, optional
        Reads HDF5 result files; without one only CSV traces can be read.
    censored : {"refuse", "keep"}
        An empty CSV cell is a censored value (``mpigc trace export`` writes
        one where a STOP cut a worker's round short): refused with a line
        saying how to drop them, or kept as NaN for a caller that drops them.

    Raises
    ------
    InputError
        Keyed ``delays.trace``, naming ``source`` and the problem.
    """
    source = os.fspath(source)
    match = _H5.match(source)
    if match:
        return _read_result(source, match["path"], match["run"], reader)
    return _read_csv(source, censored == "keep")


def _check_path(source: str, path: str) -> None:
    if not os.path.exists(path):
        raise _fail(source, "no such file")
    if os.path.isdir(path):
        raise _fail(source, "is a directory, not a trace file")


def _read_csv(path: str, keep_censored: bool = False) -> np.ndarray:
    """Parse a CSV trace with the csv module, checking every cell."""
    _check_path(path, path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            lines = [(n, row) for n, row in enumerate(csv.reader(fh), start=1)
                     if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(path, f"cannot be read ({exc})") from None
    if not lines:
        raise _fail(path, "is empty")
    names = None
    if not any(_is_number(c) for c in lines[0][1]):     # a header: no cell is a number
        names = [c.strip() for c in lines[0][1]]
        lines = lines[1:]
        if not lines:
            raise _fail(path, "has a header but no rows")
    width = len(names) if names is not None else len(lines[0][1])
    what = "the header has" if names is not None else f"line {lines[0][0]} has"
    out = np.empty((len(lines), width))
    for i, (n, row) in enumerate(lines):
        if len(row) != width:
            raise _fail(path, f"line {n} has {len(row)} values, {what} {width}")
        for j, cell in enumerate(row):
            col = names[j] if names is not None else f"{j + 1}"
            where = f"line {n}, column {col}"
            if not cell.strip():
                if keep_censored:
                    out[i, j] = np.nan
                    continue
                raise _fail(path, f"{where}: empty cell: a censored value (cut short by a STOP); replay and fit "
                                  "need complete rounds: export with --drop-censored, or fit with --drop-censored")
            try:
                out[i, j] = float(cell)
            except ValueError:
                raise _fail(path, f"{where}: {cell.strip()!r} is not a number") from None
            _check_value(path, where, out[i, j])
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _check_value(source: str, where: str, value: float) -> None:
    if not np.isfinite(value):
        raise _fail(source, f"{where}: {value} is not a finite number of seconds")
    if value < 0:
        raise _fail(source, f"{where}: negative time {value:g}")


def _read_result(source: str, path: str, run: str | None, reader: RunReader | None) -> np.ndarray:
    """Pivot the ``busy`` column of a run's ``workers`` table to (round, worker)."""
    _check_path(source, path)
    if reader is None:
        raise _fail(source, "HDF5 traces are read through mpigc.results; this caller passed no reader")
    try:
        runs = reader.read_runs(path, None if run is None else [run])
    except InputError as exc:
        raise _fail(source, exc.problem) from None
    if not runs:
        raise _fail(source, "holds no runs")
    if len(runs) > 1:
        names = ", ".join(r.name for r in runs)
        raise _fail(source, f"holds several runs ({names}); name one as {path}:RUN")
    data = runs[0]
    table = data.tables.get("workers")
    if table is None:
        raise _fail(source, f"run {data.name!r} has no workers table "
                            '(record it with run.detail = "workers" or "full")')
    if table.size == 0:
        raise _fail(source, f"run {data.name!r} has an empty workers table")
    rounds, row = np.unique(table["round"], return_inverse=True)
    worker = table["worker"].astype(np.int64)
    if worker.min() < 0:
        raise _fail(source, f"run {data.name!r}: negative worker index {worker.min()}")
    n = int(worker.max()) + 1
    out = np.full((rounds.size, n), np.nan)
    seen = np.zeros((rounds.size, n), dtype=int)
    np.add.at(seen, (row, worker), 1)
    if np.any(seen != 1):
        i, j = np.argwhere(seen != 1)[0]
        problem = "no row" if seen[i, j] == 0 else f"{seen[i, j]} rows"
        raise _fail(source, f"run {data.name!r}: round {rounds[i]} has {problem} for worker {j}")
    out[row, worker] = table["busy"]
    bad = ~np.isfinite(out) | (out < 0)
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        _check_value(source, f"run {data.name!r}, round {rounds[i]}, worker {j}", out[i, j])
    return out


class TraceReplay:
    """Wrapped lookup of a validated trace for a run with m workers.

    Parameters
    ----------
    values : ndarray, shape (R, n)
        Seconds per (trace row, trace column), from :func:`load_trace`.
    workers : int
        Number of workers m of the run.
    wrap : bool
        Wrap rounds and workers around; otherwise a too short or too narrow
        trace is an error.
    source : str
        The ``delays.trace`` value, for messages.
    ratios : bool
        Whether slowdowns (value / row median) will be asked for; checks
        every row median is positive.
    """

    def __init__(self, values: np.ndarray, workers: int, wrap: bool, source: str, ratios: bool = True) -> None:
        self.values = np.asarray(values, dtype=float)
        self.workers = int(workers)
        self.wrap = bool(wrap)
        self.source = source
        rows, cols = self.values.shape
        if not wrap and cols < self.workers:
            raise _fail(source, f"has {rows} rounds/{cols} workers, the run needs {self.workers} workers "
                                "(set delays.wrap = true to reuse columns)")
        self._columns = np.arange(self.workers) % cols
        self.median = np.median(self.values, axis=1)
        if ratios and np.any(self.median <= 0):
            r = int(np.argmax(self.median <= 0))
            raise _fail(source, f"trace row {r} has median 0, so slowdowns are undefined "
                                "(set delays.slope to replay absolute seconds)")

    @property
    def rounds(self) -> int:
        """Number of trace rows R."""
        return self.values.shape[0]

    def check_rounds(self, needed: int) -> None:
        """Raise InputError if the run needs more rounds than the trace has and wrapping is off."""
        rows, cols = self.values.shape
        if not self.wrap and needed > rows:
            raise _fail(self.source, f"has {rows} rounds/{cols} workers, the run needs {needed} rounds "
                                     "(set delays.wrap = true to reuse rounds)")

    def _row(self, rnd: int) -> int:
        rnd = int(rnd)
        if rnd < 0:
            raise ValueError(f"round {rnd} is negative")
        if rnd >= self.rounds and not self.wrap:
            self.check_rounds(rnd + 1)
        return rnd % self.rounds

    def seconds(self, rnd: int) -> np.ndarray:
        """Return the raw trace seconds of run round ``rnd`` for every worker, shape (m,)."""
        return self.values[self._row(rnd), self._columns].copy()

    def ratios(self, rnd: int) -> np.ndarray:
        """Return value / row median for every worker in run round ``rnd``, shape (m,)."""
        r = self._row(rnd)
        return self.values[r, self._columns] / self.median[r]
