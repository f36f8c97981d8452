"""The rows and summary of a sequential-gradient-coding run (both backends)."""
from __future__ import annotations

import numpy as np

from mpigc import report
from mpigc.core.policy import EXACT, UNDECODABLE
from mpigc.core.sgc_engine import Closed, SequentialEngine
from mpigc.results import JobRow, RoundRow


def rows_of(closed: Closed, duration: float, clock: float, engine: SequentialEngine, models: int,
            checks: dict[int, tuple[float, float]]) -> tuple[RoundRow, list[JobRow]]:
    """Return the ``rounds`` row and the ``jobs`` rows of one closed round (both backends)."""
    r = closed.round
    jobs_r = engine.state.jobs[r]
    accepted = ~closed.strag
    tasks = int(((jobs_r >= 0) & accepted[:, None]).sum())
    errors = [checks.get(d.job, (np.nan, np.nan))[0] for d in closed.decodes]
    coef = max((d.coef_error for d in closed.decodes), default=0.0)
    losses = [checks.get(d.job, (np.nan, np.nan))[1] for d in closed.decodes]
    status = UNDECODABLE if closed.lost else EXACT
    grad_error = float(np.max(errors)) if errors and not np.all(np.isnan(errors)) else np.nan
    messages = 0 if closed.idle else int(accepted.sum())  # a round without work sends nothing
    row = RoundRow(round=r, latency=duration, status=status, messages=messages, chunks_done=tasks, coef_error=coef,
                   grad_error=grad_error, loss=losses[-1] if losses else np.nan, waitout=closed.waitout)
    jobs = [JobRow(job=d.job, model=engine.model_of(d.job, models), round_done=r, t_done=clock,
                   loss=checks.get(d.job, (np.nan, np.nan))[1])
            for d in closed.decodes]
    jobs += [JobRow(job=t, model=engine.model_of(t, models), round_done=-1, t_done=np.nan, loss=np.nan)
             for t in closed.lost]
    return row, jobs


def sequential_stats(rounds: np.ndarray, jobs: np.ndarray) -> dict:
    """Summary of a sequential run: the single-round summary plus total runtime and wait-outs."""
    stats = report.summarize(rounds)
    stats.update(total_s=float(np.sum(rounds["latency"])), waitouts=int(np.sum(rounds["waitout"] == 1)),
                 safety_waitouts=int(np.sum(rounds["waitout"] == 2)),
                 jobs_done=int(np.sum(jobs["round_done"] >= 0)), jobs_lost=int(np.sum(jobs["round_done"] < 0)))
    return stats
