"""SIGTERM, SIGINT and SIGHUP as an exception: :class:`Interrupted`, raised once, never inside a write.

SLURM sends SIGTERM at a time limit or on ``scancel``; ``mpiexec`` forwards
SIGTERM and SIGINT to every rank; a closed terminal or ssh session sends
SIGHUP, handled the same way (run long jobs under ``nohup`` or ``setsid`` to
keep them going). :func:`install` turns the first such
signal into an :class:`Interrupted` exception raised in the main thread (a
Python handler runs between bytecodes, so loops that poll with short sleeps
get it within milliseconds). Later signals are ignored: the first one's
clean-up (flushing the result file) must not be cut short by a second
Ctrl-C or by ``mpiexec`` forwarding a signal the rank already received from
the terminal. Code that must not be torn in half (an HDF5 append) runs in
:func:`deferred`: a signal arriving there is raised when the block ends.

No MPI here: the MPI launcher decides what each rank does with the exception.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(Exception):
    """The run was stopped by a signal (SIGTERM, SIGINT or SIGHUP).

    Attributes
    ----------
    signum : int
        The signal's number.
    name : str
        Its name, e.g. ``"SIGTERM"`` (what result files record).
    exit_code : int
        ``128 + signum``, the shell's convention for a process ended by a signal.
    note : str
        What was kept, for the user's one line (set by whoever closed the result file).
    """

    def __init__(self, signum: int) -> None:
        self.note = ""
        self.signum = int(signum)
        self.name = signal.Signals(self.signum).name
        self.exit_code = 128 + self.signum
        super().__init__(f"interrupted by {self.name}")


class _State:
    """Process-wide state of the handler (signals are process-wide too)."""

    fired: int | None = None     # the first signal received, once raised or pending
    raised = False               # whether Interrupted has been raised for it
    depth = 0                    # nesting of deferred() blocks


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.fired is not None:
        return                   # a second signal: the first one's clean-up is running
    _State.fired = signum
    if _State.depth == 0:
        _State.raised = True
        raise Interrupted(signum)


def install(signals: Sequence[int] = SIGNALS) -> dict[int, object] | None:
    """Raise :class:`Interrupted` on the first of ``signals``; return the previous handlers.

    Returns None (and installs nothing) outside the main thread, where Python
    cannot set signal handlers. Pass the result to :func:`restore`.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    _State.fired, _State.raised, _State.depth = None, False, 0
    return {sig: signal.signal(sig, _handler) for sig in signals}


def restore(previous: dict[int, object] | None) -> None:
    """Put back the handlers :func:`install` replaced (no-op for None) and forget any signal received."""
    for sig, old in (previous or {}).items():
        signal.signal(sig, old)  # type: ignore[arg-type]
    if previous is not None:
        _State.fired, _State.raised, _State.depth = None, False, 0


def received() -> Interrupted | None:
    """Return the interruption received so far (raised or pending), or None."""
    return Interrupted(_State.fired) if _State.fired is not None else None


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back :class:`Interrupted` until the block ends (for writes that must not be torn).

    A signal received inside the block is raised on leaving it, unless an
    exception is already leaving the block.
    """
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
    if _State.depth == 0 and _State.fired is not None and not _State.raised:
        _State.raised = True
        raise Interrupted(_State.fired)
