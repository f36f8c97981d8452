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

from collections.abc import Iterator

import numpy as np

from mpigc.core.inputs import build_workload
from mpigc.core.lifecycle import Sequential
from mpigc.core.metrics import relative_error
from mpigc.core.sgc_engine import SequentialEngine, round_times
from mpigc.core.sgc_tables import rows_of
from mpigc.core.tables import RoundTables
from mpigc.results import new_rows


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


class SimSequential(Sequential):
    """Sequential rounds in virtual time: the shared engine's rule on modelled round times."""

    def batches(self) -> Iterator[RoundTables]:
        """Yield each round's rows: its ``rounds`` row, the jobs it decoded or lost, its ``workers`` rows."""
        entry, config, delays = self.entry, self.config, self.plan.delays
        scheme = entry.scheme
        engine = SequentialEngine(scheme, config.run.rounds, entry.code.mu)
        tracker = JobTracker(build_workload(config, scheme.units), scheme, entry.models) if config.run.verify else None
        detail = config.run.detail in ("workers", "full")
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
            batch = RoundTables(rounds=[row], jobs=job_rows)
            if detail:
                busy = np.minimum(times, closed.duration)
                done = (engine.state.jobs[r] >= 0).sum(axis=1)
                # injected = busy, as the single-round simulator: every modelled second is injected
                rows = new_rows("workers", scheme.m)  # column by column: one row per worker
                rows["round"], rows["worker"], rows["busy"], rows["injected"] = r, np.arange(scheme.m), busy, busy
                rows["tasks_done"] = np.where(closed.strag, 0, done)
                batch.workers = [rows]
            yield batch
