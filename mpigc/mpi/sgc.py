"""MPI runtime of the sequential schemes (docs/protocols.md#sequential-schemes): master and worker loops.

Round r: rank 0 plans it with the shared engine, builds each worker's START
(its slots' (job, kind) pairs and the parameters of each slot's model),
starts the round clock and sends them. A worker computes every mini-task's
real result (gradient and loss of its unit chunks, combined by the scheme's
row), checking before each unit and between blocks of a unit's gradient
whether the round is already over, sleeps until its modelled round time
has passed (:func:`~mpigc.core.sgc_engine.round_times`) and sends all
slot results in one RESULT, which carries its ``workers`` statistics too.

Rank 0 polls with ``Testsome`` plus a short sleep, one receive posted per
worker into that worker's own buffer. It applies the engine's rule in the
engine's order: at (1+μ)·t_min (its own clock) every worker that has not
returned, or returned after the cutoff, is a straggler, and the engine
decides whether the round ends there or waits for all (wait-out); only a
round whose workers all returned before the cutoff ends at its last arrival.
When the round ends, every worker still out gets STOP(r): it abandons the
round and sends a REPORT(r) with its statistics, so the ``workers`` table
holds one row per (round, worker), abandoned rounds included (but for rounds a
worker that stopped responding was not started on: control traffic is bounded
per worker as in :mod:`mpigc.mpi.master`; it is a straggler there). Every
message carries its round in the header: a late result is recorded as stale in
``events`` and never decoded. Sends are never cancelled; rank 0 drains
everything up to each worker's FINAL.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
from mpi4py import MPI

from mpigc.codes.sgc import build_sequential
from mpigc.config import Config
from mpigc.core.entries import Entry, RunPlan
from mpigc.core.inputs import build_delays, build_workload
from mpigc.core.lifecycle import Sequential
from mpigc.core.metrics import relative_error
from mpigc.core.payload import CONTROL_HEADER, RESULT_HEADER
from mpigc.core.sgc_engine import NO_WAIT, SequentialEngine, round_times
from mpigc.core.sgc_tables import rows_of
from mpigc.core.tables import RoundTables
from mpigc.delays import DelayModel
from mpigc.mpi.mailbox import ControlInbox, Courier, Inbox, Outbox, serve_rounds
from mpigc.mpi.protocol import POLL_SLEEP, TAG_RESULT, Kind, control, header, result, sleep_until, vector, worker_row
from mpigc.mpi.worker import rows_per_block
from mpigc.results import EventRow, WorkerRow


def slot_payload(jobs: np.ndarray, kinds: np.ndarray, thetas: list[np.ndarray], dim: int) -> np.ndarray:
    """START payload of one worker: its slots' jobs and kinds, then one parameter block per slot."""
    blocks = [thetas[q] if jobs[q] >= 0 else np.zeros(dim) for q in range(len(jobs))]
    return np.concatenate([jobs.astype(float), kinds.astype(float), *blocks])


class SeqWorker:
    """Worker ``w`` = rank w + 1: compute, emulate the round time, send every slot's result."""

    def __init__(self, comm: MPI.Comm, scheme, delays: DelayModel, workload, compute: str) -> None:
        self.comm, self.scheme, self.delays, self.workload = comm, scheme, delays, workload
        self.compute = compute
        self.w = comm.rank - 1
        self.dim = workload.dim
        self.outbox = Outbox(comm)
        self.control = ControlInbox(comm, CONTROL_HEADER + scheme.slots * (2 + self.dim), self.outbox)
        self.block_rows: int | None = None  # rows per gradient block between stop checks (set by prepare)

    def prepare(self) -> None:
        """Build every unit chunk this worker can be asked for, warm up the kernels and size the gradient blocks.

        Before the clock starts, as the single-round worker: each unit's
        gradient is timed once its data exist, and the median time per row
        sets :attr:`block_rows` (blocks of about ``BLOCK_TIME`` between stop
        checks; a unit faster than one block is computed in one piece).
        """
        model = self.workload.initial_model()
        per_row = []
        for unit in self.scheme.plan.orders[self.w]:
            self.workload.chunk_data(int(unit))
            tic = time.perf_counter()
            self.workload.chunk_gradient(model, int(unit))
            per_row.append((time.perf_counter() - tic) / self.workload.chunk_rows(int(unit)))
        self.block_rows = rows_per_block(float(np.median(per_row))) if per_row else None

    def _ended(self, rnd: int) -> bool:
        """Whether round ``rnd`` is over for this worker: rank 0 sent a control message since its START.

        STOP(rnd) is consumed; anything else (START of the next round, END) is
        stashed for the main loop.
        """
        msg = self.control.receive(block=False)
        if msg is None:
            return False
        if not (int(msg[0]) == Kind.STOP and int(msg[1]) == rnd):
            self.control.put_back(msg)
        return True

    def run(self) -> None:
        """Serve rounds until END; then complete every send and answer FINAL."""
        serve_rounds(self.comm, self.control, self.outbox, self._round)

    def _round(self, rnd: int, payload: np.ndarray) -> None:
        clock = MPI.Wtime
        start = clock()
        p = self.scheme.slots
        jobs, kinds = payload[:p].astype(int), payload[p:2 * p].astype(int)
        thetas = payload[2 * p:].reshape(p, self.dim)
        seconds = float(round_times(self.delays, rnd, self.scheme)[self.w])
        emulated = self.compute != "real"

        def ended() -> bool:
            return self._ended(rnd)

        out = np.zeros((p, self.dim + 1))
        for q in range(p):
            if jobs[q] < 0:
                continue
            row = self.scheme.row(self.w, int(kinds[q]))
            for u in np.flatnonzero(row):
                # never start a unit of a round rank 0 has closed (slow units, a busy core),
                # nor finish a long one: the blocks of its gradient check too
                got = None if ended() else self.workload.chunk_gradient_blocks(thetas[q], int(u), self.block_rows,
                                                                               ended)
                if got is None:
                    now = clock()
                    self._report(rnd, now - start, 0.0, max(0.0, now - start - seconds) if emulated else 0.0)
                    return
                out[q, :-1] += row[u] * got[0]
                out[q, -1] += row[u] * got[1]
        computed = clock()
        if emulated:
            target = max(start + seconds, computed)
            overrun = max(0.0, computed - (start + seconds))
        else:
            nominal = float(self.scheme.sizes.sum()) * self.delays.chunk_time
            target, overrun = computed + max(0.0, seconds - nominal), 0.0
        if sleep_until(target, clock, ended):
            # a straggler: its result is never sent, only its statistics
            now = clock()
            self._report(rnd, now - start, now - computed, overrun)
            return
        now = clock()
        buf = result(Kind.RESULT, rnd, busy=now - start, injected=max(0.0, now - computed),
                     tasks_done=int((jobs >= 0).sum()), overrun=overrun, vector=out.reshape(-1))
        self.outbox.send(buf, 0, TAG_RESULT)

    def _report(self, rnd: int, busy: float, injected: float, overrun: float) -> None:
        """REPORT(rnd) of an abandoned round: no mini-task finished."""
        self.outbox.send(result(Kind.REPORT, rnd, busy=busy, injected=injected, overrun=overrun), 0, TAG_RESULT)


class SeqMaster:
    """Rank 0: rounds by the engine's rule, decoding jobs from real coded results."""

    def __init__(self, comm: MPI.Comm, engine: SequentialEngine, workload, models: int, verify: bool) -> None:
        self.comm, self.engine, self.workload = comm, engine, workload
        self.scheme = engine.scheme
        self.m, self.p, self.dim = self.scheme.m, self.scheme.slots, workload.dim
        self.size = RESULT_HEADER + self.p * (self.dim + 1)
        self.models = [workload.initial_model() for _ in range(models)]
        self.verify = verify
        self.theta: dict[int, np.ndarray] = {}  # job -> parameters its mini-tasks use
        self.store: dict[tuple[int, int], np.ndarray] = {}  # (round, worker) -> (P, d+1) accepted results
        self.inbox = Inbox(comm, self.m, self.size)
        self.courier = Courier(comm, self.inbox.heard)  # control sends, a few in flight per worker
        self.events: list[EventRow] = []
        self.workers: list[WorkerRow] = []

    def take(self, table: str) -> list[tuple]:
        """Return the ``workers`` or ``events`` rows recorded since the last call."""
        rows = getattr(self, table)
        setattr(self, table, [])
        return rows

    def prepare(self) -> None:
        """With verification, build every unit chunk before the clock starts."""
        if self.verify:
            self.workload.full_gradient(self.models[0])

    def _other(self, w: int, buf: np.ndarray, count: int, now: float) -> None:
        """Return a stale result or a straggler's REPORT: record it, never decode it."""
        head = header(buf)
        if head.kind == Kind.RESULT:
            self.events.append(EventRow(round=head.round, job=-1, worker=w, task=-1, chunk=-1, t_arrive=now,
                                        nbytes=8 * count, stale=True, used=False))
        if head.kind in (Kind.RESULT, Kind.REPORT):
            self.workers.append(worker_row(w, head))  # one per (round, worker)
        self.inbox.release(w, buf)

    def round(self, r: int) -> tuple:
        """Run round r; return (closed round, duration)."""
        engine = self.engine
        jobs, kinds = engine.plan(r)
        if engine.idle(r):  # no worker has a task (SR-SGC's tail): no START, 0 s, nothing recorded
            self.workers += [WorkerRow(round=r, worker=w, busy=0.0, injected=0.0, tasks_done=0, failed=False)
                             for w in range(self.m)]  # as the simulator's rows
            return engine.skip(r), 0.0
        if r < engine.jobs:
            self.theta[r] = self.models[r % len(self.models)].copy()
        starts = [control(Kind.START, r, slot_payload(jobs[w], kinds[w], [self.theta.get(int(t)) for t in jobs[w]],
                                                      self.dim)) for w in range(self.m)]
        clock = MPI.Wtime
        start = clock()  # as the single-round master: just before the first START leaves
        for w in range(self.m):  # a worker that is behind gets its START once it catches up
            self.courier.start(w, r, starts[w])
        del starts  # the courier keeps each buffer until its send completes
        arrived: dict[int, tuple[float, np.ndarray]] = {}
        cut, waitout = np.inf, None
        strag = np.zeros(self.m, dtype=bool)
        while True:
            got = self.inbox.poll()
            self.courier.retry()  # a deferred START goes out once its worker catches up
            now = clock() - start
            for w, buf, count in got:
                head = header(buf)
                if head.kind != Kind.RESULT or head.round != r:
                    self._other(w, buf, count, now)
                    continue
                # kept across rounds (a job decodes T_seq rounds later) while the buffer goes back to the pool
                arrived[w] = (now, vector(buf, count).reshape(self.p, self.dim + 1).copy())
                self.workers.append(worker_row(w, head))
                self.inbox.release(w, buf)
                if len(arrived) == 1:
                    cut = engine.cutoff(now)
            # The cutoff before "all arrived", in the engine's order: a result that
            # arrives after (1+μ)·t_min is a straggler's even if it was the last one.
            if waitout is None and not self.scheme.waits_for_all and now >= cut:
                strag = np.array([w not in arrived or arrived[w][0] > cut for w in range(self.m)])
                waitout = engine.verdict(r, strag)
                if waitout == NO_WAIT:
                    break
            if len(arrived) == self.m:
                break
            if not got:
                time.sleep(POLL_SLEEP)
        duration = clock() - start
        for w in range(self.m):
            if w not in arrived:  # a straggler still at work (if started): it stops and sends its REPORT(r)
                self.courier.stop(w, r)
        if waitout is None:  # every worker returned before the cutoff (or the scheme waits for all)
            waitout = NO_WAIT
        closed = engine.commit(r, strag, waitout)
        for w, (t, vec) in arrived.items():
            used = not closed.strag[w]
            first = jobs[w][jobs[w] >= 0]
            self.events.append(EventRow(round=r, job=int(first[0]) if first.size else -1, worker=w, task=-1,
                                        chunk=-1, t_arrive=t, nbytes=8 * self.size, stale=False, used=used))
            if used:
                self.store[(r, w)] = vec
        return closed, duration

    def decode(self, closed) -> dict[int, tuple[float, float]]:
        """Combine stored results into each decoded job's gradient; step its model; (grad_error, loss)."""
        checks = {}
        for dec in closed.decodes:
            vec = np.zeros(self.dim + 1)
            for (rr, w, q), a in zip(dec.keys, dec.coefs):
                vec += a * self.store[(rr, w)][q]
            theta = self.theta.pop(dec.job)
            err = np.nan
            if self.verify:
                truth, _ = self.workload.full_gradient(theta)
                err = relative_error(vec[:-1], truth)
            k = dec.job % len(self.models)
            self.models[k] = self.workload.update(self.models[k], vec[:-1])
            # as the simulator: the loss after the update costs a full pass over the data, so verify only
            loss = self.workload.full_gradient(self.models[k])[1] if self.verify else np.nan
            checks[dec.job] = (err, loss)
        for t in closed.lost:
            self.theta.pop(t, None)
        old = closed.round - self.scheme.T
        for key in [k for k in self.store if k[0] <= old]:
            del self.store[key]
        return checks

    def finish(self) -> None:
        """Tell workers the run is over; drain late results until every FINAL; complete sends."""
        self.courier.deferred.clear()
        for w in range(self.m):
            self.courier.send(w, control(Kind.END, -1))
        self.inbox.drain(lambda w, buf, count: self._other(w, buf, count, float("nan")))
        self.courier.wait()


class MpiSequential(Sequential):
    """Rank 0's rounds of one sequential entry on ``comm`` (:class:`SeqMaster`); workers: :meth:`serve`."""

    def __init__(self, plan: RunPlan, entry: Entry, comm: MPI.Comm) -> None:
        super().__init__(plan, entry)
        config = self.config
        self.comm = comm
        self.engine = SequentialEngine(entry.scheme, config.run.rounds, entry.code.mu)
        self.master = SeqMaster(comm, self.engine, build_workload(config, entry.scheme.units, check=False),
                                entry.models, config.run.verify)

    def prepare(self) -> None:
        """Build rank 0's data; wait for every rank's: round 0 measures the scheme, not start-up."""
        self.master.prepare()
        self.comm.Barrier()

    def batches(self) -> Iterator[RoundTables]:
        """Each round's rows: its ``rounds`` row, the jobs it decoded or lost, reports and traffic seen."""
        master, engine, clock = self.master, self.engine, 0.0
        for r in range(engine.rounds):
            closed, duration = master.round(r)
            clock += duration  # the run clock counts rounds only, not the bookkeeping between them
            row, job_rows = rows_of(closed, duration, clock, engine, self.entry.models, master.decode(closed))
            yield RoundTables(rounds=[row], jobs=job_rows, workers=master.take("workers"),
                              events=master.take("events"))

    def finish(self) -> RoundTables:
        """End the workers' loop; the reports and late results drained until every FINAL."""
        self.master.finish()
        return RoundTables(workers=self.master.take("workers"), events=self.master.take("events"))

    @staticmethod
    def serve(comm: MPI.Comm, config: Config, code) -> None:
        """Serve the entry ``code`` as a worker: build its unit chunks, then serve rounds until END."""
        m = int(code.workers)
        scheme = build_sequential(code, m, config.run.seed)
        worker = SeqWorker(comm, scheme, build_delays(config, m), build_workload(config, scheme.units, check=False),
                           config.delays.compute)
        worker.prepare()
        comm.Barrier()
        worker.run()
