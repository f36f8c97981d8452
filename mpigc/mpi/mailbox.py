"""Both sides of the wire: rank 0's posted receives per worker, and sends never cancelled.

:class:`Inbox` keeps one receive posted per worker at all times, each into a
buffer from that worker's own pool, and polls them with ``Testsome`` (the
caller sleeps between empty polls; ``Waitany`` would spin a core). It also
records the latest round each worker has been heard from: its acknowledgement.
:class:`Outbox` (workers) keeps every send's buffer alive until MPI is done
with it. :class:`Courier` is rank 0's control traffic, bounded per worker by
what the worker acknowledged, so a worker that stops responding (SIGSTOP, a
swapped-out node) never fills the MPI library's send queues and stalls the
others.
"""
from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from mpigc.core.payload import CONTROL_HEADER
from mpigc.mpi.protocol import POLL_SLEEP, TAG_CONTROL, TAG_RESULT, Kind, control, idle_sleep, mpi_type, result

#: rounds a worker may have been started on without acknowledging them (any message
#: carrying round r acknowledges rounds up to r). A healthy worker acknowledges round r
#: (its REPORT, sent on reading STOP(r)) within one round of it, so 3 leaves two whole
#: rounds of slack on an oversubscribed host; a silent worker then holds at most 3
#: STARTs and 3 STOPs (plus an INSTRUCT) of rank 0's send slots: MPICH's shared-memory
#: queue has 64 cells, which 32 rounds of START+STOP to one stopped rank used to fill
MAX_UNACKED = 3

#: buffers a worker's pool keeps beyond its posted receive: the steady state
#: needs one (handed out while the next receive is posted); buffers released
#: after a burst of held messages are freed instead, so the pools never grow
POOL_KEEP = 1


class Inbox:
    """Receives from workers 0..m−1 (ranks 1..m) into per-worker buffer pools."""

    def __init__(self, comm: MPI.Comm, workers: int, size: int, dtype: np.dtype = np.float64) -> None:
        self.comm = comm
        self.size = size
        self.dtype = np.dtype(dtype)
        self.type = mpi_type(self.dtype)
        self.pools = [deque() for _ in range(workers)]
        self.buffers = [self._touched() for _ in range(workers)]  # before the receives are posted on them
        self.requests = [self._post(w) for w in range(workers)]
        self.statuses = [MPI.Status() for _ in range(workers)]  # reused by every poll
        self.finals = 0
        self.heard = [-1] * workers  # latest round each worker sent a message about: its acknowledgement
        self.lent = 0  # buffers handed out by poll and not yet released
        self.peak_lent = 0  # the most ever lent at once: rank 0's message memory beyond its m posted buffers

    def _touched(self) -> np.ndarray:
        """Return a new buffer whose pages exist: the first message into it pays no page faults (80 MB at d = 10^7)."""
        buf = np.empty(self.size, self.dtype)
        buf.fill(0)
        return buf

    def warm(self) -> None:
        """Put one touched buffer in every worker's pool (off the clock): round 0 then allocates nothing."""
        for pool in self.pools:
            if len(pool) < POOL_KEEP:
                pool.append(self._touched())

    def _post(self, w: int) -> MPI.Request:
        return self.comm.Irecv([self.buffers[w], self.type], source=w + 1, tag=TAG_RESULT)

    @property
    def all_final(self) -> bool:
        """Whether every worker has sent its last message."""
        return self.finals == len(self.requests)

    def poll(self) -> list[tuple[int, np.ndarray, int]]:
        """Completed receives as (worker, buffer, element count); their receives are re-posted.

        The caller owns each returned buffer until it hands it back with :meth:`release`.
        """
        done = MPI.Request.Testsome(self.requests, self.statuses)
        out = []
        for j, w in enumerate(done or ()):
            # MPI fills statuses in completion order, not by request index
            buf, count = self.buffers[w], self.statuses[j].Get_count(self.type)
            out.append((w, buf, count))
            self.heard[w] = max(self.heard[w], int(buf[1]))  # FINAL carries -1: no change
            if int(buf[0]) == Kind.FINAL:
                self.finals += 1
                self.requests[w] = MPI.REQUEST_NULL
                continue
            self.lent += 1
            pool = self.pools[w]
            self.buffers[w] = pool.pop() if pool else np.empty(self.size, self.dtype)
            self.requests[w] = self._post(w)
        self.peak_lent = max(self.peak_lent, self.lent)
        return out

    def drain(self, other: Callable[[int, np.ndarray, int], None], patience: float = 10.0) -> None:
        """Poll until every worker's FINAL, handing each other message to ``other(worker, buffer, count)``.

        Large late sends complete only once received, so a run ends only after
        this. A worker that never answers (stopped for good) holds the job here
        until it resumes or the launcher's time limit (MPI cannot end a job
        one of whose ranks never finalizes): after ``patience`` seconds the
        silent workers are named on stderr, once.
        """
        told = False
        since = time.perf_counter()
        while not self.all_final:
            got = self.poll()
            if not got:
                if not told and time.perf_counter() - since > patience:
                    told = True
                    silent = ", ".join(f"{w} (rank {w + 1}, last heard in round {self.heard[w]})"
                                       for w, r in enumerate(self.requests) if r != MPI.REQUEST_NULL)
                    print(f"mpigc: the run's end waits for worker(s) {silent}: a stopped rank holds the job "
                          "until it resumes", file=sys.stderr, flush=True)
                time.sleep(POLL_SLEEP)
            for w, buf, count in got:
                if int(buf[0]) != Kind.FINAL:
                    other(w, buf, count)

    def release(self, w: int, buf: np.ndarray) -> None:
        """Give a buffer (or a view of one) back to worker ``w``'s pool, or free it if the pool is full."""
        self.lent -= 1
        pool = self.pools[w]
        if len(pool) < POOL_KEEP:
            pool.append(buf if buf.base is None else buf.base)

    @property
    def pooled(self) -> int:
        """Buffers waiting in the pools (posted receives not counted)."""
        return sum(len(pool) for pool in self.pools)


class Outbox:
    """Nonblocking sends whose buffers stay referenced until complete; never cancelled.

    A buffer taken from :meth:`buffer` goes back to a small free list once
    its send completes, so a worker sending a d-vector every round reuses
    the same memory instead of faulting in a fresh one (80 MB at d = 10^7).
    """

    #: completed message buffers kept for reuse: a worker has at most a few sends in flight
    KEEP = 2

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm
        self.pending: list[tuple[MPI.Request, np.ndarray, bool]] = []
        self.free: list[np.ndarray] = []

    def warm(self, size: int, dtype: np.dtype) -> None:
        """Fill the free list with touched buffers of ``size`` elements (off the clock)."""
        while len(self.free) < self.KEEP:
            buf = np.empty(size, dtype)
            buf.fill(0)
            self.free.append(buf)

    def buffer(self, size: int, dtype: np.dtype) -> np.ndarray:
        """Return a message buffer of ``size`` elements to fill and :meth:`send` with ``recycle=True``."""
        for i, buf in enumerate(self.free):
            if buf.size == size and buf.dtype == dtype:
                return self.free.pop(i)
        return np.empty(size, dtype)

    def send(self, buf: np.ndarray, dest: int, tag: int, recycle: bool = False) -> None:
        """``Isend`` ``buf`` to rank ``dest``; forget completed sends. ``recycle``: ``buf`` came from :meth:`buffer`."""
        self.pending.append((self.comm.Isend([buf, mpi_type(buf.dtype)], dest=dest, tag=tag), buf, recycle))
        self.prune()

    def prune(self) -> None:
        """Forget the sends MPI has completed (their buffers may be freed or reused)."""
        still = []
        for request, buf, recycle in self.pending:
            if not request.Test():
                still.append((request, buf, recycle))
            elif recycle and len(self.free) < self.KEEP:
                self.free.append(buf)
        self.pending = still

    def drain(self) -> None:
        """Complete every send without spinning a core: test, then sleep, until all are done."""
        while self.pending:
            self.prune()
            if self.pending:
                time.sleep(POLL_SLEEP)

    def wait(self) -> None:
        """Complete every send (call only once the receivers are sure to receive)."""
        MPI.Request.Waitall([r for r, _, _ in self.pending])
        self.pending = []


class Courier:
    """Rank 0's control messages to workers 0..m−1 (ranks 1..m), at most a few in flight per worker.

    A worker acknowledges round r by any message carrying r (``acked``, the
    :attr:`Inbox.heard` list, shared). START(r) goes to worker ``w`` only
    while ``w`` has at most ``lag − 1`` started rounds unacknowledged and its
    previous START has completed (a START of ≥ 64 KiB is a rendezvous send:
    it completes only once the worker posts the receive); otherwise it is
    deferred, replacing any deferred START of an earlier round, and
    :meth:`retry` sends it the moment the worker catches up, so a worker that
    wakes from a long stop reads at most ``lag`` old rounds and joins the
    current one. STOP(r) goes only to a worker started on round r. No send
    is ever cancelled: a frozen worker's pending sends stay here, never
    waited on, until it resumes.

    Parameters
    ----------
    comm
        The run's communicator; rank w + 1 is worker w.
    acked
        Per worker, the latest round it was heard from (updated by the caller).
    lag
        Started rounds a worker may leave unacknowledged before it gets no more.
    """

    def __init__(self, comm: MPI.Comm, acked: list[int], lag: int = MAX_UNACKED, dtype: np.dtype = np.float64) -> None:
        self.comm = comm
        self.acked = acked
        self.lag = lag
        self.dtype = np.dtype(dtype)  # of every control message: the workers receive into buffers of it
        m = len(acked)
        self.pending: list[list[tuple[MPI.Request, np.ndarray]]] = [[] for _ in range(m)]
        self.started = [-1] * m  # the last round each worker was sent START of
        self.start_requests = [MPI.REQUEST_NULL] * m
        self.deferred: dict[int, tuple[int, np.ndarray]] = {}  # worker -> (round, START) not yet sent
        self.skipped = 0  # STARTs never sent (the worker caught up only after its round closed)
        self.sent = [0] * m  # control messages sent to each worker
        self.peak_pending = 0  # the most control sends ever incomplete to one worker

    def _isend(self, w: int, buf: np.ndarray) -> MPI.Request:
        box = self.pending[w]
        box[:] = [(r, b) for r, b in box if not r.Test()]
        request = self.comm.Isend([buf, mpi_type(buf.dtype)], dest=w + 1, tag=TAG_CONTROL)
        box.append((request, buf))
        self.sent[w] += 1
        self.peak_pending = max(self.peak_pending, len(box))
        return request

    def ready(self, w: int) -> bool:
        """Whether worker ``w`` may be sent a START now: few rounds unacknowledged, previous START complete."""
        if self.started[w] - self.acked[w] >= self.lag:
            return False
        if self.start_requests[w] != MPI.REQUEST_NULL and not self.start_requests[w].Test():
            return False
        self.start_requests[w] = MPI.REQUEST_NULL
        return True

    def start(self, w: int, rnd: int, buf: np.ndarray) -> bool:
        """Send START(rnd) ``buf`` to worker ``w`` now if it is :meth:`ready`, else defer it; True if sent.

        Idempotent: a START of ``rnd`` already sent (directly or by :meth:`retry`) is not sent again.
        """
        if self.started[w] == rnd:
            return True
        if not self.ready(w):
            if w in self.deferred:
                self.skipped += 1
            self.deferred[w] = (rnd, buf)
            return False
        self.deferred.pop(w, None)
        self.start_requests[w] = self._isend(w, buf)
        self.started[w] = rnd
        return True

    def retry(self) -> list[int]:
        """Send the deferred STARTs whose workers caught up; return those workers (cheap when none wait)."""
        if not self.deferred:
            return []
        sent = [w for w in list(self.deferred) if self.ready(w)]
        for w in sent:
            rnd, buf = self.deferred.pop(w)
            self.start_requests[w] = self._isend(w, buf)
            self.started[w] = rnd
        return sent

    def stop(self, w: int, rnd: int) -> None:
        """STOP(rnd) to worker ``w`` if it was started on ``rnd``; a deferred START of ``rnd`` is dropped."""
        if self.started[w] == rnd:
            self._isend(w, control(Kind.STOP, rnd, dtype=self.dtype))
        elif self.deferred.get(w, (None,))[0] == rnd:
            del self.deferred[w]
            self.skipped += 1

    def send(self, w: int, buf: np.ndarray) -> None:
        """Any other control message (INSTRUCT to a worker heard this round, END)."""
        self._isend(w, buf)

    def holds(self, buf: np.ndarray) -> bool:
        """Whether ``buf`` is still read by an incomplete send or waits in a deferred START (do not modify it)."""
        if any(b is buf for _, b in self.deferred.values()):
            return True
        return any(b is buf and not r.Test() for box in self.pending for r, b in box)

    def wait(self) -> None:
        """Complete every send (call only once every worker has sent FINAL: all were received)."""
        MPI.Request.Waitall([r for box in self.pending for r, _ in box])
        for box in self.pending:
            box.clear()


class ControlInbox:
    """A worker's side of rank 0's control messages: probe, receive without spinning, put one back.

    Two receive buffers: a START's payload (the model, d values) is handed
    to the round without a copy and stays valid until the next START has
    been read, because every message goes into the buffer that does not
    hold the latest START.

    Parameters
    ----------
    comm
        The run's communicator (rank 0 is the master).
    length
        Longest control message in elements (header included).
    outbox
        The worker's sends, pruned while it waits so their buffers can go.
    dtype
        The messages' element type (``workload.dtype``).
    """

    def __init__(self, comm: MPI.Comm, length: int, outbox: Outbox, dtype: np.dtype = np.float64) -> None:
        self.comm = comm
        self.bufs = (np.empty(length, dtype), np.empty(length, dtype))
        self.next = 0  # the buffer the next message goes into: never the one holding the latest START
        self.type = mpi_type(dtype)
        self.outbox = outbox
        self.stash: np.ndarray | None = None  # a message read while checking for a round's end
        self.idle_sleep = idle_sleep(comm.size)  # longest sleep while waiting for a message

    def waiting(self, status: MPI.Status | None = None) -> bool:
        """Whether a control message has reached this rank.

        Probed twice: MPICH's ``Iprobe`` that finds nothing runs the progress
        engine and returns without matching again, so a message that came in
        during a sleep shows only at the second call (measured: one more
        unit of a stopped round was started with a single probe).
        """
        return bool(self.comm.Iprobe(source=0, tag=TAG_CONTROL, status=status)
                    or self.comm.Iprobe(source=0, tag=TAG_CONTROL, status=status))

    def receive(self, block: bool) -> np.ndarray | None:
        """Return the next control message (a view of a receive buffer), or None if none waits and not ``block``.

        A START's view stays valid until the following START is received;
        any other message's only until the next message.
        """
        if self.stash is not None:
            msg, self.stash = self.stash, None
            return msg
        status = MPI.Status()
        nap = POLL_SLEEP
        while not self.waiting(status):
            if not block:
                return None
            self.outbox.prune()
            time.sleep(nap)
            nap = min(2 * nap, self.idle_sleep)
        count = status.Get_count(self.type)
        msg = self.bufs[self.next][:count]
        # A large model arrives in pieces as rank 0 progresses its sends: a
        # blocking Recv would spin a core that rank 0 needs to send them.
        request = self.comm.Irecv([msg, self.type], source=0, tag=TAG_CONTROL)
        while not request.Test():
            time.sleep(POLL_SLEEP)
        if int(msg[0]) == Kind.START:
            self.next = 1 - self.next
        return msg

    def put_back(self, msg: np.ndarray) -> None:
        """Keep ``msg`` (a START or END read early) for the next :meth:`receive`; no copy is needed."""
        self.stash = msg


def serve_rounds(comm: MPI.Comm, control: ControlInbox, outbox: Outbox,
                 start_round: Callable[[int, np.ndarray], None]) -> None:
    """Serve rounds until END, then complete every send and answer FINAL (every worker loop).

    ``start_round(rnd, payload)`` runs one round from its START; a STOP for a
    round the worker already finished needs nothing.
    """
    while True:
        msg = control.receive(block=True)
        kind, rnd = int(msg[0]), int(msg[1])
        if kind == Kind.END:
            break
        if kind == Kind.START:
            # no copy: checks for the round's end receive into the other buffer (ControlInbox)
            start_round(rnd, msg[CONTROL_HEADER:])
    outbox.drain()
    final = result(Kind.FINAL, -1, dtype=control.bufs[0].dtype)
    comm.Send([final, mpi_type(final.dtype)], dest=0, tag=TAG_RESULT)
