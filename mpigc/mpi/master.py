"""Rank 0: start rounds, gather coded results, decode the moment the scheme can.

One receive is posted per worker at all times, each into a buffer from that
worker's own pool, and the event loop polls them with ``Testsome`` plus a
short sleep (``Waitany`` would spin a core that sleeping workers need).

A round is the simulator's (see :mod:`mpigc.core.policy`): its clock starts just
before the first START is sent, and the master listens until the exact
decode or the round's cutoff. Every result carries its round; one of an
earlier round, or one heard after the cutoff, is drained and recorded as
stale in ``events``: it never enters a decode and never counts in
``messages`` or ``chunks_done``. The request transport's second phase stops
waiting at :meth:`RoundPolicy.answers_due`; missing answers leave a
least-squares decode of the answers that came.

Memory grows with m, not with the load: final blocks of the decode are
applied to an accumulator as their messages arrive and each vector goes back
to its worker's pool once applied; a message the decoder will never weigh
(``Decoder.needs``) is released at once, as is anything after the exact
decode. Only vectors a final least-squares combination may still weigh stay
held (crc, poly, frc and rescaled uncoded: one message per worker; partial at
l > 1: fewer than l per chunk; nested: each worker's stages).

Control traffic is bounded per worker (:class:`~mpigc.mpi.mailbox.Courier`):
a worker that has left ``MAX_UNACKED`` started rounds unanswered, or has not
yet received its previous START, gets no new START; its START waits (the
latest round's only) and goes out the moment it catches up, mid-round if
need be. STOP goes only to workers started on the round. A stopped worker
(SIGSTOP, swapped out) thus holds a few of rank 0's send slots, not one per
round, and the others keep decoding within the scheme's tolerance; when it
resumes it reads at most a few old rounds and joins the current one. It has
no ``workers`` row for the rounds it was not started on.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from mpigc.codes import Combination, Scheme
from mpigc.codes.base import Decoder, MessageKey
from mpigc.codes.inplace import add_scaled, scratch_for, step_into
from mpigc.codes.partial import answered_combination
from mpigc.core.evaluation import NO_EVAL
from mpigc.core.gradients import full_gradient
from mpigc.core.metrics import relative_error
from mpigc.core.payload import CONTROL_HEADER, RESULT_HEADER, packed_part_length, unpack
from mpigc.core.policy import (
    NONFINITE,
    UNDECODABLE,
    LastMessages,
    RoundPolicy,
    Soundness,
    finite,
    last_sends,
    status_of,
)
from mpigc.core.tables import RoundTables
from mpigc.mpi.mailbox import Courier, Inbox
from mpigc.mpi.protocol import POLL_SLEEP, Kind, control, header, worker_row
from mpigc.results import EventRow, RoundRow
from mpigc.workloads import Objective


class Master:
    """The decoding loop of one scheme entry on ``comm`` (rank 0)."""

    def __init__(self, comm: MPI.Comm, scheme: Scheme, policy: RoundPolicy, workload, verify: bool) -> None:
        self.comm = comm
        self.scheme = scheme
        self.policy = policy
        self.workload = workload
        self.verify = verify
        self.soundness = Soundness(getattr(workload, "dtype", np.float64))  # what "exact" may mean numerically
        self.m = scheme.plan.workers
        self.parts = scheme.plan.parts
        self.dim = workload.dim
        self.part_len = packed_part_length(self.dim, self.parts)  # the loss travels with the gradient
        self.dtype = np.dtype(workload.dtype)
        self.inbox = Inbox(comm, self.m, RESULT_HEADER + self.part_len, self.dtype)
        self.courier = Courier(comm, self.inbox.heard, dtype=self.dtype)  # control sends, a few in flight per worker
        # The model lives in the payload of a START buffer: the update writes the next model into
        # another one (no copy into a fresh START), and a buffer is reused once no send reads it.
        self.starts = [np.empty(CONTROL_HEADER + self.dim, self.dtype)]
        self.start_buf = self.starts[0]
        self.start_buf[CONTROL_HEADER:] = workload.initial_model()
        self.acc = np.zeros((self.parts, self.part_len), self.dtype)  # the decoded gradient, built in place
        self.scratch = scratch_for(self.acc)  # one block of a weighted vector: decoding without d-sized temporaries
        self.held: dict[MessageKey, np.ndarray] = {}  # vectors the decode may still weigh
        self.applied: set[MessageKey] = set()  # messages already in ``acc``
        self.peak_held = 0  # the most vectors ever kept between messages (tests and benchmarks read it)
        self.evaluator = None  # mpigc.core.evaluation.Evaluator with run.eval_every (set by the launcher)
        self.rows = RoundTables()
        self.last_sends = last_sends(scheme)  # code.wait_for counts workers whose last message came

    @property
    def model(self) -> np.ndarray:
        """The current model θ: the payload of the next START."""
        return self.start_buf[CONTROL_HEADER:]

    def _free_start(self) -> np.ndarray:
        """Return a START buffer no send reads, other than the current model's (allocated if none)."""
        for buf in self.starts:
            if buf is not self.start_buf and not self.courier.holds(buf):
                return buf
        self.starts.append(np.empty_like(self.start_buf))  # a worker far behind still reads the others
        return self.starts[-1]

    def prepare(self) -> None:
        """Build what rank 0 needs before the clock starts: every chunk with verification, the buffers' pages."""
        if self.verify:
            full_gradient(self.workload, self.model)  # a plug-in's failure named
        self.acc.fill(0.0)
        self.scratch.fill(0.0)
        self._free_start().fill(0.0)
        self.inbox.warm()

    def _poll(self) -> list[tuple[int, np.ndarray, int]]:
        """Completed receives; a START deferred for a worker that has now caught up goes out."""
        got = self.inbox.poll()
        self.courier.retry()
        return got

    # -- rounds ------------------------------------------------------------
    def round(self, rnd: int) -> RoundTables:
        """Run round ``rnd`` to its decode; return its rows (and stale traffic seen meanwhile)."""
        self.rows = RoundTables()
        if self.courier.holds(self.start_buf):  # an undecodable round kept the model while a START is in flight
            spare = self._free_start()
            spare[:] = self.start_buf
            self.start_buf = spare
        start_buf = self.start_buf  # header written off the clock, as the simulator's t = 0
        start_buf[:CONTROL_HEADER] = (Kind.START, rnd, 0)
        scheme = self.scheme.for_round(rnd)  # the round's plan (off the clock): the scheme itself unless it changes
        start = MPI.Wtime()
        for w in range(self.m):  # one buffer, read by every send (a worker that is behind gets it later)
            self.courier.start(w, rnd, start_buf)
        decoder = scheme.decoder()
        self.acc.fill(0.0)
        self.applied = set()
        arrivals = self._gather(rnd, start, decoder)
        comb = decoder.combination()
        answers: dict[int, float] = {}
        if self.scheme.two_phase:
            comb, answers = self._second_phase(rnd, decoder, comb, start)
        self._complete(comb)
        grad, decoded_loss = unpack(self.acc.reshape(-1), self.dim, self.parts)
        latency = MPI.Wtime() - start
        for w in range(self.m):
            self.courier.stop(w, rnd)
        status, grad_error, loss = self._check_and_update(rnd, grad, decoded_loss, comb)
        # after the latency, the STOPs and the update: the held-out evaluation is on no round's clock
        eval_loss, eval_accuracy = self.evaluator.fields(rnd, self.model) if self.evaluator is not None else NO_EVAL
        heard: dict[int, int] = {}
        for w, p in arrivals:
            heard[w] = max(heard.get(w, 0), p + 1)
        self.rows.rounds.append(RoundRow(
            round=rnd, latency=latency, status=status, messages=len(arrivals) + len(answers),
            chunks_done=sum(heard.values()), coef_error=comb.coef_error, grad_error=grad_error, loss=loss,
            waitout=0, level=comb.level, cond=comb.cond, eval_loss=eval_loss, eval_accuracy=eval_accuracy))
        used = comb.used
        nbytes = self.dtype.itemsize * (RESULT_HEADER + self.part_len)
        for (w, p), t in sorted(arrivals.items(), key=lambda kv: kv[1]):
            chunk = int(scheme.plan.orders[w][p]) if len(scheme.sends_after(w)) > 1 else -1
            self.rows.events.append(EventRow(round=rnd, job=-1, worker=w, task=p, chunk=chunk, t_arrive=t,
                                             nbytes=nbytes, stale=False, used=(w, p) in used))
        for w, t in sorted(answers.items(), key=lambda kv: kv[1]):
            self.rows.events.append(EventRow(round=rnd, job=-1, worker=w, task=-1, chunk=-1, t_arrive=t,
                                             nbytes=nbytes, stale=False, used=(w, -1) in used))
        return self.rows

    def _gather(self, rnd: int, start: float, decoder: Decoder) -> dict[MessageKey, float]:
        """Listen until the exact decode, the cutoff or ``wait_for``; return when each message in time arrived."""
        clock = MPI.Wtime
        cutoff = start + self.policy.cutoff
        arrivals: dict[MessageKey, float] = {}
        exact = False
        waiting = LastMessages(self.policy.wait_for, self.last_sends)
        # code.wait_for: stop once k workers have sent everything; a batch's messages (heard at one
        # instant, like the simulator's ties) all enter the decode
        while not (exact or waiting.done):
            now = clock()
            if now >= cutoff:
                break
            got = self._poll()
            if not got:
                time.sleep(min(POLL_SLEEP, cutoff - now))  # wake for the cutoff, not a slice after it
                continue
            now = clock()
            for w, buf, count in got:
                if int(buf[0]) != Kind.RESULT or int(buf[1]) != rnd or now >= cutoff:
                    self._other(w, buf, count, now - start)  # an earlier round's, or too late for this one
                    continue
                key = (w, int(buf[2]))
                arrivals[key] = now - start
                waiting.add(*key)
                if exact or not self.scheme.carries_vectors:
                    # heard with the decoding message (surplus), or a progress note: no vector to keep
                    self.inbox.release(w, buf)
                    if exact:
                        continue
                else:
                    self.held[key] = buf[RESULT_HEADER:count]
                for block in decoder.add(*key):
                    self._apply(block.weights, block.keys)
                if key in self.held and not decoder.needs(key):
                    self.inbox.release(w, self.held.pop(key))
                self.peak_held = max(self.peak_held, len(self.held))
                exact = decoder.exact
        return arrivals

    def _second_phase(self, rnd: int, decoder: Decoder, comb: Combination,
                      start: float) -> tuple[Combination, dict[int, float]]:
        """Request transport: send every worker its (chunk, weights), gather one answer each until they are due.

        Returns the combination of the answers that came (the scheme's own when
        all did) and their arrival times.
        """
        instructions = decoder.instructions()
        for w, rows in instructions.items():
            payload = np.concatenate([np.concatenate([[chunk], weights]) for chunk, weights in rows])
            self.courier.send(w, control(Kind.INSTRUCT, rnd, payload, self.dtype))  # w was heard this round
        clock = MPI.Wtime
        due = start + self.policy.answers_due(clock() - start)
        waiting = set(instructions)
        answers: dict[int, float] = {}
        while waiting:
            now = clock()
            if now >= due:
                break
            got = self._poll()
            if not got:
                time.sleep(min(POLL_SLEEP, due - now))
                continue
            now = clock()
            for w, buf, count in got:
                if int(buf[0]) == Kind.ANSWER and int(buf[1]) == rnd and w in waiting and now < due:
                    self.held[(w, -1)] = buf[RESULT_HEADER:count]
                    answers[w] = now - start
                    waiting.discard(w)
                    self.peak_held = max(self.peak_held, len(self.held))
                else:
                    self._other(w, buf, count, now - start)
        if waiting:
            comb = answered_combination(instructions, answers, self.scheme.plan.chunks, self.parts)
        return comb, answers

    def _complete(self, comb: Combination) -> None:
        """Free the vectors ``comb`` does not weigh, then apply the ones it does that are not yet applied."""
        needed = set(comb.keys)
        for key in [k for k in self.held if k not in needed]:
            self.inbox.release(key[0], self.held.pop(key))
        rest = [j for j, key in enumerate(comb.keys) if key not in self.applied]
        if rest:
            self._apply(comb.weights[:, rest], [comb.keys[j] for j in rest])

    def _apply(self, weights: np.ndarray, keys) -> None:
        """``acc += weights @ [vectors of keys]`` in place, one vector at a time; each vector is then released.

        With d = 270 000 the stacked form allocated and copied 2 MB several
        times per message on rank 0's critical path; a d-sized product per
        term still cost an extra pass, so each term goes through one
        cache-sized block (:func:`~mpigc.codes.inplace.add_scaled`).
        """
        for j, key in enumerate(keys):
            vec = self.held.pop(key)
            for r in range(self.parts):
                if weights[r, j] != 0.0:
                    add_scaled(self.acc[r], weights[r, j], vec, self.scratch)
            self.applied.add(key)
            self.inbox.release(key[0], vec)

    def _other(self, w: int, buf: np.ndarray, count: int, now: float) -> None:
        """Return a stale result or answer, or a worker's round report: record it, never decode it."""
        head = header(buf)
        if head.kind in (Kind.RESULT, Kind.ANSWER):
            self.rows.events.append(EventRow(round=head.round, job=-1, worker=w, task=head.position,
                                             chunk=head.chunk, t_arrive=now, nbytes=self.dtype.itemsize * count,
                                             stale=True, used=False))
        elif head.kind == Kind.REPORT:
            self.rows.workers.append(worker_row(w, head))
        self.inbox.release(w, buf)

    def _check_and_update(self, rnd: int, grad: np.ndarray, decoded_loss: float,
                          comb: Combination) -> tuple[int, float, float]:
        """Return the round's status (exact only if sound), gradient error and loss; update the model."""
        status = status_of(comb)
        loss = decoded_loss if status == 0 else float("nan")
        grad_error, truth = float("nan"), None
        if self.verify:
            truth, loss = full_gradient(self.workload, self.model)
            grad_error = relative_error(grad, truth)
        sound = finite(grad, truth, loss if self.verify or status == 0 else None)
        status = self.soundness.judge(status, comb.cond, grad_error, sound, rnd)
        if status not in (UNDECODABLE, NONFINITE):
            self._update(grad)
        return status, grad_error, loss

    def _update(self, grad: np.ndarray) -> None:
        """Write the next model into a free START buffer (``workload.update``; in place for the plain step)."""
        nxt = self._free_start()
        if type(self.workload).update is Objective.update:
            step_into(nxt[CONTROL_HEADER:], self.model, self.workload.step, grad, self.scratch)
        else:  # a workload with its own update rule
            nxt[CONTROL_HEADER:] = self.workload.update(self.model, grad)
        self.start_buf = nxt

    def finish(self, drain: Callable[[RoundTables], None]) -> None:
        """End the run: tell workers, drain every late result and report until each worker's FINAL.

        A START still deferred is dropped: END follows a worker's backlog, so a
        stopped worker that resumes reads its few old rounds, then END. One
        that never resumes holds the job here (MPI cannot end a job with a
        live rank that never finalizes) until the launcher's time limit; rank
        0 names it on stderr after a while (:meth:`Inbox.drain`).
        """
        self.courier.deferred.clear()
        end = control(Kind.END, -1, dtype=self.dtype)
        for w in range(self.m):
            self.courier.send(w, end)
        self.rows = RoundTables()
        self.inbox.drain(lambda w, buf, count: self._other(w, buf, count, float("nan")))
        self.courier.wait()
        drain(self.rows)

