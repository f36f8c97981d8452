"""Rank 0: start rounds, gather coded results, decode the moment the scheme can.

One receive is posted per worker at all times, each into a buffer from that
worker's own pool, and the event loop polls them with ``Testsome`` plus a
short sleep (``Waitany`` would spin a core that sleeping workers need).
Every result carries its round: a late one is drained, recorded as stale in
``events`` and never decoded. Final blocks of the decode are applied as
their messages arrive, so the critical path after the last useful message
is one small solve and a few vector updates.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from mpi4py import MPI

from mpigc.codes import Scheme
from mpigc.engine import UNDECODABLE, RoundPolicy, packed_part_length, relative_error, status_of, unpack
from mpigc.mpi.mailbox import Inbox, Outbox
from mpigc.mpi.protocol import POLL_SLEEP, RESULT_HEADER, TAG_CONTROL, Kind, control


@dataclass
class RoundRows:
    """Rows of one round for the results tables."""

    rounds: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    workers: list[tuple] = field(default_factory=list)


class Master:
    """The decoding loop of one scheme entry on ``comm`` (rank 0)."""

    def __init__(self, comm: MPI.Comm, scheme: Scheme, policy: RoundPolicy, workload, verify: bool) -> None:
        self.comm = comm
        self.scheme = scheme
        self.policy = policy
        self.workload = workload
        self.verify = verify
        self.m = scheme.plan.workers
        self.parts = scheme.plan.parts
        self.dim = workload.dim
        self.part_len = packed_part_length(self.dim, self.parts)  # the loss travels with the gradient
        self.model = workload.initial_model()
        self.inbox = Inbox(comm, self.m, RESULT_HEADER + self.part_len)
        self.outbox = Outbox(comm)
        self.scratch = np.empty(self.part_len)  # one weighted vector, for decoding without temporaries
        self.rows = RoundRows()

    def prepare(self) -> None:
        """With verification, build every chunk before the clock starts."""
        if self.verify:
            self.workload.full_gradient(self.model)

    def _broadcast(self, kind: Kind, rnd: int, payload: np.ndarray | None = None) -> None:
        buf = control(kind, rnd, payload)  # one buffer, read by every send
        for w in range(self.m):
            self.outbox.send(buf, w + 1, TAG_CONTROL)

    # -- rounds ------------------------------------------------------------
    def round(self, rnd: int) -> RoundRows:
        """Run round ``rnd`` to its decode; return its rows (and stale traffic seen meanwhile)."""
        self.rows = RoundRows()
        clock = MPI.Wtime
        start = clock()
        self._broadcast(Kind.START, rnd, self.model)
        decoder = self.scheme.decoder()
        acc = np.zeros((self.parts, self.part_len))
        vectors: dict[tuple[int, int], np.ndarray] = {}
        applied: set[tuple[int, int]] = set()
        arrivals: dict[tuple[int, int], float] = {}
        cutoff = start + self.policy.cutoff
        while not decoder.exact:
            got = self.inbox.poll()
            if not got:
                if clock() >= cutoff:
                    break
                time.sleep(POLL_SLEEP)
                continue
            now = clock() - start
            for w, buf, count in got:
                if int(buf[0]) != Kind.RESULT or int(buf[1]) != rnd:
                    self._other(w, buf, count, now)
                    continue
                key = (w, int(buf[2]))
                vectors[key] = buf[RESULT_HEADER:count]
                arrivals[key] = now
                for block in decoder.add(*key):
                    self._accumulate(acc, block.weights, block.keys, vectors)
                    applied.update(block.keys)
            if clock() >= cutoff:  # a steady stream of messages must not hold the round past its cutoff
                break
        comb = decoder.combination()
        answers = self._second_phase(rnd, decoder.instructions(), vectors, start) if self.scheme.two_phase else 0
        for j, key in enumerate(comb.keys):
            if key not in applied:
                self._accumulate(acc, comb.weights[:, j:j + 1], (key,), vectors)
        grad, decoded_loss = unpack(acc.reshape(-1), self.dim, self.parts)
        latency = clock() - start
        self._broadcast(Kind.STOP, rnd)
        status = status_of(comb)
        grad_error, loss = self._check_and_update(grad, decoded_loss, status)
        heard = {}
        for w, p in arrivals:
            heard[w] = max(heard.get(w, 0), p + 1)
        self.rows.rounds.append((rnd, latency, status, len(arrivals) + answers, sum(heard.values()), comb.coef_error,
                                 grad_error, loss, 0, comb.level, comb.cond))
        used = comb.used
        for (w, p), t in sorted(arrivals.items(), key=lambda kv: kv[1]):
            chunk = int(self.scheme.plan.orders[w][p]) if len(self.scheme.sends_after(w)) > 1 else -1
            self.rows.events.append((rnd, -1, w, p, chunk, t, 8 * (RESULT_HEADER + self.part_len), False,
                                     (w, p) in used))
        for key, vec in vectors.items():
            self.inbox.release(key[0], vec)
        return self.rows

    def _second_phase(self, rnd: int, instructions: dict, vectors: dict, start: float) -> int:
        """Request transport: send every worker its (chunk, weights), gather one answer each; return their number."""
        for w, rows in instructions.items():
            payload = np.concatenate([np.concatenate([[chunk], weights]) for chunk, weights in rows])
            self.outbox.send(control(Kind.INSTRUCT, rnd, payload), w + 1, TAG_CONTROL)
        waiting = set(instructions)
        while waiting:
            got = self.inbox.poll()
            if not got:
                time.sleep(POLL_SLEEP)
            for w, buf, count in got:
                if int(buf[0]) == Kind.ANSWER and int(buf[1]) == rnd:
                    vectors[(w, -1)] = buf[RESULT_HEADER:count]
                    waiting.discard(w)
                    self.rows.events.append((rnd, -1, w, -1, -1, MPI.Wtime() - start, 8 * count, False, True))
                else:
                    self._other(w, buf, count, MPI.Wtime() - start)
        return len(instructions)

    def _accumulate(self, acc: np.ndarray, weights: np.ndarray, keys, vectors: dict) -> None:
        """``acc += weights @ [vectors[k] for k in keys]`` in place, one vector at a time.

        With d = 270 000 the stacked form allocated and copied 2 MB several
        times per message on rank 0's critical path.
        """
        tmp = self.scratch
        for j, key in enumerate(keys):
            vec = vectors[key]
            for r in range(acc.shape[0]):
                if weights[r, j] != 0.0:
                    np.multiply(vec, weights[r, j], out=tmp)
                    acc[r] += tmp

    def _other(self, w: int, buf: np.ndarray, count: int, now: float) -> None:
        """A stale result or a worker's round report: record it, never decode it."""
        kind, rnd = int(buf[0]), int(buf[1])
        if kind == Kind.RESULT:
            p, chunk = int(buf[2]), int(buf[3])
            self.rows.events.append((rnd, -1, w, p, chunk, now, 8 * count, True, False))
        elif kind == Kind.REPORT:
            busy, injected, done, failed, overrun = buf[4:RESULT_HEADER]
            self.rows.workers.append((rnd, w, busy, injected, int(done), bool(failed), overrun))
        self.inbox.release(w, buf)

    def _check_and_update(self, grad: np.ndarray, decoded_loss: float, status: int) -> tuple[float, float]:
        loss = decoded_loss if status == 0 else float("nan")
        grad_error = float("nan")
        if self.verify:
            truth, loss = self.workload.full_gradient(self.model)
            grad_error = relative_error(grad, truth)
        if status != UNDECODABLE:
            self.model = self.workload.update(self.model, grad)
        return grad_error, loss

    def finish(self, drain: Callable[[RoundRows], None]) -> None:
        """End the run: tell workers, drain every late result and report until each worker's FINAL."""
        self._broadcast(Kind.END, -1)
        self.rows = RoundRows()
        self.inbox.drain(lambda w, buf, count: self._other(w, buf, count, float("nan")))
        self.outbox.wait()
        drain(self.rows)
