"""Writing result files so that readers, a full disk and a second writer cannot hurt them.

Design (issue 13), in three parts:

* **Never written in place.** A result file changes only by a commit: it is
  copied to a temporary file next to it, the change is written there, and
  the copy replaces it with ``os.replace`` (:func:`mpigc.results.store.commit`).
  A full disk, a quota or EFBIG during a write therefore ends the command
  with one line (:class:`ResultWriteError`, exit 1) and leaves every earlier
  run byte-identical; a reader holding the file open keeps its snapshot and
  can never make a write fail (no HDF5 lock is involved).
* **Running runs live in side files.** ``ResultFile(keep_open=True)``
  (``mpigc run`` and ``mpigc simulate``) writes each run to its own side file
  ``<stem>.running<k><suffix>`` in HDF5's SWMR mode and commits them all into
  the result file when it closes: O(file size) once per job, while a flush
  stays an append to a small file. Readers (``read_runs``, ``mpigc info``)
  list the side files' runs after the file's own and see every flushed row.
  SWMR was not used on the result file itself: a SIGKILLed SWMR writer leaves
  a file that plain HDF5 opens refuse until ``h5clear`` is run, and SWMR
  needs the newest file format. On a side file that does not matter: our
  readers open it with ``swmr=True``, which works on a killed writer's file,
  and the next writer of the result file commits what a dead job left
  (``interrupted = "killed"``).
* **One writer per file.** A writer holds ``<out>.lock``
  (:mod:`mpigc.results.lock`); a second job is refused at once with one line
  naming the holder (host, pid, SLURM job), exit 2. The kernel drops the lock
  of a dead process, so a stale lock file never blocks.

The default ``ResultFile(path)`` commits at every ``new_run`` and ``flush``
(O(file size) each): for small, one-off writes (summaries, merges, tests).
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mpigc import interrupts
from mpigc.results import store
from mpigc.results.checks import _check_file, check_run_name, check_writable
from mpigc.results.lock import FileBusyError, WriterLock
from mpigc.results.schema import (
    CHUNK_ROWS,
    TABLES,
    _encode_attrs,
    _write_attrs,
    as_rows,
)
from mpigc.results.store import ResultWriteError, running_files

__all__ = ["FileBusyError", "ResultFile", "ResultWriteError", "RunWriter", "check_run_name", "check_writable",
           "running_files"]


def _create_table(group: h5py.Group, table: str) -> h5py.Dataset:
    """Create an empty, chunked, resizable table dataset in a run group."""
    return group.create_dataset(table, shape=(0,), maxshape=(None,), dtype=TABLES[table], chunks=(CHUNK_ROWS,))


def _write_rows(group: h5py.Group, rows: dict[str, list[np.ndarray]], written: dict[str, int]) -> None:
    """Append buffered rows to a run group's tables (creating tables not declared)."""
    for table, chunks in rows.items():
        data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        ds = group[table] if table in group else _create_table(group, table)
        n = ds.shape[0]
        ds.resize((n + data.size,))
        ds[n:] = data
        # Written now, while ``ds`` is alive: a failure raises here. Left to the dataset's close
        # when ``ds`` goes away, it would be printed and ignored by h5py's deallocator.
        ds.flush()
        written[table] = n + data.size


class ResultFile:
    """Writer of one HDF5 result file holding several runs (see the module docstring).

    Rows are buffered in memory and written by ``RunWriter.flush``. With
    ``keep_open=True`` each run is written to its own side file, kept open
    in SWMR mode from ``new_run`` to ``close()``, which commits them into
    ``path``; ``RunWriter.flush`` then writes at most every ``min_interval``
    seconds (a killed job loses at most that much; an interrupted one
    nothing, since ``close()`` writes the rest). Without it every
    ``new_run`` and ``flush`` is a commit of its own.

    Parameters
    ----------
    path : str or os.PathLike
        The file; it is created (with its directory) by the first ``new_run``.
    keep_open : bool
        Write runs to side files and commit them at ``close()``.
    min_interval : float
        Seconds between two writes of a run writer's ``flush()``; 0 writes at
        every call. ``flush(force=True)``, ``ResultFile.flush`` and ``close``
        always write.

    Raises
    ------
    FileBusyError
        From :meth:`acquire` (and the first write) if another job writes ``path``.
    ResultWriteError
        From any write that fails; ``path`` is then unchanged.
    """

    def __init__(self, path: str | os.PathLike, *, keep_open: bool = False, min_interval: float = 0.0) -> None:
        self.path = Path(path)
        self.keep_open = bool(keep_open)
        self.min_interval = float(min_interval)
        self._writers: list[RunWriter] = []
        self._lock = WriterLock(self.path)
        self._failed = False

    @property
    def writers(self) -> list[RunWriter]:
        """The run writers made by this file, oldest first."""
        return list(self._writers)

    def acquire(self) -> None:
        """Take the file's lock now (``keep_open``: until ``close()``), before any work starts.

        Raises
        ------
        FileBusyError
            If another live process holds it (one line naming the holder).
        InputError
            If the file exists and is not an mpigc result file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            _check_file(self.path, self.path.parent)     # never append to someone else's file
        except BaseException:
            self._lock.release()
            raise

    def _commit(self, apply) -> Any:
        """Commit a change to ``path``, taking in runs that dead jobs left in side files first."""
        held = self._lock.held
        if not held:
            self.acquire()
        try:
            orphans = [p for p in running_files(self.path) if p not in {w._side for w in self._writers}]

            def change(f: h5py.File) -> Any:
                runs = store.init_file(f)
                for side in orphans:
                    store.merge_side(runs, side, recovered=True)
                return apply(f)
            with interrupts.deferred():  # the orphans go with the commit that took them in: never merged twice
                result = store.commit(self.path, change)
                for side in orphans:
                    store._unlink(side)
            return result
        finally:
            if not held:
                self._lock.release()

    def new_run(self, name: str, attrs: dict, tables: Iterable[str] = ("rounds",)) -> RunWriter:
        """Create run ``<unique name>`` with ``attrs`` and empty ``tables``; return its writer.

        ``name`` gets ``-2``, ``-3``... appended if a run of that name exists.
        Attribute values may be str, int, float, bool, None (stored as ``""``),
        or dicts/lists (stored as JSON text, decoded by ``read_runs``).
        """
        check_run_name(name)
        tables = list(tables)
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise ValueError(f"unknown tables {unknown}; known: {sorted(TABLES)}")
        encoded, json_keys = _encode_attrs(dict(attrs))

        def create(group: h5py.Group) -> None:
            _write_attrs(group, encoded, json_keys)
            for table in tables:
                _create_table(group, table)

        if not self.keep_open:
            unique = self._commit(lambda f: _create_run(f["runs"], name, create))
            writer = RunWriter(self, unique, tables)
        else:
            if not self._lock.held:
                self.acquire()
            if not self.path.exists():
                self._commit(lambda f: None)   # readers find the file from the first run on
            taken = store.run_names_with_sides(self.path) + [w.name for w in self._writers]
            unique = store.unique_name(taken, name)
            k = 1 + max([0] + [int(p.stem.rsplit(".running", 1)[1]) for p in running_files(self.path)])
            side = store.side_path(self.path, k)
            # Built under a name readers do not list and renamed once in SWMR mode: a reader that
            # finds a side file can always open it with swmr=True, which a file not yet switched refuses.
            fresh = side.with_name(f".{side.name}.new")
            with interrupts.deferred():
                try:
                    f = h5py.File(fresh, "w", libver="latest", locking=False)
                except OSError as exc:
                    raise ResultWriteError(f"cannot create {side}: {store.reason(exc)}; "
                                           f"{self.path} is unchanged") from exc
                writer = RunWriter(self, unique, tables, _side=fresh, _h5=f)
                writer._guard(lambda: (create(store.init_file(f).create_group(unique)), _start_swmr(f),
                                       os.replace(fresh, side)))
                writer._side = side
        self._writers.append(writer)
        return writer

    def flush(self) -> None:
        """Write everything every run writer of this file has buffered."""
        for writer in self._writers:
            writer.flush(force=True)

    def close(self, mark_on_signal: RunWriter | None = None) -> None:
        """Write everything buffered, commit the side files and release the file (safe to call twice).

        The whole close runs under :func:`mpigc.interrupts.deferred`: a signal
        arriving during the final merge lets that merge finish, and its side
        files go with it, before :class:`~mpigc.interrupts.Interrupted` is
        raised, so a second ``close()`` (the interrupt path's) has nothing
        left to commit and the run is written exactly once. If the signal
        came before the commit wrote its runs, ``mark_on_signal``'s run is
        marked ``interrupted`` in that same commit.

        After a failed write nothing more is written: the side files of runs
        that had ended stay next to the file (readers list them; the next
        writer commits them).
        """
        with interrupts.deferred():
            try:
                if not self._failed:
                    self.flush()
            finally:
                sides = []
                for writer in self._writers:
                    if writer._h5 is not None:
                        f, writer._h5 = writer._h5, None
                        try:
                            f.close()
                        except Exception:  # noqa: BLE001 - a failed close leaves the side file as it was
                            store.discard(f)
                    if writer._side is not None and writer._side.exists():
                        sides.append(writer)
                try:
                    if sides and not self._failed:
                        self._commit_sides(sides, mark_on_signal)
                finally:
                    self._lock.release()

    def _commit_sides(self, sides: list[RunWriter], mark_on_signal: RunWriter | None) -> None:
        def merge(f: h5py.File) -> None:
            runs = f["runs"]
            for writer in sides:
                before = set(runs)
                store.merge_side(runs, writer._side, recovered=False)
                writer._merged = next(iter(set(runs) - before), writer.name)
            stop = interrupts.received()   # a signal held back since the commit began
            if stop is not None and mark_on_signal is not None and mark_on_signal in sides:
                _mark(runs[mark_on_signal._merged], stop.name)
        try:
            self._commit(merge)
        except ResultWriteError as exc:
            kept = ", ".join(str(w._side) for w in sides)
            raise ResultWriteError(f"{exc}; the runs of this job are kept in {kept}") from exc.__cause__
        for writer in sides:
            store._unlink(writer._side)
            writer._side = None

    def mark_interrupted(self, writer: RunWriter, signal_name: str) -> None:
        """Record that ``writer``'s run was stopped by ``signal_name`` (attribute ``interrupted``).

        The only way a run is marked interrupted. While the run is open the
        mark goes with its next write; once its side file was committed (a
        signal during the final merge) the merged run is checked and, only
        if that commit did not already carry the mark, marked by a commit of
        its own. Nothing happens after a failed write (the file writes no
        more).
        """
        if self._failed:
            return
        if writer._merged is None:
            writer.set_attrs(interrupted=signal_name)
            if writer._h5 is None and writer._side is None:
                writer.flush(force=True)   # a file without side files: the mark is a commit of its own
            return
        name = writer._merged
        with h5py.File(self.path, "r", locking=False) as f:
            group = f.get(f"runs/{name}")
            done = group is None or group.attrs.get("interrupted") in (signal_name, signal_name.encode())
        if not done:
            self._commit(lambda f: _mark(f["runs"][name], signal_name))

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_swmr(f: h5py.File) -> None:
    f.flush()
    f.swmr_mode = True


def _create_run(runs: h5py.Group, name: str, create) -> str:
    unique = store.unique_name(runs, name)
    create(runs.create_group(unique))
    return unique


@dataclass
class RunWriter:
    """Buffered writer of one run's tables and attributes (made by ``ResultFile.new_run``)."""

    file: ResultFile
    name: str
    tables: list[str]
    written: dict[str, int] = field(default_factory=dict)
    _rows: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    _attrs: dict[str, Any] = field(default_factory=dict, repr=False)
    _last: float = field(default_factory=time.monotonic, repr=False)
    _side: Path | None = field(default=None, repr=False)      # keep_open: this run's side file
    _h5: h5py.File | None = field(default=None, repr=False)   # ... open in SWMR mode until close
    _merged: str | None = field(default=None, repr=False)     # its name in the result file, once committed

    def append(self, table: str, rows: np.ndarray) -> None:
        """Buffer ``rows`` (a structured array of ``TABLES[table]`` dtype, or convertible)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        arr = as_rows(table, rows, copy=True)  # the caller may reuse its buffers
        if arr.size:
            self._rows.setdefault(table, []).append(arr)

    def pending(self, table: str = "rounds") -> int:
        """Return the number of buffered, not yet written rows of ``table``."""
        return sum(a.size for a in self._rows.get(table, []))

    def set_attrs(self, **attrs: Any) -> None:
        """Set run attributes (e.g. summary statistics), written on the next write."""
        _encode_attrs(attrs)      # fail now, not at flush time
        self._attrs.update(attrs)

    def flush(self, force: bool = False) -> None:
        """Append every buffered row and attribute to the run.

        With the file's ``min_interval`` > 0 this writes only if that many
        seconds have passed since this writer's last write (or ``force``).
        The write is never torn by SIGTERM/SIGINT (see ``mpigc.interrupts``).

        Raises
        ------
        ResultWriteError
            If the write fails (full disk, quota): the result file is
            unchanged, this run's rows are lost, and the file writes no more.
        """
        if not self._rows and not self._attrs:
            return
        now = time.monotonic()
        if not force and now - self._last < self.file.min_interval:
            return
        encoded, json_keys = _encode_attrs(self._attrs)

        def write(group: h5py.Group) -> None:
            _write_rows(group, self._rows, self.written)
            if encoded:
                _write_attrs(group, encoded, json_keys)

        if self._h5 is not None:
            with interrupts.deferred():
                self._guard(lambda: (write(self._h5["runs"][self.name]), self._h5.flush()))
        elif self._side is not None or self.file._failed:
            raise ResultWriteError(f"{self.file.path}: run {self.name} can no longer be written (its file is closed)")
        else:
            self.file._commit(lambda f: write(f["runs"][self.name]))
        self._rows.clear()
        self._attrs.clear()
        self._last = now

    def _guard(self, action) -> None:
        """Run a write to the side file; on failure drop the side file and raise ResultWriteError."""
        try:
            action()
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            store.discard(self._h5)
            self._h5 = None
            side, self._side = self._side, None
            if side is not None:
                store._unlink(side)   # its rows are incomplete, and the disk is full
            self.file._failed = True
            others = [str(w._side) for w in self.file._writers if w is not self and w._side is not None]
            kept = f"; earlier runs of this job are kept in {', '.join(others)}" if others else ""
            raise ResultWriteError(f"cannot write run {self.name} to {side}: {store.reason(exc)}; "
                                   f"{self.file.path} is unchanged, this run is lost{kept}") from exc


def _mark(group: h5py.Group, signal_name: str) -> None:
    """Set a run group's ``interrupted`` attribute (unless it already names a signal)."""
    if not group.attrs.get("interrupted"):
        encoded, json_keys = _encode_attrs({"interrupted": signal_name})
        _write_attrs(group, encoded, json_keys)
