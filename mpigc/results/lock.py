"""One writer per result file: a lock file next to it naming the job that holds it.

``<out>.lock`` holds one line of JSON: host, pid, SLURM_JOB_ID (if set) and
the time the writer started. The writer also holds an exclusive ``flock``
on it for its whole life, and the kernel drops that lock when the process
ends however it ends (SIGKILL included), so a dead holder never blocks the
next job: its lock file is simply taken over. Where the file system has no
``flock`` (some Lustre mounts), the JSON decides: a holder on this host
whose pid no longer exists is stale and taken over; a holder on another
host is trusted, and the message says which lock file to delete if that
job is gone.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from mpigc.errors import InputError

_NO_FLOCK = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


class FileBusyError(InputError):
    """Another job is writing the result file (bad input: exit 2 before any work)."""


def target(path: str | os.PathLike) -> Path:
    """Return the file a result path names: ``path`` itself, or the file its symlink points to.

    Writing through a symlink writes into its target (the link stays), and
    the lock, side files and commit copies sit next to the target, so a
    link and its target are one file to every writer and reader.
    """
    p = Path(path)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def lock_path(path: str | os.PathLike) -> Path:
    """Return the lock file of the result file ``path``: ``<path>.lock`` (beside a symlink's target)."""
    p = target(path)
    return p.with_name(p.name + ".lock")


def _me() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


def _read_holder(fd: int) -> dict:
    """Return the JSON a lock file holds ({} if empty or unreadable: a writer between open and write)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def describe(holder: dict) -> str:
    """Return a holder as a message names it: ``pid 123 on host n1 (SLURM job 77, since ...)``."""
    if not holder:
        return "a process that is starting"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
    extra = [f"SLURM job {holder['slurm_job_id']}"] if holder.get("slurm_job_id") else []
    if holder.get("started"):
        extra.append(f"since {holder['started']}")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _alive_here(holder: dict) -> bool:
    """Whether a holder recorded on this host still runs (holders elsewhere count as alive)."""
    if holder.get("host") != socket.gethostname():
        return bool(holder)
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


class WriterLock:
    """The lock of one result file, held from :meth:`acquire` to :meth:`release`.

    Parameters
    ----------
    path : str or os.PathLike
        The result file (its lock file is ``<path>.lock``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = target(path)
        self.file = lock_path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`FileBusyError` at once (never waits).

        Raises
        ------
        FileBusyError
            Keyed ``--out``, naming the file and the job that holds it.
        """
        if self._fd is not None:
            return
        for _ in range(5):  # the holder may unlink the lock file between our open and flock
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                busy = self._flock(fd)
                if busy is None and self._same_file(fd):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, (json.dumps(_me()) + "\n").encode("utf-8"), 0)
                    self._fd, fd = fd, -1
                    return
            finally:
                if fd >= 0:
                    os.close(fd)
            if busy is not None:
                raise FileBusyError("--out", f"{self.path} is open for writing by another process "
                                             f"({describe(busy)}); choose another --out or wait for it to end")
        raise FileBusyError("--out", f"{self.path}: could not take its lock file {self.file}")

    def _flock(self, fd: int) -> dict | None:
        """None if we got the lock; the holder's record if someone else holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            return _read_holder(fd) or {"pid": "?", "host": "?"}
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
        holder = _read_holder(fd)  # no flock on this file system: the record decides
        return holder if holder and holder.get("pid") != os.getpid() and _alive_here(holder) else None

    def _same_file(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at the lock path (a releasing holder unlinks it)."""
        try:
            return os.stat(self.file).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def intact(self) -> bool:
        """Whether the lock file this process holds is still the one at the lock path.

        False if someone removed it (or replaced it) while we held it: then
        another writer may have started, and a commit must not go ahead on
        the old lock.
        """
        return self._fd is not None and self._same_file(self._fd)

    def retake(self, wait: float) -> None:
        """Take the lock again after it was removed under us, waiting up to ``wait`` seconds for its new holder.

        Raises
        ------
        FileBusyError
            If another job still holds it after ``wait`` seconds.
        """
        if self._fd is not None:
            os.close(self._fd)                      # the removed file: locking it protects nothing
            self._fd = None
        deadline = time.monotonic() + wait
        while True:
            try:
                self.acquire()
                return
            except FileBusyError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def release(self) -> None:
        """Give the lock up and remove the lock file (safe to call twice)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.unlink(self.file)  # while still locked: nobody takes a file that is going away
        except FileNotFoundError:
            pass
        os.close(fd)


def holder(path: str | os.PathLike) -> dict | None:
    """Return the record of the job writing ``path`` now, or None if no live job holds its lock.

    Readers use it to tell a running run (its writer holds the lock) from one
    a killed job left behind.
    """
    file = lock_path(path)
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # nobody holds it exclusively: a stale file
        except BlockingIOError:
            return _read_holder(fd) or {"pid": "?", "host": "?"}
        except OSError:
            record = _read_holder(fd)
            return record if record and _alive_here(record) else None
    finally:
        os.close(fd)
