"""``mpigc plot``: every healthy run's figures, one file per figure and format, and an ``index.html``."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mpigc.errors import InputError
from mpigc.viz import figures, workers
from mpigc.viz.html import write_index
from mpigc.viz.runs import PlotRun, load_runs, twins, unique_stems
from mpigc.viz.style import pyplot, save

#: what each kind of figure shows (index.html's captions)
CAPTIONS = {
    "latency": "Distribution of the round latency (ECDF); dashed: median, dotted: 95th percentile. "
               "An MPI run and a simulation of the same config are drawn side by side.",
    "rounds": "Latency of every round, coloured by the decode's status; below, training and held-out "
              "loss against the run time (sum of round latencies) when recorded.",
    "workers": "Busy time of every worker in every round; failed (silent) workers in black, "
               "wait-out rounds marked above.",
    "messages": "Messages per round: heard in time and used by the decode, stale (arrived after their round), "
                "and chunks done as rank 0 knew at the decode.",
    "jobs": "Sequential scheme: jobs decoded against run time; lost jobs counted in the legend.",
}


@dataclass
class Figure:
    """One figure written: its kind, the runs it shows, and its files (names inside the output directory)."""

    kind: str
    runs: list[str]
    files: list[str] = field(default_factory=list)


@dataclass
class PlotResult:
    """What :func:`make_plots` wrote: the runs drawn, the damaged ones skipped, the figures, the index."""

    runs: list[PlotRun]
    damaged: list
    figures: list[Figure]
    index: Path


def output_dir(out: str | os.PathLike) -> Path:
    """Create the output directory (its parent must exist).

    Raises
    ------
    InputError
        Keyed ``--out`` if it is a file, its parent is missing, or it cannot be written.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError("--out", f"{path} exists and is not a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not path.exists() and not parent.is_dir():
        raise InputError("--out", f"directory {parent} does not exist")
    try:
        path.mkdir(exist_ok=True)
    except OSError as error:
        raise InputError("--out", f"cannot create {path}: {error.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError("--out", f"directory {path} is not writable")
    return path


def _plans(run: PlotRun) -> list[tuple[str, Callable[[PlotRun], Any]]]:
    """List the figures of one run beyond its latency distribution, by the tables it has."""
    out: list[tuple[str, Callable[[PlotRun], Any]]] = [("rounds", figures.rounds_figure)]
    if "workers" in run.tables and run.tables["workers"].size:
        out.append(("workers", workers.heatmap_figure))
    if "events" in run.tables:
        out.append(("messages", workers.messages_figure))
    if run.sequential and "jobs" in run.tables:
        out.append(("jobs", workers.jobs_figure))
    return out


def make_plots(path: str | os.PathLike, names: Sequence[str] | None, out: str | os.PathLike,
               formats: Sequence[str] = ("png",), warn: TextIO | None = None) -> PlotResult:
    """Draw every healthy run of ``path`` (or the runs ``names``) into ``out``; write ``out/index.html``.

    Damaged runs get one ``warning:`` line each on ``warn`` (default stderr)
    and are skipped; runs of a running job's side files are drawn as far as
    they have been written.

    Raises
    ------
    InputError
        If matplotlib is missing, the file cannot be read, a name is not a
        run of it, ``out`` cannot be written, or no run is healthy.
    """
    warn = sys.stderr if warn is None else warn
    pyplot()                                        # no matplotlib: say so before reading anything
    loaded = load_runs(path, names)
    for damaged in loaded.damaged:
        print(f"warning: {os.fspath(path)}: run {damaged.name!r} is damaged ({damaged.reason}); skipped",
              file=warn, flush=True)
    for run in [r for r in loaded.runs if not r.tables["rounds"].size]:   # e.g. a job that has just started
        print(f"warning: {os.fspath(path)}: run {run.name!r} has no rounds yet; skipped", file=warn, flush=True)
        loaded.runs.remove(run)
    if not loaded.runs:
        raise InputError(os.fspath(path), "no healthy run with rounds to plot"
                         + (" (damaged: " + "; ".join(map(str, loaded.damaged)) + ")" if loaded.damaged else ""))
    directory = output_dir(out)
    stems = unique_stems([r.name for r in loaded.runs])
    drawn: list[Figure] = []
    for group in twins(loaded.runs):
        stem = "-".join(stems[r.name] for r in group) + "-latency"
        drawn.append(Figure("latency", [r.name for r in group],
                            save(figures.ecdf_figure(group), directory, stem, formats)))
    for run in loaded.runs:
        for kind, draw in _plans(run):
            drawn.append(Figure(kind, [run.name], save(draw(run), directory, f"{stems[run.name]}-{kind}", formats)))
    index = write_index(directory, path, loaded, drawn, CAPTIONS)
    return PlotResult(loaded.runs, loaded.damaged, drawn, index)
