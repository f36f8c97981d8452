"""Both sides of the wire: rank 0's posted receives per worker, and sends never cancelled.

:class:`Inbox` keeps one receive posted per worker at all times, each into a
buffer from that worker's own pool, and polls them with ``Testsome`` (the
caller sleeps between empty polls; ``Waitany`` would spin a core).
:class:`Outbox` (rank 0 and workers) keeps every send's buffer alive until
MPI is done with it.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np
from mpi4py import MPI

from mpigc.mpi.protocol import POLL_SLEEP, TAG_RESULT, Kind

#: buffers a worker's pool keeps beyond its posted receive: the steady state
#: needs one (handed out while the next receive is posted); buffers released
#: after a burst of held messages are freed instead, so the pools never grow
POOL_KEEP = 1


class Inbox:
    """Receives from workers 0..m−1 (ranks 1..m) into per-worker buffer pools."""

    def __init__(self, comm: MPI.Comm, workers: int, size: int) -> None:
        self.comm = comm
        self.size = size
        self.pools = [deque() for _ in range(workers)]
        self.buffers = [np.empty(size) for _ in range(workers)]
        self.requests = [self._post(w) for w in range(workers)]
        self.statuses = [MPI.Status() for _ in range(workers)]  # reused by every poll
        self.finals = 0
        self.lent = 0  # buffers handed out by poll and not yet released
        self.peak_lent = 0  # the most ever lent at once: rank 0's message memory beyond its m posted buffers

    def _post(self, w: int) -> MPI.Request:
        return self.comm.Irecv([self.buffers[w], MPI.DOUBLE], source=w + 1, tag=TAG_RESULT)

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
            buf, count = self.buffers[w], self.statuses[j].Get_count(MPI.DOUBLE)
            out.append((w, buf, count))
            if int(buf[0]) == Kind.FINAL:
                self.finals += 1
                self.requests[w] = MPI.REQUEST_NULL
                continue
            self.lent += 1
            pool = self.pools[w]
            self.buffers[w] = pool.pop() if pool else np.empty(self.size)
            self.requests[w] = self._post(w)
        self.peak_lent = max(self.peak_lent, self.lent)
        return out

    def drain(self, other: Callable[[int, np.ndarray, int], None]) -> None:
        """Poll until every worker's FINAL, handing each other message to ``other(worker, buffer, count)``.

        Large late sends complete only once received, so a run ends only after this.
        """
        while not self.all_final:
            got = self.poll()
            if not got:
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
    """Nonblocking sends whose buffers stay referenced until complete; never cancelled."""

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm
        self.pending: list[tuple[MPI.Request, np.ndarray]] = []

    def send(self, buf: np.ndarray, dest: int, tag: int) -> None:
        """``Isend`` ``buf`` to rank ``dest``; forget completed sends."""
        self.pending.append((self.comm.Isend([buf, MPI.DOUBLE], dest=dest, tag=tag), buf))
        self.prune()

    def prune(self) -> None:
        """Forget the sends MPI has completed (their buffers may be freed)."""
        self.pending = [(r, b) for r, b in self.pending if not r.Test()]

    def drain(self) -> None:
        """Complete every send without spinning a core: test, then sleep, until all are done."""
        while self.pending:
            self.prune()
            if self.pending:
                time.sleep(POLL_SLEEP)

    def wait(self) -> None:
        """Complete every send (call only once the receivers are sure to receive)."""
        MPI.Request.Waitall([r for r, _ in self.pending])
        self.pending = []
