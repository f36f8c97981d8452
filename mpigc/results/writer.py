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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py

from mpigc import interrupts
from mpigc.results import sides, store
from mpigc.results.checks import _check_file, check_name_length, check_run_name, check_writable
from mpigc.results.lock import FileBusyError, WriterLock, target
from mpigc.results.runwriter import RunWriter, _create_table
from mpigc.results.schema import TABLES, _encode_attrs, _write_attrs
from mpigc.results.store import ResultWriteError, running_files

#: seconds a job whose lock file was removed under it waits for the lock's new holder before its commit
RETAKE_WAIT = 60.0

__all__ = ["FileBusyError", "ResultFile", "ResultWriteError", "RunWriter", "check_run_name", "check_writable",
           "running_files"]


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
        self.path = target(path)
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
        check_name_length(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            _check_file(self.path, self.path.parent)     # never append to someone else's file
        except BaseException:
            self._lock.release()
            raise

    def _commit(self, apply, after=None) -> Any:
        """Commit a change to ``path``, taking in runs that dead jobs left in side files first.

        Side files whose writer lives (it holds their flock) are left alone,
        whether or not the lock file is still there; a damaged one is set
        aside (renamed ``.damaged``), one mpigc did not make (or of another
        schema version) is left where it is. ``after`` runs once the change
        is in place, before a signal held during the commit is raised.
        """
        held = self._lock.held
        if not held:
            self.acquire()
        elif not self._lock.intact():
            self._retake()
        taken: list[tuple[Path, int]] = []
        try:
            for stale in store.stale_temporaries(self.path):   # a killed commit's copy, a killed start's file
                fd = sides.take_orphan(stale)
                if fd is not None:
                    store._unlink(stale)
                    os.close(fd)
            mine = {w._side for w in self._writers}
            for side in running_files(self.path):
                fd = None if side in mine else sides.take_orphan(side)
                if fd is not None:
                    taken.append((side, fd))
            verdicts: dict[Path, sides.Verdict] = {}

            def change(f: h5py.File) -> Any:
                runs = store.init_file(f)
                for side, _ in taken:
                    verdicts[side] = store.merge_side(runs, side, recovered=True)
                return apply(f)
            with interrupts.deferred():   # the commit and what it makes obsolete, as one step
                result = store.commit(self.path, change)
                for side, _ in taken:
                    _settle(side, verdicts[side])
                if after is not None:
                    after()
            return result
        finally:
            for _, fd in taken:
                os.close(fd)
            if not held:
                self._lock.release()

    def _retake(self) -> None:
        """Our lock file was removed: take the lock again (waiting for a job that took it) or fail."""
        try:
            self._lock.retake(RETAKE_WAIT)
        except FileBusyError as exc:
            kept = ", ".join(str(w._side) for w in self._writers if w._side is not None)
            raise ResultWriteError(f"the lock file of {self.path} was removed while this job ran and {exc.problem}"
                                   f"; this job's runs are kept in {kept or 'no side file'} (the next writer "
                                   f"of {self.path} commits them)") from exc

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
                writer.start_side(create, fresh, side)
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

        Raises
        ------
        ResultWriteError
            If a write or the commit fails, or a run's side file was removed
            or replaced by another process (that run is then not in the file):
            the job must not report success.
        """
        with interrupts.deferred():
            try:
                if not self._failed:
                    self.flush()
            finally:
                for writer in self._writers:
                    if writer._h5 is not None:
                        f, writer._h5 = writer._h5, None
                        try:
                            f.close()
                        except Exception:  # noqa: BLE001 - a failed close leaves the side file as it was
                            store.discard(f)
                ours = [w for w in self._writers if w._side is not None]
                lost = [w for w in ours if w._fd is not None and not sides.same_file(w._side, w._fd)]
                try:
                    if ours and not self._failed:
                        self._commit_sides([w for w in ours if w not in lost], mark_on_signal)
                finally:
                    for writer in self._writers:
                        writer.release_side()      # a side file left now is the next writer's to commit
                    self._lock.release()
        if lost:
            self._failed = True
            names = ", ".join(f"{w.name} ({w._side})" for w in lost)
            raise ResultWriteError(f"the side file of run(s) {names} was removed or replaced by another process "
                                   f"while this job ran; those runs are not in {self.path}")

    def _commit_sides(self, own: list[RunWriter], mark_on_signal: RunWriter | None) -> None:
        verdicts: dict[Path, sides.Verdict] = {}

        def merge(f: h5py.File) -> None:
            runs = f["runs"]
            for writer in own:
                before = set(runs)
                verdicts[writer._side] = store.merge_side(runs, writer._side, recovered=False)
                writer._merged = next(iter(set(runs) - before), None)
            stop = interrupts.received()   # a signal held back since the commit began
            if stop is not None and mark_on_signal is not None and mark_on_signal._merged is not None:
                _mark(runs[mark_on_signal._merged], stop.name)

        def settle() -> None:
            for writer in own:
                _settle(writer._side, verdicts[writer._side])
        try:
            self._commit(merge, after=settle)
        except ResultWriteError as exc:
            kept = ", ".join(str(w._side) for w in own)
            raise ResultWriteError(f"{exc}; the runs of this job are kept in {kept}") from exc.__cause__
        bad = [(w, verdicts[w._side]) for w in own if not verdicts[w._side].healthy]
        for writer in own:
            writer._side = None
        if bad:
            raise ResultWriteError("; ".join(f"run {w.name}: its side file is {v.kind} ({v.reason}), not merged"
                                             for w, v in bad))

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


def _settle(side: Path, verdict: sides.Verdict) -> None:
    """After a commit: remove a merged side file, set a damaged one aside, leave one mpigc did not make."""
    if verdict.healthy:
        store._unlink(side)
    elif verdict.kind == sides.DAMAGED and side.exists():
        sides.set_aside(side)


def _create_run(runs: h5py.Group, name: str, create) -> str:
    unique = store.unique_name(runs, name)
    create(runs.create_group(unique))
    return unique


def _mark(group: h5py.Group, signal_name: str) -> None:
    """Set a run group's ``interrupted`` attribute (unless it already names a signal)."""
    if not group.attrs.get("interrupted"):
        encoded, json_keys = _encode_attrs({"interrupted": signal_name})
        _write_attrs(group, encoded, json_keys)
