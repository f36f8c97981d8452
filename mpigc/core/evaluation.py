"""Time to accuracy (docs/protocols.md#time-to-accuracy): held-out evaluation every ``run.eval_every`` rounds.

Rank 0 (and the simulator) evaluates the model after round r's update when
(r + 1) is a multiple of ``eval_every``, so with ``eval_every = 1`` every
row has a value and with 10 rounds 9, 19, ... do. It runs after the round's
latency is measured (MPI: after the decode, the STOPs and the update; the
simulator has no wall clock), so no latency contains it; under MPI rank 0's
loop time (``loop_ms``) does. The values go into the round's row as its two
trailing fields ``eval_loss`` and ``eval_accuracy``; every other row keeps
the schema's NaN defaults.
"""
from __future__ import annotations

import math

import numpy as np

NO_EVAL = (math.nan, math.nan)


class Evaluator:
    """Evaluates a workload's model on its held-out rows every ``every`` rounds.

    Parameters
    ----------
    workload
        An :class:`mpigc.workloads.Objective` (``eval_metrics``, ``held_out``).
    every
        ``run.eval_every`` (> 0).
    """

    def __init__(self, workload, every: int) -> None:
        self.workload = workload
        self.every = int(every)

    @property
    def source(self) -> str:
        """Where the evaluation rows come from: ``"held-out"`` or ``"training"`` (builds them)."""
        return self.workload.held_out()[2]

    def due(self, rnd: int) -> bool:
        """Whether round ``rnd`` (0-based) ends with an evaluation."""
        return (rnd + 1) % self.every == 0

    def fields(self, rnd: int, model: np.ndarray) -> tuple[float, float]:
        """Return round ``rnd``'s ``(eval_loss, eval_accuracy)``: the model's metrics when due, else NaN."""
        return self.workload.eval_metrics(model) if self.due(rnd) else NO_EVAL

    def attrs(self) -> dict:
        """Run attributes describing the evaluation (``eval_every``, ``eval_set``, ``eval_rows``)."""
        x, _, source = self.workload.held_out()
        return {"eval_every": self.every, "eval_set": source, "eval_rows": int(len(x))}


def eval_attrs(run, evaluator: Evaluator | None) -> dict:
    """Run attributes of the evaluation: its :meth:`Evaluator.attrs` and ``target_loss`` (none without)."""
    out = evaluator.attrs() if evaluator is not None else {}
    if evaluator is not None and run.target_loss is not None:
        out["target_loss"] = float(run.target_loss)
    return out


def make_evaluator(run, workload) -> Evaluator | None:
    """Return the evaluator of ``run.eval_every`` for ``workload``, or None without evaluation."""
    if not getattr(run, "eval_every", 0) or workload is None:
        return None
    return Evaluator(workload, run.eval_every)
