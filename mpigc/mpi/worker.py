"""The worker loop (ranks 1..M): compute chunk gradients in plan order, send coded results.

One round at a time: wait for START, then for each task compute the real
chunk gradient, emulate the modelled duration by sleeping in short slices
(or add the injected delay on top of real compute), and ``Isend`` every
coded result the moment it exists, from its own buffer. Sends are never
cancelled: rank 0 drains them.

Stopping: the worker checks for a control message (one ``Iprobe``) before
each chunk, between blocks of a chunk's gradient and between sleep slices.
A STOP for the round ends its work, so no chunk of a round is started once
that round's STOP has reached the worker. An INSTRUCT (request transport)
is answered at once from the chunks computed so far (rank 0 only instructs
chunks whose progress notes it heard, which were computed before they were
sent) and also ends the work: the decode is fixed. The blocks are sized in
:meth:`Worker.prepare` from a timed gradient, to about ``BLOCK_TIME`` each.
"""
from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI

from mpigc.codes import Scheme
from mpigc.core.gradients import chunk_gradient_into
from mpigc.core.payload import CONTROL_HEADER, RESULT_HEADER, gradient_view, pack_into, packed_part_length, write_loss
from mpigc.delays import DelayModel
from mpigc.mpi.mailbox import ControlInbox, Outbox, serve_rounds
from mpigc.mpi.protocol import BLOCK_TIME, POLL_SLEEP, TAG_RESULT, Kind, result, sleep_until, write_header

#: fewest rows per gradient block: each block also allocates and adds one d-vector, about
#: the work of one row for the linear models (measured at d = 100 000: 1-row blocks took
#: 6x the unblocked time, 4-row blocks 1.2x), so blocks of 8 rows cost at most about 1/8 more
MIN_BLOCK_ROWS = 8


def rows_per_block(seconds_per_row: float, target: float = BLOCK_TIME, least: int = MIN_BLOCK_ROWS) -> int | None:
    """Rows of a gradient block that takes about ``target`` seconds; None if unknown (no blocking).

    Parameters
    ----------
    seconds_per_row
        Measured wall time of a chunk gradient divided by its rows.
    target
        Wall time wanted per block: the longest a stop check waits mid-chunk.
    least
        Floor on the rows of a block, so the per-block cost stays small
        against the block's own work (stop checks then come less often
        than ``target`` when rows are very slow).
    """
    if not np.isfinite(seconds_per_row) or seconds_per_row <= 0:
        return None
    return max(int(least), int(target / seconds_per_row))


class Worker:
    """Worker ``w`` = rank w + 1 of ``comm``."""

    def __init__(self, comm: MPI.Comm, scheme: Scheme, delays: DelayModel, workload, compute: str) -> None:
        self.comm = comm
        self.scheme = scheme
        self.delays = delays
        self.workload = workload
        self.compute = compute
        self.w = comm.rank - 1
        self.order = scheme.plan.orders[self.w]
        self.sends = set(int(p) for p in scheme.sends_after(self.w))
        self.outbox = Outbox(comm)
        self.dtype = workload.dtype
        # START carries the model (d values); INSTRUCT up to (chunk, l weights) per held chunk,
        # which is longer than d for tiny models
        instructions = len(self.order) * (1 + scheme.plan.parts)
        self.control = ControlInbox(comm, CONTROL_HEADER + max(workload.dim, instructions), self.outbox, self.dtype)
        self.vector_len = scheme.plan.parts * packed_part_length(workload.dim, scheme.plan.parts)
        self.message_len = RESULT_HEADER + packed_part_length(workload.dim, scheme.plan.parts)
        self.packed: dict[int, np.ndarray] = {}  # per held chunk, its packed gradient: reused every round
        self.spare: np.ndarray | None = None  # l > 1: the gradient before it is laid out in parts
        self.chunk_seconds = float("nan")  # median wall time of one chunk's gradient, measured by prepare
        self.idle_sleep = self.control.idle_sleep  # longest sleep while waiting for START or STOP
        self.grads: dict[int, np.ndarray] = {}  # this round's chunk gradients (kept for answers)
        self.block_rows: int | None = None  # rows per gradient block between stop checks (set by prepare)
        self.ended = False  # this round's STOP (or a later control message) has been read
        self.answered = False  # this round's INSTRUCT has been answered

    # -- messages ----------------------------------------------------------
    def _poll(self, rnd: int) -> None:
        """Read at most one pending control message while round ``rnd`` is open.

        INSTRUCT for ``rnd`` is answered at once, from the chunk gradients
        computed so far; STOP for ``rnd`` ends the round; any other message
        (START or END: rank 0 has moved on) also ends it and is stashed for
        the main loop.
        """
        if self.ended:
            return
        msg = self.control.receive(block=False)
        if msg is None:
            return
        kind, msg_round = int(msg[0]), int(msg[1])
        if kind == Kind.INSTRUCT and msg_round == rnd:
            self._answer(rnd, msg[CONTROL_HEADER:])
            self.answered = True
            return
        self.ended = True
        if not (kind == Kind.STOP and msg_round == rnd):
            self.control.put_back(msg)

    def _stopped(self, rnd: int) -> bool:
        """Whether to stop working on round ``rnd``: it ended, or this worker answered its INSTRUCT."""
        self._poll(rnd)
        return self.ended or self.answered

    def _answer(self, rnd: int, payload: np.ndarray) -> None:
        rows = payload.reshape(-1, 1 + self.scheme.plan.parts).astype(np.float64)
        orders = [(int(row[0]), row[1:]) for row in rows]
        buf = self.outbox.buffer(self.message_len, self.dtype)
        if type(self.scheme).answer is Scheme.answer:
            self.scheme.answer_into(orders, self.grads, buf[RESULT_HEADER:])
        else:  # a plug-in scheme with its own answer
            buf[RESULT_HEADER:] = self.scheme.answer(orders, self.grads)
        write_header(buf, Kind.ANSWER, rnd)
        self.outbox.send(buf, 0, TAG_RESULT, recycle=True)

    def _send(self, buf: np.ndarray) -> None:
        self.outbox.send(buf, 0, TAG_RESULT)

    def _send_result(self, scheme: Scheme, rnd: int, position: int, chunk: int) -> None:
        """Send RESULT after ``position``: the coded vector written straight into a reused message buffer."""
        if not scheme.carries_vectors:
            self._send(result(Kind.RESULT, rnd, position, chunk, dtype=self.dtype))
            return
        buf = self.outbox.buffer(self.message_len, self.dtype)
        if type(scheme).encode is Scheme.encode:
            scheme.encode_into(self.w, position, self.grads, buf[RESULT_HEADER:])
        else:  # a plug-in scheme with its own encode
            buf[RESULT_HEADER:] = scheme.encode(self.w, position, self.grads)
        write_header(buf, Kind.RESULT, rnd, position, chunk)
        self.outbox.send(buf, 0, TAG_RESULT, recycle=True)

    def _gradient(self, model: np.ndarray, chunk: int, stop) -> np.ndarray | None:
        """Chunk ``chunk``'s packed gradient and loss, computed into its reused buffer; None if stopped."""
        packed = self.packed.get(chunk)
        if packed is None:
            packed = self.packed[chunk] = np.empty(self.vector_len, self.dtype)
        parts = self.scheme.plan.parts
        into = gradient_view(packed, self.workload.dim, parts)
        if into is None:
            if self.spare is None:
                self.spare = np.empty(self.workload.dim, self.dtype)
            into = self.spare
        # a plug-in's failure is named
        loss = chunk_gradient_into(self.workload, model, chunk, into, self.block_rows, stop)
        if loss is None:
            return None
        if into is self.spare:
            pack_into(packed, into, loss, parts)
        else:
            write_loss(packed, loss, parts)  # the gradient is in place already (l = 1)
        return packed

    def prepare(self) -> None:
        """Build this worker's chunks, warm up the kernels and size the gradient blocks, before the clock starts.

        Each chunk's gradient is timed (wall clock, once its data exist) and
        the median time per row sets :attr:`block_rows` so that one block
        takes about ``BLOCK_TIME``. Wall time on purpose: the workers prepare
        concurrently, as they compute in a round, so sharing cores makes the
        blocks smaller, not the stop checks rarer. A chunk faster than one
        block is computed unblocked, exactly as :meth:`chunk_gradient` does.
        """
        model = self.workload.initial_model()
        per_row, per_chunk = [], []
        for chunk in self.scheme.held_chunks(self.w):  # a per-round plan's worker holds every chunk it may draw
            self.workload.chunk_data(int(chunk))
            tic = time.perf_counter()
            self._gradient(model, int(chunk), None)  # also faults in the chunk's reused gradient buffer
            per_chunk.append(time.perf_counter() - tic)
            per_row.append(per_chunk[-1] / self.workload.chunk_rows(int(chunk)))
        self.block_rows = rows_per_block(float(np.median(per_row))) if per_row else None
        self.chunk_seconds = float(np.median(per_chunk)) if per_chunk else 0.0
        if self.scheme.carries_vectors:
            self.outbox.warm(self.message_len, self.dtype)  # round 0's messages fault in no pages

    # -- loop --------------------------------------------------------------
    def run(self) -> None:
        """Serve rounds until END; then complete every send and answer FINAL."""
        serve_rounds(self.comm, self.control, self.outbox, self._round)

    def _round(self, rnd: int, model: np.ndarray) -> None:
        clock = MPI.Wtime
        start = clock()
        busy = injected = overrun = 0.0
        done = 0
        self.grads = {}
        self.ended = self.answered = False
        failed = bool(self.delays.failed(rnd)[self.w])
        if not failed:
            durations = self.delays.durations(rnd, len(self.order), 1.0 / self.scheme.plan.chunks)[self.w]
            done, busy, injected, overrun = self._work(rnd, model, durations, start, clock)
        # The round ends for this worker when rank 0 says so; only then report,
        # so a silent worker stays silent while the round is open. An INSTRUCT
        # arriving meanwhile is answered by _poll.
        nap = POLL_SLEEP
        self._poll(rnd)
        while not self.ended:
            self.outbox.prune()
            time.sleep(nap)
            nap = min(2 * nap, self.idle_sleep)
            self._poll(rnd)
        self._send(result(Kind.REPORT, rnd, busy=busy, injected=injected, tasks_done=done, failed=failed,
                          overrun=overrun, dtype=self.dtype))

    def _work(self, rnd: int, model: np.ndarray, durations: np.ndarray, start: float, clock) -> tuple:
        """Compute, pace and send this round's chunks until done or stopped; (done, busy, injected, overrun)."""
        grads = self.grads
        target = start
        injected = overrun = 0.0
        done = 0
        scheme = self.scheme.for_round(rnd)  # the round's plan: the scheme itself unless it changes per round
        order, sends = self.order, self.sends
        if scheme is not self.scheme:
            order, sends = scheme.plan.orders[self.w], set(int(p) for p in scheme.sends_after(self.w))

        def stop() -> bool:
            return self._stopped(rnd)

        # Before each chunk: here for the first, at the end of sleep_until for the others.
        if stop():
            return done, clock() - start, injected, overrun
        for position, chunk in enumerate(order):
            packed = self._gradient(model, int(chunk), stop)  # the loss decodes with the gradient
            if packed is None:  # stopped between blocks
                return done, clock() - start, injected, overrun
            grads[int(chunk)] = packed
            computed = clock()
            if self.compute == "real":
                target = computed + max(0.0, durations[position] - self.delays.chunk_time)
            else:
                # a chunk ends at its modelled time, or when its real compute ends if that is later
                target += durations[position]
                overrun += max(0.0, computed - target)
                target = max(target, computed)
            stopped = sleep_until(target, clock, stop)
            injected += max(0.0, clock() - computed)
            if stopped:
                return done, clock() - start, injected, overrun
            done += 1
            if position in sends:
                self._send_result(scheme, rnd, position, int(chunk))
        return done, clock() - start, injected, overrun
