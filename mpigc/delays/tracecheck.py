"""Numeric checks of a straggler model against a held-out trace (``mpigc trace check``).

Every statistic is computed the same way on the held-out trace and on
synthetic traces of the same shape drawn from a model; a model's prediction
is the mean over ``replicates`` synthetic traces. The rows:

- duration quantiles p50, p90, p99 of all values pooled;
- the mean per-round k-th order statistic (the k-th fastest worker: what a
  scheme waiting for k workers waits for) for k = m/2, 3m/4, m - 5, m;
- slow runs: a value is *slow* above the fit data's 90th percentile (stored
  in the model); the mean length of a worker's consecutive slow rounds and
  P(slow at t+1 | slow at t);
- the spread (standard deviation) of the per-worker means.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: the rows of the check table, in order; the first seven are the quantiles and order statistics
ROWS = ("p50", "p90", "p99", "k=m/2", "k=3m/4", "k=m-5", "k=m", "slow run (rounds)", "P(slow|slow)",
        "spread of worker means")
#: rows the headline median / worst error is taken over
HEADLINE = ROWS[:7]


def order_ks(workers: int) -> tuple[int, ...]:
    """Return the k of the order-statistic rows for m workers (1-based, at least 1)."""
    return tuple(max(1, min(workers, k)) for k in (workers // 2, (3 * workers) // 4, workers - 5, workers))


def _slow_runs(slow: np.ndarray) -> tuple[float, float]:
    """Return the mean length of runs of True down each column, and P(True at t+1 | True at t)."""
    padded = np.zeros((slow.shape[0] + 2, slow.shape[1]), dtype=np.int8)
    padded[1:-1] = slow
    edges = np.diff(padded, axis=0)
    starts, ends = np.nonzero(edges.T == 1), np.nonzero(edges.T == -1)
    lengths = ends[1] - starts[1]
    mean_run = float(lengths.mean()) if lengths.size else np.nan
    before = slow[:-1].sum()
    stay = float((slow[1:] & slow[:-1]).sum() / before) if before else np.nan
    return mean_run, stay


def trace_statistics(values: np.ndarray, slow_threshold: float) -> np.ndarray:
    """Return the check's statistics (:data:`ROWS`) of one (rounds × workers) trace."""
    ordered = np.sort(values, axis=1)
    quantiles = np.quantile(values, [0.5, 0.9, 0.99])
    orders = [ordered[:, k - 1].mean() for k in order_ks(values.shape[1])]
    run, stay = _slow_runs(values > slow_threshold)
    spread = float(values.mean(axis=0).std())
    return np.array([*quantiles, *orders, run, stay, spread])


def predicted_statistics(sample: Callable[[np.random.Generator], np.ndarray], slow_threshold: float,
                         replicates: int, seed: int) -> np.ndarray:
    """Return the mean statistics over ``replicates`` synthetic traces drawn by ``sample(rng)``."""
    rng = np.random.default_rng(seed)
    rows = np.array([trace_statistics(sample(rng), slow_threshold) for _ in range(replicates)])
    with np.errstate(invalid="ignore"):
        return np.nanmean(rows, axis=0) if np.isfinite(rows).any() else rows[0]


@dataclass(frozen=True)
class CheckTable:
    """Observed vs model vs baseline statistics and their relative errors."""

    observed: np.ndarray
    model: np.ndarray
    baseline: np.ndarray

    @staticmethod
    def _relative(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(obs != 0, np.abs(pred - obs) / np.abs(obs), np.where(pred == obs, 0.0, np.inf))

    @property
    def model_error(self) -> np.ndarray:
        """Relative error of the model per row."""
        return self._relative(self.model, self.observed)

    @property
    def baseline_error(self) -> np.ndarray:
        """Relative error of the i.i.d. baseline per row."""
        return self._relative(self.baseline, self.observed)

    def headline(self) -> dict[str, float]:
        """Return median and worst relative errors over the quantile and order-statistic rows."""
        n = len(HEADLINE)
        return {"model_median": float(np.nanmedian(self.model_error[:n])),
                "model_worst": float(np.nanmax(self.model_error[:n])),
                "baseline_median": float(np.nanmedian(self.baseline_error[:n])),
                "baseline_worst": float(np.nanmax(self.baseline_error[:n])),
                "model_worst_any_row": float(np.nanmax(self.model_error))}

    def format(self) -> str:
        """Return the table as aligned text, a row per statistic and the headline below."""
        lines = [f"{'statistic':<24}{'held-out':>11}{'model':>11}{'err':>8}{'iid':>11}{'err':>8}"]
        for i, row in enumerate(ROWS):
            lines.append(f"{row:<24}{self.observed[i]:>11.4g}{self.model[i]:>11.4g}{_pct(self.model_error[i]):>8}"
                         f"{self.baseline[i]:>11.4g}{_pct(self.baseline_error[i]):>8}")
        h = self.headline()
        lines.append(f"quantiles + order statistics: median error model {_pct(h['model_median'])}, "
                     f"iid {_pct(h['baseline_median'])}; worst model {_pct(h['model_worst'])}, "
                     f"iid {_pct(h['baseline_worst'])}; worst model row of all {_pct(h['model_worst_any_row'])}")
        return "\n".join(lines)


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}%"
