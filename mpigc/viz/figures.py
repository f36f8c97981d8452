"""Round-level figures: the latency distribution (ECDF) and latency, status and loss per round.

Each function draws one figure and returns it (unsaved); :mod:`mpigc.viz.plot`
names and saves it. Latencies are drawn in ms, run time in s.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mpigc.viz.runs import PlotRun
from mpigc.viz.style import WAITOUT_COLOR, pyplot, status_style, title


def latency_ms(run: PlotRun) -> np.ndarray:
    """Return the run's round latencies in ms (finite ones only)."""
    lat = np.asarray(run.tables["rounds"]["latency"], dtype=float) * 1e3
    return lat[np.isfinite(lat)]


def ecdf_figure(group: Sequence[PlotRun]) -> Any:
    """ECDF of the round latency, one panel per run (an MPI run and its simulation side by side).

    The median and the 95th percentile are marked and given in the legend.
    Panels share their axes, so the backends compare at a glance.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(group), figsize=(4.6 * len(group) + 0.6, 3.6), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    every = np.concatenate([latency_ms(r) for r in group])
    log = every.size > 0 and every.min() > 0 and every.max() / every.min() > 100
    for ax, run in zip(axes[0], group):
        lat = np.sort(latency_ms(run))
        if lat.size:
            ax.step(lat, np.arange(1, lat.size + 1) / lat.size, where="post", color=run.color, lw=1.6,
                    label=f"{lat.size} rounds")
            median, p95 = np.percentile(lat, [50, 95])
            ax.axvline(median, color=run.color, ls="--", lw=1, label=f"median {median:.4g} ms")
            ax.axvline(p95, color=run.color, ls=":", lw=1.2, label=f"p95 {p95:.4g} ms")
            ax.legend(loc="lower right", fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, "no finite latency", ha="center", transform=ax.transAxes)
        if log:
            ax.set_xscale("log")
        ax.set_title(f"{run.name} ({run.clock})", fontsize=9)
        ax.set_xlabel("round latency (ms)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of rounds ≤ latency")
    axes[0][0].set_ylim(0, 1.02)
    head = f"latency distribution: {group[0].scheme}, {group[0].attrs.get('workers', '?')} workers"
    fig.suptitle(head + (" — MPI and simulator" if len(group) > 1 else ""), fontsize=10)
    return fig


def _has(rounds: np.ndarray, field: str) -> bool:
    """Whether a rounds field exists and holds a finite value."""
    return field in (rounds.dtype.names or ()) and bool(np.isfinite(np.asarray(rounds[field], dtype=float)).any())


def rounds_figure(run: PlotRun) -> Any:
    """Latency per round coloured by status, wait-outs marked; loss and eval loss against run time if recorded.

    Run time is the sum of the latencies of the rounds so far (the rounds'
    clock: rank 0's wall clock on MPI, virtual time in the simulator; time
    between rounds, e.g. evaluation, is on no round's clock).
    """
    plt = pyplot()
    rounds = run.tables["rounds"]
    losses = [f for f in ("loss", "eval_loss") if _has(rounds, f)]
    fig, axes = plt.subplots(2 if losses else 1, 1, figsize=(8, 5.6 if losses else 3.4), squeeze=False,
                             layout="constrained")
    ax = axes[0][0]
    rnd = np.asarray(rounds["round"])
    lat = np.asarray(rounds["latency"], dtype=float) * 1e3
    status = np.asarray(rounds["status"])
    size = 10 if rnd.size < 500 else (4 if rnd.size < 5000 else 1.5)
    for code in np.unique(status):
        label, color = status_style(code)
        pick = status == code
        ax.scatter(rnd[pick], lat[pick], s=size, color=color, lw=0, rasterized=True,
                   label=f"{label} ({int(pick.sum())})")
    if "waitout" in (rounds.dtype.names or ()) and np.any(rounds["waitout"] != 0):
        wait = np.asarray(rounds["waitout"]) != 0
        ax.plot(rnd[wait], np.full(int(wait.sum()), 1.0), "v", color=WAITOUT_COLOR, ms=4,
                transform=ax.get_xaxis_transform(), clip_on=False, label=f"wait-out ({int(wait.sum())})")
    ax.set_xlabel("round")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{title(run)} — latency per round ({run.clock})", fontsize=9)
    ax.legend(fontsize=8, markerscale=2.5 if size < 5 else 1.2, loc="upper right", frameon=True, framealpha=0.8)
    ax.grid(alpha=0.3)
    if losses:
        _loss_axes(axes[1][0], run, rounds, losses)
    return fig


def _loss_axes(ax: Any, run: PlotRun, rounds: np.ndarray, fields: Sequence[str]) -> None:
    """Training loss (line) and held-out loss (markers) against the run's round clock, in s."""
    clock = np.cumsum(np.where(np.isfinite(rounds["latency"]), rounds["latency"], 0.0))
    for field in fields:
        y = np.asarray(rounds[field], dtype=float)
        ok = np.isfinite(y)
        if field == "loss":
            ax.plot(clock[ok], y[ok], color=run.color, lw=1.2, label="training loss (decoded rounds)")
        else:
            ax.plot(clock[ok], y[ok], "o", color="#444444", ms=3.5, label="eval loss (held-out set)")
    values = np.concatenate([np.asarray(rounds[f], dtype=float) for f in fields])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > 50:
        ax.set_yscale("log")
    target = run.attrs.get("target_loss")
    if isinstance(target, (int, float)) and np.isfinite(target):
        ax.axhline(float(target), color="#7f7f7f", ls="--", lw=1, label=f"target loss {float(target):g}")
    ax.set_xlabel(f"run time (s, sum of round latencies; {run.clock})")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
