"""Virtual-time simulator of the sequential schemes (docs/protocols.md#sequential-schemes), into HDF5.

Each round every worker's time is its whole round of mini-tasks
(:func:`~mpigc.core.sgc_engine.round_times`); the shared engine applies the
(1+μ)·t_min rule and decodes jobs. The run clock is the sum of round
durations; a job's ``t_done`` is that clock at the end of its decoding round.
With ``run.verify`` every accepted mini-task result is computed from the
real per-unit gradients of its job's model, combined with the decode
coefficients and compared with the true gradient (``grad_error``, the worst
job of the round); the model then takes its step and ``loss`` is its loss
after the update.
"""
from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

from mpigc import results
from mpigc.config import Config
from mpigc.core.inputs import build_delays, build_workload
from mpigc.core.metrics import relative_error
from mpigc.core.provenance import run_attrs
from mpigc.core.sgc_engine import SeqEntry, SequentialEngine, plan_sequential, round_times
from mpigc.core.sgc_tables import rows_of, sequential_stats
from mpigc.core.tables import summary_attrs, tables_for
from mpigc.delays import DelayModel


class JobTracker:
    """Models trained concurrently, with real gradients: per-unit gradients, decode checks, updates."""

    def __init__(self, workload, scheme, models: int) -> None:
        self.workload = workload
        self.scheme = scheme
        self.models = [workload.initial_model() for _ in range(models)]
        self.units: dict[int, np.ndarray] = {}  # job -> (units, d + 1): gradients and losses per unit

    def unit_grads(self, job: int) -> np.ndarray:
        """Per-unit gradients (and losses, last column) of job's model at its parameters when it started."""
        if job not in self.units:
            theta = self.models[job % len(self.models)]
            rows = [np.append(*self.workload.chunk_gradient(theta, u)) for u in range(self.scheme.units)]
            self.units[job] = np.stack(rows)
        return self.units[job]

    def result(self, job: int, worker: int, kind: int) -> np.ndarray:
        """Return what worker ``worker``'s mini-task ``kind`` of job ``job`` sends (gradient and loss)."""
        return self.scheme.row(worker, kind) @ self.unit_grads(job)

    def apply(self, job: int, decoded: np.ndarray) -> tuple[float, float]:
        """Check a decoded gradient, take the step; return (grad_error, loss after the update)."""
        d = self.workload.dim
        truth = self.unit_grads(job)[:, :d].sum(axis=0)
        err = relative_error(decoded[:d], truth)
        k = job % len(self.models)
        self.models[k] = self.workload.update(self.models[k], decoded[:d])
        self.units.pop(job, None)
        _, loss = self.workload.full_gradient(self.models[k])
        return err, loss


def simulate_entry(entry: SeqEntry, config: Config, delays: DelayModel, writer=None, log: TextIO = sys.stderr):
    """Simulate one sequential entry; return (rounds array, jobs array)."""
    scheme = entry.scheme
    engine = SequentialEngine(scheme, config.run.rounds, entry.code.mu)
    tracker = None
    if config.run.verify:
        tracker = JobTracker(build_workload(config, scheme.units), scheme, entry.models)
    rounds, jobs, workers = [], [], []
    clock = 0.0
    for r in range(engine.rounds):
        engine.plan(r)
        times = round_times(delays, r, scheme)
        closed = engine.close(r, times)
        clock += closed.duration
        checks = {}
        for dec in closed.decodes:
            if tracker is not None:
                vec = sum(a * tracker.result(dec.job, w, int(engine.state.kinds[rr, w, q]))
                          for (rr, w, q), a in zip(dec.keys, dec.coefs))
                checks[dec.job] = tracker.apply(dec.job, vec)
        row, job_rows = rows_of(closed, closed.duration, clock, engine, entry.models, checks)
        rounds.append(row)
        jobs += job_rows
        if config.run.detail in ("workers", "full"):
            busy = np.minimum(times, closed.duration)
            done = (engine.state.jobs[r] >= 0).sum(axis=1)
            # injected = busy, as the single-round simulator: every modelled second is injected
            workers += [(r, w, busy[w], busy[w], int(done[w]) if not closed.strag[w] else 0, False, 0.0)
                        for w in range(scheme.m)]
    out_rounds = results.as_rows("rounds", rounds)
    out_jobs = np.array(jobs, dtype=results.JOBS_DTYPE)
    if writer is not None:
        writer.append("rounds", out_rounds)
        writer.append("jobs", out_jobs)
        if workers:
            writer.append("workers", np.array(workers, dtype=results.WORKERS_DTYPE))
        writer.flush()
    return out_rounds, out_jobs


def simulate_sequential(config: Config, out: str | None, name: str | None = None,
                        log: TextIO = sys.stderr) -> list[tuple]:
    """``mpigc simulate`` for a sequential config: every entry, one realisation; summary rows."""
    m = int(config.codes[0].workers)
    delays = build_delays(config, m)
    entries = plan_sequential(config, m, delays)
    if out is not None:
        results.check_writable(out)
    file = results.ResultFile(out, keep_open=True) if out is not None else None
    if file is not None:
        file.acquire()  # another job writing there is refused now, before any work
    tables = tables_for(config.run.detail, sgc=True)
    try:
        rows = []
        for entry in entries:
            label = name if (name and len(entries) == 1) else entry.label
            writer = None
            if file is not None:
                attrs = run_attrs("sim", config, entry.code, entry.label, m, models=entry.models,
                                  T_seq=entry.scheme.T, load=entry.scheme.load, regime="sequential")
                writer = file.new_run(label, attrs, tables)
                label = writer.name
            print(f"simulating {label} ({entry.code.scheme}, m = {m}, {config.run.rounds} jobs, "
                  f"T_seq = {entry.scheme.T})", file=log, flush=True)
            rnds, jobs = simulate_entry(entry, config, delays, writer, log)
            stats = sequential_stats(rnds, jobs)
            if writer is not None:
                writer.set_attrs(**summary_attrs(stats))
                writer.flush()
            print(f"  {label}: total {stats['total_s']:.6g} s over {len(rnds)} rounds, {stats['waitouts']} wait-outs "
                  f"({stats['safety_waitouts']} safety), {stats['jobs_done']} jobs decoded, {stats['jobs_lost']} lost",
                  file=log, flush=True)
            rows.append((label, entry.code.scheme, stats))
    finally:
        if file is not None:
            file.close()  # commits the runs into the file (results.writer)
    return rows
