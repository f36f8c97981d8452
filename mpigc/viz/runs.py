"""The runs a figure or a timeline shows: read through :mod:`mpigc.results`, with their key parameters.

:func:`load_runs` keeps the healthy runs of a file (a running job's side
files included, as :func:`mpigc.results.scan_runs` reads them) and names the
damaged ones; each :class:`PlotRun` knows its backend, its detail level, its
colour and the parameters ``index.html`` lists.
"""
from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mpigc import results

#: matplotlib's "tab10" colours (hex, so choosing one needs no matplotlib): one per run, in file order
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
              "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
#: run keys that differ between an MPI run and a simulation of the same experiment (defaults differ per backend)
_BACKEND_KEYS = {"run": ("detail", "flush_every")}


@dataclass
class PlotRun:
    """One healthy run of a result file, ready to be drawn.

    Attributes
    ----------
    name, attrs, tables : as read by :func:`mpigc.results.scan_runs`.
    config : dict
        The resolved config stored with the run (``attrs["config"]``, TOML), ``{}`` if absent or unreadable.
    code : dict
        This run's ``[code]`` entry: the base table with the entry's inline overrides.
    color : str
        The run's colour in every figure (hex).
    """

    name: str
    attrs: dict
    tables: dict[str, np.ndarray]
    config: dict = field(repr=False)
    code: dict = field(repr=False)
    color: str = RUN_COLORS[0]

    @property
    def backend(self) -> str:
        """``"mpi"``, ``"sim"``, or ``"?"`` when not recorded."""
        return str(self.attrs.get("backend", "?"))

    @property
    def scheme(self) -> str:
        """The scheme name (``attrs["scheme"]``)."""
        return str(self.attrs.get("scheme", self.code.get("scheme", "?")))

    @property
    def sequential(self) -> bool:
        """Whether the run is of a sequential (SGC) scheme: it has a ``jobs`` table."""
        return "jobs" in self.tables or self.attrs.get("regime") == "sequential"

    @property
    def detail(self) -> str:
        """The detail level the tables show: ``"full"`` (events), ``"workers"`` or ``"rounds"``."""
        if "events" in self.tables:
            return "full"
        return "workers" if "workers" in self.tables else "rounds"

    @property
    def clock(self) -> str:
        """How the run's times were measured: rank 0's wall clock, or the simulator's virtual time."""
        return "simulator, virtual time" if self.backend == "sim" else "MPI, rank 0's wall clock"

    def params(self) -> dict[str, Any]:
        """Key parameters, in the order ``index.html`` lists them (absent ones left out)."""
        rounds = self.tables.get("rounds")
        out = {
            "scheme": self.scheme,
            "workers": self.attrs.get("workers", self.code.get("workers")),
            "load": self.attrs.get("load", self.code.get("load")),
            "backend": self.backend,
            "seed": self.attrs.get("seed", self.config.get("run", {}).get("seed")),
            "mpigc version": self.attrs.get("mpigc_version"),
            "rounds": None if rounds is None else int(rounds.size),
            "detail": self.detail,
            "straggler model": self.config.get("delays", {}).get("model"),
            "MPI library": self.attrs.get("mpi_library"),
            "host": self.attrs.get("host"),
            "created": self.attrs.get("created"),
            "interrupted": self.attrs.get("interrupted"),
        }
        return {k: v for k, v in out.items() if v not in (None, "")}

    def twin_key(self) -> str:
        """Return the experiment this run belongs to: its config without the backend's own defaults, and its entry.

        The entry is known by its ``[code]`` table and scheme. An MPI run and a
        simulation of the same config and entry share it.
        """
        config = {table: dict(values) if isinstance(values, dict) else values
                  for table, values in self.config.items()}
        for table, keys in _BACKEND_KEYS.items():
            for key in keys:
                config.get(table, {}).pop(key, None)
        # the entry by its resolved [code] table and scheme, not its label: the backends label entries differently
        return json.dumps([config, self.code, self.scheme], sort_keys=True, default=str)


@dataclass
class Loaded:
    """What :func:`load_runs` found: healthy runs (file order) and damaged ones (``mpigc.results.DamagedRun``)."""

    runs: list[PlotRun]
    damaged: list
    running: int


def entry_code(config: dict, entry: str | None) -> dict:
    """Resolve the ``[code]`` entry labelled ``entry`` of a parsed config (its inline overrides applied)."""
    code = dict(config.get("code", {}))
    schemes = code.pop("scheme", None)
    if not isinstance(schemes, list):
        return {**code, "scheme": schemes} if schemes is not None else code
    items = [{"scheme": s} if isinstance(s, str) else dict(s) for s in schemes]
    for item in items:
        if (item.get("name") or item.get("scheme")) == entry:
            return {**code, **item}
    return {**code, **items[0]} if items else code


def load_runs(path: str | os.PathLike, names: Sequence[str] | None = None) -> Loaded:
    """Read the healthy runs of a result file (and of a running job's side files) and name the damaged ones.

    A run whose stored config is not TOML counts as damaged. Colours follow
    the file's order, so a run keeps its colour whichever runs are chosen.

    Raises
    ------
    mpigc.errors.InputError
        If the file cannot be read as a result file, or lacks one of ``names``.
    """
    order = {name: j for j, name in enumerate(results.run_names(path))}
    scan = results.scan_runs(path, names, require=["rounds"])
    runs, damaged = [], list(scan.damaged)
    for run in scan.runs:
        config: dict = {}
        text = run.attrs.get("config")
        if isinstance(text, str) and text:
            try:
                config = tomllib.loads(text)
            except tomllib.TOMLDecodeError as error:
                damaged.append(results.DamagedRun(run.name, f"config is not valid TOML: {error}"))
                continue
        color = RUN_COLORS[order.get(run.name, len(runs)) % len(RUN_COLORS)]
        runs.append(PlotRun(run.name, run.attrs, run.tables, config,
                            entry_code(config, run.attrs.get("entry")), color))
    return Loaded(runs, damaged, len(results.running_files(path)))


def twins(runs: Sequence[PlotRun]) -> list[list[PlotRun]]:
    """Group runs of the same experiment (:meth:`PlotRun.twin_key`), in first-seen order.

    A group holds more than one run only when its runs come from more than one
    backend (an MPI run and its simulation); repeats on one backend stay apart.
    """
    groups: dict[str, list[PlotRun]] = {}
    for run in runs:
        groups.setdefault(run.twin_key(), []).append(run)
    out: list[list[PlotRun]] = []
    for members in groups.values():
        if len({r.backend for r in members}) > 1:
            out.append(members)
        else:
            out += [[r] for r in members]
    out.sort(key=lambda group: runs.index(group[0]))
    return out


def file_stem(name: str) -> str:
    """Return a file-name stem for a run name: letters, digits, ``.``, ``_`` and ``-`` kept, anything else ``_``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"
    return stem[:80]


def unique_stems(names: Sequence[str]) -> dict[str, str]:
    """File-name stems for run names, made distinct (``-2``, ``-3``...) when two names sanitise alike."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        stem, k = file_stem(name), 2
        base = stem
        while stem.lower() in taken:        # case-insensitive file systems would merge them
            stem, k = f"{base}-{k}", k + 1
        taken.add(stem.lower())
        out[name] = stem
    return out
