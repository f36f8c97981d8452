"""Message framing between rank 0 and the workers.

Every message is one buffer of the run's dtype (``workload.dtype``:
float64, or float32 with half the bytes): a fixed header, then an optional
payload. The round travels in the header, never in the MPI tag (tags may be
as small as 32767), so a late result is recognised as stale by its round.
Integers up to 2**53 are exact in float64, up to 2**24 in float32 (the
config loader refuses float32 runs with more rounds); float32 headers hold
a worker's busy and injected seconds to 7 significant digits.

Control (rank 0 → worker, tag ``TAG_CONTROL``): ``[kind, round, 0] + model``.
Results (worker → rank 0, tag ``TAG_RESULT``):
``[kind, round, position, chunk, busy, injected, tasks_done, failed, overrun] + vector``.

Acknowledgement: a worker reads its control messages in order and sends
nothing about round r before reading START(r), so any message from it
carrying round r tells rank 0 it has read everything sent before START(r)
(a REPORT(r): also the STOP(r) or later message that ended r). Rank 0 bounds what it sends by that
(:class:`~mpigc.mpi.mailbox.Courier`), so a worker may see START(r) followed
by START(r + k): it serves the rounds it is started on, whatever their numbers.
"""
from __future__ import annotations

import os
import time
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from mpi4py import MPI
from mpi4py.util.dtlib import from_numpy_dtype

from mpigc.core.payload import RESULT_HEADER
from mpigc.results import WorkerRow

TAG_CONTROL = 11
TAG_RESULT = 12


#: sleep between polls of an idle loop: short enough to notice a message
#: within a fraction of a millisecond, long enough not to spin a core
POLL_SLEEP = 2e-4
#: longest sleep slice of an emulated chunk between checks for a stop
SLEEP_SLICE = 2e-3
#: target wall time of one block of a chunk's gradient computation: a worker checks for
#: STOP and INSTRUCT between blocks, so this bounds how late it notices them mid-chunk
BLOCK_TIME = 2e-3
#: CPU time of one wake-up of a sleeping rank (about 25 us measured on a 2-core VM:
#: 32 idle workers polling every 0.2 ms would keep 4 such cores busy)
WAKE_COST = 25e-6
#: share of a host's cores its idle workers may spend waking up to poll
IDLE_BUDGET = 0.2


class Kind(IntEnum):
    """What a message is."""

    START = 1  # begin a round; payload: the model
    STOP = 2  # the round is decoded (or abandoned): stop working on it
    END = 3  # the run is over: flush pending sends, answer FINAL
    INSTRUCT = 4  # request transport; payload: (chunk, l weights) per instructed chunk
    RESULT = 10  # a coded partial result; payload: the message vector
    REPORT = 11  # per-round statistics of one worker, sent when its round ends
    FINAL = 12  # last message of a worker in a run
    ANSWER = 13  # request transport: the one combined vector of a worker


def control(kind: Kind, rnd: int, payload: np.ndarray | None = None, dtype: np.dtype = np.float64) -> np.ndarray:
    """Return a control buffer of ``dtype`` (the payload is cast to it)."""
    head = np.array([kind, rnd, 0], dtype=dtype)
    return head if payload is None else np.concatenate([head, np.asarray(payload, dtype=dtype)])


def result(kind: Kind, rnd: int, position: int = -1, chunk: int = -1, busy: float = 0.0, injected: float = 0.0,
           tasks_done: int = 0, failed: bool = False, overrun: float = 0.0,
           vector: np.ndarray | None = None, dtype: np.dtype = np.float64) -> np.ndarray:
    """Return a result buffer of ``dtype`` (header plus optional vector)."""
    size = RESULT_HEADER + (0 if vector is None else len(vector))
    buf = np.empty(size, dtype=dtype)
    write_header(buf, kind, rnd, position, chunk, busy, injected, tasks_done, failed, overrun)
    if vector is not None:
        buf[RESULT_HEADER:] = vector
    return buf


def write_header(buf: np.ndarray, kind: Kind, rnd: int, position: int = -1, chunk: int = -1, busy: float = 0.0,
                 injected: float = 0.0, tasks_done: int = 0, failed: bool = False, overrun: float = 0.0) -> None:
    """Fill a result buffer's header in place (its payload was written there already)."""
    buf[:RESULT_HEADER] = (kind, rnd, position, chunk, busy, injected, tasks_done, failed, overrun)


def mpi_type(dtype: np.dtype) -> MPI.Datatype:
    """Return the MPI datatype of a numpy float dtype (float64: DOUBLE, float32: FLOAT)."""
    return from_numpy_dtype(np.dtype(dtype))


class ResultHeader(NamedTuple):
    """The header of a result message (worker → rank 0), decoded: the one reading of its slots."""

    kind: int
    round: int
    position: int
    chunk: int
    busy: float
    injected: float
    tasks_done: int
    failed: bool
    overrun: float


def header(buf: np.ndarray) -> ResultHeader:
    """Decode a result message's header (reads its slots; the vector is never touched)."""
    kind, rnd, position, chunk, busy, injected, done, failed, overrun = buf[:RESULT_HEADER].tolist()
    return ResultHeader(int(kind), int(rnd), int(position), int(chunk), busy, injected, int(done), bool(failed),
                        overrun)


def worker_row(w: int, head: ResultHeader) -> WorkerRow:
    """Return the ``workers`` row (round, worker ``w``'s statistics) a RESULT or REPORT header carries."""
    return WorkerRow(round=head.round, worker=w, busy=head.busy, injected=head.injected,
                     tasks_done=head.tasks_done, failed=head.failed, overrun=head.overrun)


def vector(buf: np.ndarray, count: int) -> np.ndarray:
    """Return the vector of a result message of ``count`` slots: a view into ``buf``, not a copy."""
    return buf[RESULT_HEADER:count]


def idle_sleep(world_size: int, cores: int | None = None) -> float:
    """Longest sleep of an idle worker (waiting for START or STOP); its sleeps double up to this.

    The ranks sharing a host, each waking every ``idle_sleep`` seconds, spend
    at most ``IDLE_BUDGET`` of the host's cores on wake-ups; never below
    ``POLL_SLEEP``. The ranks per host come from the launcher (MPICH's
    ``MPI_LOCALNRANKS``, Open MPI's ``OMPI_COMM_WORLD_LOCAL_SIZE``), else
    ``world_size`` is assumed. 9 ranks on 2 cores: 0.56 ms; 33: 2.1 ms.
    """
    local = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
    ranks = int(local) if local and local.isdigit() else world_size
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(POLL_SLEEP, ranks * WAKE_COST / (IDLE_BUDGET * cores))


def sleep_until(deadline: float, clock, should_stop) -> bool:
    """Sleep in slices until ``clock() >= deadline``; return True if ``should_stop()`` fired first.

    ``should_stop`` is called before every slice and once more when the
    deadline is reached, also when it has already passed on entry: a worker
    with no time left to sleep (real compute, or an emulated chunk that
    overran) still notices a stop before it starts its next chunk. That last
    call is the only cost over a plain sleep: one ``Iprobe`` per chunk.
    """
    while True:
        if should_stop():
            return True
        left = deadline - clock()
        if left <= 0:
            return False
        time.sleep(min(left, SLEEP_SLICE))
