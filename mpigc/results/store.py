"""Writes that cannot destroy a result file: side files, copy-and-rename commits, failed writes.

A result file is never written in place. New content reaches it only by a
*commit*: copy the file to a temporary file in the same directory, write the
change there, ``fsync``, and ``os.replace`` it over the original (then
``fsync`` the directory). A failure anywhere (a full disk, a quota, EFBIG)
removes the temporary file and leaves the original byte-identical; readers
holding the old file open keep a consistent snapshot.

A run in progress lives in a *side file* next to the result file,
``<stem>.running<k><suffix>`` (e.g. ``r.running1.h5``), written in HDF5's
single-writer/multiple-reader mode (SWMR): readers open it with
``swmr=True`` and see a consistent prefix of its rows at any moment, even
after the writer was SIGKILLed (plain opens then fail with "file is already
open for write", which is why no SWMR writer ever touches the result file
itself). Side files are committed into the result file when their writer
closes, or by the next writer of the file if their job died.

HDF5 cannot recover from a failed write: the file handle keeps failing and
the library crashes when Python closes it at exit. :func:`discard` points
the handle's descriptor at ``/dev/null`` so that it closes cleanly.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import h5py

from mpigc.results import sides
from mpigc.results.lock import target
from mpigc.results.schema import _MARKER, SCHEMA_VERSION
from mpigc.results.sides import Verdict

T = TypeVar("T")


class ResultWriteError(Exception):
    """A result file could not be written (full disk, quota, I/O error).

    ``str(error)`` is one line naming the file, the problem and what was
    kept; ``mpigc run`` and ``mpigc simulate`` print it and exit with code 1.
    """


def running_files(path: str | os.PathLike) -> list[Path]:
    """Return the side files of ``path`` (runs in progress or left by a killed job), oldest first."""
    return _numbered_siblings(path, "running")


def side_path(path: str | os.PathLike, k: int) -> Path:
    """Return the ``k``-th side file of ``path``."""
    p = target(path)
    return p.with_name(f"{p.stem}.running{k}{p.suffix}")


def reason(exc: BaseException) -> str:
    """Return a short, one-line reason for a failed write (the errno text if there is one)."""
    text = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
    for known in ("No space left on device", "Disk quota exceeded", "File too large", "Read-only file system"):
        if known in text:
            return known
    return " ".join(text.split())[:200] or type(exc).__name__


def discard(f: h5py.File | None) -> None:
    """Close an HDF5 file whose writes failed, without more writes reaching its file.

    The descriptor of HDF5's sec2 driver is pointed at ``/dev/null`` first,
    so the flush on close succeeds and HDF5 frees the handle (otherwise it
    retries at interpreter exit and crashes).
    """
    if f is None or not f.id.valid:
        return
    try:
        fd = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except (OSError, ValueError, RuntimeError):
        pass
    try:
        f.close()
    except Exception:  # noqa: BLE001 - the file is being thrown away
        pass


def fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    """Flush a file (or a directory entry) to stable storage; no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextmanager
def writable(path: Path, mode: str, **kwargs) -> Iterator[h5py.File]:
    """Return an HDF5 file open for writing that is discarded (not flushed) if the block fails.

    HDF5's own lock is off: one writer per result file is the lock file's
    job (:mod:`mpigc.results.lock`), and readers holding a file must never
    make a writer's open fail.
    """
    f = h5py.File(path, mode, locking=False, **kwargs)
    try:
        yield f
    except BaseException:
        discard(f)
        raise
    try:
        f.close()
    except BaseException:
        discard(f)
        raise


def commit(path: Path, apply: Callable[[h5py.File], T]) -> T:
    """Apply ``apply`` to a copy of ``path`` and put the copy in its place atomically.

    Raises
    ------
    ResultWriteError
        If anything fails; ``path`` is then unchanged (byte-identical).
    """
    path = target(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    exists = path.exists()
    try:
        if exists:
            shutil.copyfile(path, tmp)
            shutil.copymode(path, tmp)
        with writable(tmp, "a" if exists else "w") as f:
            result = apply(f)
        fsync_path(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        _unlink(tmp)
        raise ResultWriteError(f"cannot write {path}: {reason(exc)}; {path} is unchanged") from exc
    except BaseException:
        _unlink(tmp)
        raise
    fsync_path(path.parent if str(path.parent) else ".", directory=True)
    return result


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ----------------------------------------------------------------------------- runs across files

def unique_name(taken: Iterable[str], name: str) -> str:
    """Return ``name``, or ``name-2``, ``name-3``... if it is taken."""
    taken = set(taken)
    if name not in taken:
        return name
    k = 2
    while f"{name}-{k}" in taken:
        k += 1
    return f"{name}-{k}"


def init_file(f: h5py.File) -> h5py.Group:
    """Mark a file as ours and return its ``/runs`` group (runs iterate in creation order)."""
    if _MARKER not in f.attrs:
        f.attrs[_MARKER] = SCHEMA_VERSION
    if "runs" not in f:
        f.create_group("runs", track_order=True)
    return f["runs"]


def run_names_with_sides(path: Path) -> list[str]:
    """Names of the runs in ``path`` and in its side files (what a new run must not reuse)."""
    names: list[str] = []
    for p in [path, *running_files(path)]:
        try:
            with h5py.File(p, "r", locking=False, swmr=p != path) as f:
                names += list(f["runs"]) if "runs" in f else []
        except (OSError, KeyError):
            continue
    return names


def merge_side(runs: h5py.Group, side: Path, recovered: bool) -> Verdict:
    """Copy the run of a verified side file into ``runs`` (renamed if taken); return the verdict.

    Only a healthy side file (:func:`mpigc.results.sides.verify`) is copied,
    and of each table only the rows its ledger confirms. A side file its
    writer never closed (plain HDF5 opens refuse it) holds a killed job's
    run: with ``recovered`` it is marked ``interrupted = "killed"``. The
    caller decides what becomes of a file that is not healthy.
    """
    verdict = sides.verify(side)
    if not verdict.healthy:
        return verdict
    try:
        src, killed = h5py.File(side, "r", locking=False), False
    except OSError:
        src, killed = h5py.File(side, "r", swmr=True, locking=False), True
    with src:
        for name, group in src["runs"].items():
            unique = unique_name(runs, name)
            try:
                runs.copy(group, unique)
                for table, n in (verdict.rows or {}).items():
                    if table in runs[unique] and runs[unique][table].shape[0] > n:
                        runs[unique][table].resize((n,))    # rows the ledger never confirmed
            except (OSError, RuntimeError, ValueError, KeyError) as exc:
                if unique in runs:
                    del runs[unique]
                return sides.Verdict(sides.DAMAGED, f"cannot be copied ({sides._why(exc)})")
            if recovered and killed and not runs[unique].attrs.get("interrupted"):
                runs[unique].attrs["interrupted"] = "killed"   # its job died without closing it
    return verdict


def damaged_files(path: str | os.PathLike) -> list[Path]:
    """Return the side files set aside as damaged (``<stem>.damaged<k><suffix>``), oldest first."""
    return _numbered_siblings(path, "damaged", r"(?:\.(\d+))?")


def _numbered_siblings(path: str | os.PathLike, kind: str, tail: str = "") -> list[Path]:
    """Return the files ``<stem>.<kind><k><suffix><tail>`` beside ``path``'s target, by their numbers."""
    p = target(path)
    pattern = re.compile(re.escape(p.stem) + rf"\.{kind}(\d+)" + re.escape(p.suffix) + tail + r"\Z")
    try:
        names = os.listdir(p.parent if str(p.parent) else ".")
    except OSError:
        return []
    found = [(tuple(int(g or 0) for g in m.groups()), p.with_name(n)) for n in names if (m := pattern.match(n))]
    return [f for _, f in sorted(found)]


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Return what a killed commit or run start left beside ``path``: commit copies and unswitched side files.

    Only the holder of the result file's lock creates these, so the holder
    may remove every one it did not make itself.
    """
    p = Path(path)
    side = re.escape(p.stem) + r"\.running\d+" + re.escape(p.suffix)
    pattern = re.compile(r"\.(?:" + re.escape(p.name) + r"\.\d+\.tmp|" + side + r"\.new)\Z")
    try:
        names = os.listdir(p.parent if str(p.parent) else ".")
    except OSError:
        return []
    return sorted(p.with_name(n) for n in names if pattern.match(n))
