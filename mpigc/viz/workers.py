"""Worker-level figures: busy time per worker and round, messages per round, jobs of sequential schemes.

Each function draws one figure and returns it (unsaved). Long runs are drawn
with their rounds binned (at most :data:`MAX_COLUMNS` columns in the heat
map), so 10 000 rounds draw as fast as 1 000; the colour bar says so.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from mpigc.viz.runs import PlotRun
from mpigc.viz.style import FAILED_COLOR, WAITOUT_COLOR, pyplot, title

#: most heat-map columns drawn; longer runs average consecutive rounds into one column
MAX_COLUMNS = 2000
#: most points of a per-round line; longer runs draw each bin's mean and its min-max band
MAX_POINTS = 1500


def busy_matrix(run: PlotRun) -> tuple[np.ndarray, np.ndarray, int]:
    """Busy time (ms; NaN where no row) and failures as (workers, rounds) matrices, and the first round.

    Rows outside the rounds table's range are left out; a (round, worker)
    with several rows keeps the largest busy time.
    """
    rounds = np.asarray(run.tables["rounds"]["round"])
    table = run.tables["workers"]
    r0 = int(rounds.min()) if rounds.size else 0
    n = int(rounds.max()) - r0 + 1 if rounds.size else 0
    m = int(table["worker"].max()) + 1 if table.size else int(run.attrs.get("workers", 0) or 0)
    m = max(m, int(run.attrs.get("workers", 0) or 0))
    col = np.asarray(table["round"], dtype=np.int64) - r0
    row = np.asarray(table["worker"], dtype=np.int64)
    keep = (col >= 0) & (col < n) & (row >= 0)
    col, row = col[keep], row[keep]
    busy = np.full((m, n), -np.inf)
    np.maximum.at(busy, (row, col), np.asarray(table["busy"], dtype=float)[keep] * 1e3)
    busy[np.isneginf(busy)] = np.nan
    failed = np.zeros((m, n), dtype=bool)
    failed[row, col] |= np.asarray(table["failed"], dtype=bool)[keep]
    return busy, failed, r0


def _bin_columns(busy: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Average ``busy`` over runs of consecutive rounds (NaN-aware) to at most MAX_COLUMNS; failed if any."""
    m, n = busy.shape
    k = max(1, math.ceil(n / MAX_COLUMNS))
    if k == 1:
        return busy, failed, 1
    pad = (-n) % k
    b = np.pad(busy, ((0, 0), (0, pad)), constant_values=np.nan).reshape(m, -1, k)
    f = np.pad(failed, ((0, 0), (0, pad))).reshape(m, -1, k)
    counts = np.sum(~np.isnan(b), axis=2)
    sums = np.nansum(b, axis=2)
    mean = np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)
    return mean, f.any(axis=2), k


def heatmap_figure(run: PlotRun) -> Any:
    """Busy time per worker and round (ms), failed workers in black, wait-out rounds marked above."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    busy, failed, r0 = busy_matrix(run)
    shown, shown_failed, k = _bin_columns(busy, failed)
    m, n = busy.shape
    fig, ax = plt.subplots(figsize=(8.5, 2.2 + min(m, 64) * 0.045), layout="constrained")
    extent = (r0 - 0.5, r0 + shown.shape[1] * k - 0.5, m - 0.5, -0.5)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", interpolation="nearest", cmap=cmap,
                      extent=extent)
    handles = [Patch(color="#dddddd", label="no row (worker not started)")] if np.isnan(shown).any() else []
    if shown_failed.any():
        ax.imshow(np.ma.masked_where(~shown_failed, np.ones(shown_failed.shape)), aspect="auto",
                  interpolation="nearest", cmap=ListedColormap([FAILED_COLOR]), extent=extent)
        handles.append(Patch(color=FAILED_COLOR, label=f"failed (silent): {int(failed.sum())} worker-rounds"))
    rounds = run.tables["rounds"]
    if "waitout" in (rounds.dtype.names or ()) and np.any(rounds["waitout"] != 0):
        wait = np.asarray(rounds["round"])[np.asarray(rounds["waitout"]) != 0]
        ax.plot(wait, np.full(wait.size, 1.0), "v", color=WAITOUT_COLOR, ms=4, clip_on=False,
                transform=ax.get_xaxis_transform())
        handles.append(plt.Line2D([], [], ls="", marker="v", color=WAITOUT_COLOR, label=f"wait-out: {wait.size}"))
    per = f", mean of {k} rounds per column" if k > 1 else ""
    fig.colorbar(image, ax=ax, label=f"busy time (ms{per})", pad=0.01)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("worker")
    ax.set_title(f"{title(run)} — busy time per worker and round ({run.clock})", fontsize=9, pad=9)
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.2 if m < 20 else -0.12),
                  ncol=len(handles), frameon=False)
    return fig


def _series(ax: Any, x: np.ndarray, y: np.ndarray, label: str | None = None, **style: Any) -> int:
    """Draw a per-round count; past MAX_POINTS rounds, bins of k rounds (mean line, min-max band). Return k."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    k = max(1, math.ceil(x.size / MAX_POINTS))
    if k == 1:
        ax.plot(x, y, label=label, drawstyle="steps-mid", lw=0.9, **style)
        return 1
    n = x.size // k * k
    xs, ys = x[:n].reshape(-1, k).mean(axis=1), y[:n].reshape(-1, k)
    ax.fill_between(xs, ys.min(axis=1), ys.max(axis=1), alpha=0.25, lw=0, color=style.get("color"))
    ax.plot(xs, ys.mean(axis=1), label=label, lw=0.9, **style)
    return k


def messages_figure(run: PlotRun) -> Any:
    """Per round: messages heard in time and used by the decode, stale messages, chunks done (detail "full").

    A stale message counts against the round it was computed for (its
    ``round`` in the events table), whenever rank 0 heard it.
    """
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    rounds, events = run.tables["rounds"], run.tables["events"]
    rnd = np.asarray(rounds["round"])
    r0 = int(rnd.min()) if rnd.size else 0
    n = int(rnd.max()) - r0 + 1 if rnd.size else 0

    def per_round(mask: np.ndarray) -> np.ndarray:
        col = np.asarray(events["round"][mask], dtype=np.int64) - r0
        return np.bincount(col[(col >= 0) & (col < n)], minlength=n)

    axis = np.arange(r0, r0 + n)
    used = per_round(np.asarray(events["used"], dtype=bool))
    stale = per_round(np.asarray(events["stale"], dtype=bool))
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.2), sharex=True, layout="constrained")
    k = _series(axes[0], rnd, rounds["messages"], "heard in time", color=run.color)
    _series(axes[0], axis, used, "used by the decode", color="#444444", ls="--")
    axes[0].set_ylabel("messages")
    axes[0].legend(fontsize=8, frameon=False, loc="lower right")
    _series(axes[1], axis, stale, color="#d62728")
    axes[1].set_ylabel("stale messages")
    _series(axes[2], rnd, rounds["chunks_done"], color=run.color)
    axes[2].set_ylabel("chunks done\n(heard at decode)")
    axes[2].set_xlabel("round" + (f" (lines: mean of {k} rounds; band: their min to max)" if k > 1 else ""))

    for ax in axes:                                     # counts: from 0, whole numbers
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]) * 1.05)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if not stale.any():
        axes[1].text(0.5, 0.5, "no stale message", ha="center", va="center", transform=axes[1].transAxes,
                     color="#777777")
    axes[0].set_title(f"{title(run)} — messages per round (stale: {int(stale.sum())} in all)", fontsize=9)
    return fig


def jobs_figure(run: PlotRun) -> Any:
    """Sequential schemes: decoded jobs against run time (s), lost jobs counted, wait-outs marked."""
    plt = pyplot()
    jobs, rounds = run.tables["jobs"], run.tables["rounds"]
    done = np.asarray(jobs["round_done"]) >= 0
    t = np.sort(np.asarray(jobs["t_done"], dtype=float)[done])
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    ax.step(np.concatenate([[0.0], t]), np.arange(t.size + 1), where="post", color=run.color, lw=1.6,
            label=f"decoded jobs ({t.size})")
    lost = int((~done).sum())
    total = int(jobs.size)
    ax.axhline(total, color="#7f7f7f", ls=":", lw=1, label=f"jobs in the table ({total}; lost {lost})")
    if "waitout" in (rounds.dtype.names or ()) and np.any(rounds["waitout"] != 0):
        clock = np.cumsum(np.asarray(rounds["latency"], dtype=float))
        wait = np.asarray(rounds["waitout"]) != 0
        ax.plot(clock[wait], np.full(int(wait.sum()), 1.0), "v", color=WAITOUT_COLOR, ms=4, clip_on=False,
                transform=ax.get_xaxis_transform(), label=f"wait-out rounds ({int(wait.sum())}, at their end)")
    ax.set_xlabel(f"run time (s; {run.clock})")
    ax.set_ylabel("jobs completed")
    ax.set_title(f"{title(run)} — job completion", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.grid(alpha=0.3)
    return fig
