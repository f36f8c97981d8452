"""MPI runtime of the sequential schemes (PROTOCOLS §4.2): master and worker loops.

Round r: rank 0 plans it with the shared engine and sends each worker a
START with its slots' (job, kind) pairs and the parameters of each slot's
model. A worker computes every mini-task's real result (gradient and loss of
its unit chunks, combined by the scheme's row), sleeps until its modelled
round time has passed (:func:`~mpigc.sequential_engine.round_times`) and
sends all slot results in one message. It abandons the round, silently, the
moment the next control message is waiting. Rank 0 polls with ``Testsome``
plus a short sleep, one receive posted per worker into that worker's own
buffer; at (1+μ)·t_min (its own clock) it asks the engine whether the
unreturned workers may straggle, and either ends the round or waits for all
(wait-out). Every result carries its round in the header: a late one is
recorded as stale in ``events`` and never decoded. Sends are never
cancelled; rank 0 drains everything up to each worker's FINAL.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from mpi4py import MPI

from mpigc import results
from mpigc.codes.sequential import build_sequential
from mpigc.config import Config
from mpigc.delays import DelayModel
from mpigc.engine import relative_error
from mpigc.mpi.launch import run_attrs
from mpigc.mpi.mailbox import Inbox, Outbox
from mpigc.mpi.protocol import (CONTROL_HEADER, POLL_SLEEP, RESULT_HEADER, TAG_CONTROL, TAG_RESULT, Kind, control,
                                result, sleep_until)
from mpigc.sequential_engine import SequentialEngine, round_times
from mpigc.sim import progress_printer
from mpigc.sim.sequential import rows_of, sequential_stats
from mpigc.workloads import make_workload


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
        self.control = np.empty(CONTROL_HEADER + scheme.slots * (2 + self.dim))
        self.outbox = Outbox(comm)

    def _waiting(self) -> bool:
        return bool(self.comm.Iprobe(source=0, tag=TAG_CONTROL))

    def run(self) -> None:
        """Serve rounds until END; then complete every send and answer FINAL."""
        while True:
            while not self._waiting():
                self.outbox.prune()
                time.sleep(POLL_SLEEP)
            status = MPI.Status()
            self.comm.Recv([self.control, MPI.DOUBLE], source=0, tag=TAG_CONTROL, status=status)
            kind, rnd = int(self.control[0]), int(self.control[1])
            if kind == Kind.END:
                break
            if kind == Kind.START:
                self._round(rnd, self.control[CONTROL_HEADER:status.Get_count(MPI.DOUBLE)].copy())
        self.outbox.drain()
        self.comm.Send([result(Kind.FINAL, -1), MPI.DOUBLE], dest=0, tag=TAG_RESULT)

    def _round(self, rnd: int, payload: np.ndarray) -> None:
        clock = MPI.Wtime
        start = clock()
        p = self.scheme.slots
        jobs, kinds = payload[:p].astype(int), payload[p:2 * p].astype(int)
        thetas = payload[2 * p:].reshape(p, self.dim)
        seconds = float(round_times(self.delays, rnd, self.scheme)[self.w])
        out = np.zeros((p, self.dim + 1))
        for q in range(p):
            if jobs[q] < 0:
                continue
            row = self.scheme.row(self.w, int(kinds[q]))
            for u in np.flatnonzero(row):
                grad, loss = self.workload.chunk_gradient(thetas[q], int(u))
                out[q, :-1] += row[u] * grad
                out[q, -1] += row[u] * loss
        computed = clock()
        if self.compute == "real":
            nominal = float(self.scheme.sizes.sum()) * self.delays.chunk_time
            target = computed + max(0.0, seconds - nominal)
        else:
            target = max(start + seconds, computed)
        overrun = max(0.0, computed - (start + seconds))
        if sleep_until(target, clock, self._waiting):
            return  # the round is over for us: a straggler's result is never sent
        buf = result(Kind.RESULT, rnd, busy=clock() - start, injected=max(0.0, clock() - computed),
                     tasks_done=int((jobs >= 0).sum()), overrun=overrun, vector=out.reshape(-1))
        self.outbox.send(buf, 0, TAG_RESULT)


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
        self.outbox = Outbox(comm)
        self.events: list[tuple] = []
        self.workers: list[tuple] = []

    def _send(self, w: int, buf: np.ndarray) -> None:
        self.outbox.send(buf, w + 1, TAG_CONTROL)

    def _stale(self, w: int, buf: np.ndarray, count: int, now: float) -> None:
        self.events.append((int(buf[1]), -1, w, -1, -1, now, 8 * count, True, False))
        self.inbox.release(w, buf)

    def round(self, r: int) -> tuple:
        """Run round r; return (closed round, duration, arrivals)."""
        engine = self.engine
        jobs, kinds = engine.plan(r)
        if r < engine.jobs:
            self.theta[r] = self.models[r % len(self.models)].copy()
        for w in range(self.m):
            thetas = [self.theta.get(int(t)) for t in jobs[w]]
            self._send(w, control(Kind.START, r, slot_payload(jobs[w], kinds[w], thetas, self.dim)))
        start = MPI.Wtime()
        arrived: dict[int, tuple[float, np.ndarray]] = {}
        cut, waitout = np.inf, None
        while True:
            got = self.inbox.poll()
            now = MPI.Wtime() - start
            for w, buf, count in got:
                if int(buf[0]) != Kind.RESULT or int(buf[1]) != r:
                    self._stale(w, buf, count, now)
                    continue
                arrived[w] = (now, buf[RESULT_HEADER:count].reshape(self.p, self.dim + 1).copy())
                busy, injected, done, _, overrun = buf[4:RESULT_HEADER]
                self.workers.append((r, w, busy, injected, int(done), False, overrun))
                self.inbox.release(w, buf)
                if len(arrived) == 1:
                    cut = engine.cutoff(now)
            if len(arrived) == self.m:
                strag = np.zeros(self.m, dtype=bool)
                waitout = waitout or 0
                break
            if waitout is None and not self.scheme.waits_for_all and now >= cut:
                strag = np.array([w not in arrived or arrived[w][0] > cut for w in range(self.m)])
                waitout = engine.verdict(r, strag)
                if waitout == 0:
                    break
            if not got:
                time.sleep(POLL_SLEEP)
        duration = MPI.Wtime() - start
        closed = engine.commit(r, strag, waitout)
        for w, (t, vec) in arrived.items():
            used = not closed.strag[w]
            first = jobs[w][jobs[w] >= 0]
            self.events.append((r, int(first[0]) if first.size else -1, w, -1, -1, t, 8 * self.size, False, used))
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
        for w in range(self.m):
            self._send(w, control(Kind.END, -1))
        self.inbox.drain(lambda w, buf, count: self._stale(w, buf, count, float("nan")))
        self.outbox.wait()


def run_sequential_entry(comm: MPI.Comm, config: Config, code, file, name: str | None, hosts) -> tuple | None:
    """Run one sequential scheme entry on ``comm``; rank 0 returns its summary row."""
    m = int(code.workers)
    scheme = build_sequential(code, m, config.run.seed)
    models = config.workload.models or scheme.T + 1
    delays = DelayModel(config.delays, config.run.seed, m)
    workload = make_workload(config.workload, scheme.units, config.run.seed, check=False)
    if comm.rank != 0:
        worker = SeqWorker(comm, scheme, delays, workload, config.delays.compute)
        comm.Barrier()
        worker.run()
        return None
    engine = SequentialEngine(scheme, config.run.rounds, code.mu)
    label = name or code.name or code.scheme
    detail = config.run.detail
    tables = ["rounds", "jobs"] + (["workers"] if detail in ("workers", "full") else []) + \
             (["events"] if detail == "full" else [])
    writer = None
    if file is not None:
        attrs = {**run_attrs(config, code, label, comm, hosts), "models": models, "T_seq": scheme.T,
                 "load": scheme.load, "regime": "sequential"}
        writer = file.new_run(label, attrs, tables)
        label = writer.name
    master = SeqMaster(comm, engine, workload, models, config.run.verify)
    comm.Barrier()
    print(f"running {label} ({code.scheme}, {m} workers, {config.run.rounds} jobs, T_seq = {scheme.T})",
          file=sys.stderr, flush=True)
    progress = progress_printer(label, engine.rounds)
    rounds, jobs, clock = [], [], 0.0
    pending: tuple[list, list] = ([], [])
    for r in range(engine.rounds):
        closed, duration = master.round(r)
        clock += duration  # the run clock counts rounds only, not the bookkeeping between them
        row, job_rows = rows_of(closed, duration, clock, engine, models, master.decode(closed))
        rounds.append(row)
        jobs += job_rows
        pending[0].append(row)
        pending[1].extend(job_rows)
        if writer is not None and (r + 1) % config.run.flush_every == 0:
            _append(writer, tables, pending, master)
        progress(r + 1)
    master.finish()
    rounds_arr = np.array(rounds, dtype=results.ROUNDS_DTYPE)
    stats = sequential_stats(rounds_arr, np.array(jobs, dtype=results.JOBS_DTYPE))
    if writer is not None:
        _append(writer, tables, pending, master)
        writer.set_attrs(**{f"summary_{k}": v for k, v in stats.items()})
        writer.flush()
    return (label, code.scheme, stats)


def _append(writer, tables, pending: tuple[list, list], master: SeqMaster) -> None:
    """Write the buffered rounds, jobs, workers and events rows, then flush."""
    for table, rows in (("rounds", pending[0]), ("jobs", pending[1])):
        if rows:
            writer.append(table, np.array(rows, dtype=results.TABLES[table]))
        rows.clear()
    for table, rows in (("workers", master.workers), ("events", master.events)):
        if table in tables and rows:
            writer.append(table, np.array(rows, dtype=results.TABLES[table]))
        rows.clear()
    writer.flush()
