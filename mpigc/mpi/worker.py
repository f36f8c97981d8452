"""The worker loop (ranks 1..M): compute chunk gradients in plan order, send coded results.

One round at a time: wait for START, then for each task compute the real
chunk gradient, emulate the modelled duration by sleeping in short slices
(or add the injected delay on top of real compute), and ``Isend`` every
coded result the moment it exists, from its own buffer. A STOP for the
round ends the work early. Sends are never cancelled: rank 0 drains them.
"""
from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI

from mpigc.codes import Scheme
from mpigc.delays import DelayModel
from mpigc.engine import pack
from mpigc.mpi.mailbox import Outbox
from mpigc.mpi.protocol import (CONTROL_HEADER, POLL_SLEEP, TAG_CONTROL, TAG_RESULT, Kind, idle_sleep, result,
                                sleep_until)


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
        # START carries the model (d values); INSTRUCT up to (chunk, l weights) per held chunk,
        # which is longer than d for tiny models
        instructions = len(self.order) * (1 + scheme.plan.parts)
        self.control_buf = np.empty(CONTROL_HEADER + max(workload.dim, instructions))
        self.stash: np.ndarray | None = None  # a control message read while checking for a stop
        self.idle_sleep = idle_sleep(comm.size)  # longest sleep while waiting for START or STOP
        self.grads: dict[int, np.ndarray] = {}  # this round's chunk gradients (kept for answers)

    # -- messages ----------------------------------------------------------
    def _receive_control(self, block: bool) -> np.ndarray | None:
        if self.stash is not None:
            msg, self.stash = self.stash, None
            return msg
        status = MPI.Status()
        nap = POLL_SLEEP
        while not self.comm.Iprobe(source=0, tag=TAG_CONTROL, status=status):
            if not block:
                return None
            self.outbox.prune()
            time.sleep(nap)
            nap = min(2 * nap, self.idle_sleep)
        count = status.Get_count(MPI.DOUBLE)
        # A large model arrives in pieces as rank 0 progresses its sends: a
        # blocking Recv would spin a core that rank 0 needs to send them.
        request = self.comm.Irecv([self.control_buf[:count], MPI.DOUBLE], source=0, tag=TAG_CONTROL)
        while not request.Test():
            time.sleep(POLL_SLEEP)
        return self.control_buf[:count]

    def _stopped(self, rnd: int) -> bool:
        """Whether rank 0 has ended round ``rnd`` (a later control message is stashed).

        Instructions of the request transport are answered here, from the
        chunk gradients computed so far, at the worker's next stop check.
        """
        msg = self._receive_control(block=False)
        if msg is None:
            return False
        kind, msg_round = int(msg[0]), int(msg[1])
        if kind == Kind.INSTRUCT and msg_round == rnd:
            self._answer(rnd, msg[CONTROL_HEADER:])
            return False
        if kind == Kind.STOP and msg_round == rnd:
            return True
        self.stash = msg.copy()
        return True

    def _answer(self, rnd: int, payload: np.ndarray) -> None:
        rows = payload.reshape(-1, 1 + self.scheme.plan.parts)
        orders = [(int(row[0]), row[1:]) for row in rows]
        vector = self.scheme.answer(orders, self.grads)
        self._send(result(Kind.ANSWER, rnd, vector=vector))

    def _send(self, buf: np.ndarray) -> None:
        self.outbox.send(buf, 0, TAG_RESULT)

    def prepare(self) -> None:
        """Build this worker's chunks (and warm up the kernels) before the clock starts."""
        model = self.workload.initial_model()
        for chunk in self.order:
            self.workload.chunk_gradient(model, int(chunk))

    # -- loop --------------------------------------------------------------
    def run(self) -> None:
        """Serve rounds until END; then complete every send and answer FINAL."""
        while True:
            msg = self._receive_control(block=True)
            kind, rnd = int(msg[0]), int(msg[1])
            if kind == Kind.END:
                break
            if kind == Kind.START:
                self._round(rnd, msg[CONTROL_HEADER:].copy())
        self.outbox.drain()
        self.comm.Send([result(Kind.FINAL, -1), MPI.DOUBLE], dest=0, tag=TAG_RESULT)

    def _round(self, rnd: int, model: np.ndarray) -> None:
        clock = MPI.Wtime
        start = clock()
        busy = injected = overrun = 0.0
        done = 0
        self.grads = {}
        failed = bool(self.delays.failed(rnd)[self.w])
        if not failed:
            durations = self.delays.durations(rnd, len(self.order), 1.0 / self.scheme.plan.chunks)[self.w]
            done, busy, injected, overrun = self._work(rnd, model, durations, start, clock)
        # The round ends for this worker when rank 0 says so; only then report,
        # so a silent worker stays silent while the round is open.
        nap = POLL_SLEEP
        while not self._stopped(rnd):
            self.outbox.prune()
            time.sleep(nap)
            nap = min(2 * nap, self.idle_sleep)
        self._send(result(Kind.REPORT, rnd, busy=busy, injected=injected, tasks_done=done, failed=failed,
                          overrun=overrun))

    def _work(self, rnd: int, model: np.ndarray, durations: np.ndarray, start: float, clock) -> tuple:
        grads = self.grads = {}
        target = start
        injected = overrun = 0.0
        done = 0
        for position, chunk in enumerate(self.order):
            grad, loss = self.workload.chunk_gradient(model, int(chunk))
            grads[int(chunk)] = pack(grad, loss, self.scheme.plan.parts)  # the loss decodes with the gradient
            computed = clock()
            if self.compute == "real":
                target = computed + max(0.0, durations[position] - self.delays.chunk_time)
            else:
                # a chunk ends at its modelled time, or when its real compute ends if that is later
                target += durations[position]
                overrun += max(0.0, computed - target)
                target = max(target, computed)
            stopped = sleep_until(target, clock, lambda: self._stopped(rnd))
            injected += max(0.0, clock() - computed)
            if stopped:
                return done, clock() - start, injected, overrun
            done += 1
            if position in self.sends:
                vector = self.scheme.encode(self.w, position, grads) if self.scheme.carries_vectors else None
                self._send(result(Kind.RESULT, rnd, position, int(chunk), vector=vector))
        return done, clock() - start, injected, overrun
