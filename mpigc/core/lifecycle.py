"""One run's lifecycle, the same for every backend (sim, mpi) and regime (single-round, sequential).

A run is planned once (:func:`mpigc.core.preflight.check_run` returns the
:class:`~mpigc.core.entries.RunPlan`), then :class:`RunLifecycle` does
everything around the rounds of each entry: the run's name, the result file
and its lock, attributes and provenance, the progress line, when rows are
flushed, totals and summary, and what a signal leaves behind (the running
run marked ``interrupted`` by :meth:`mpigc.results.ResultFile.mark_interrupted`,
the file merged exactly once). A backend supplies only the rounds: a
:class:`Rounds` subclass per regime whose :meth:`Rounds.batches` yields
rows. See ``docs/lifecycle.md``.
"""
from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from mpigc import interrupts, report, results
from mpigc.core.entries import Entry, RunPlan
from mpigc.core.progress import progress_printer
from mpigc.core.provenance import run_attrs
from mpigc.core.sgc_tables import sequential_stats
from mpigc.core.tables import RoundTables, summary_attrs, tables_for
from mpigc.errors import PluginFailure

#: a summary row of a run: (run name, scheme, statistics)
Summary = tuple[str, str, dict]


class Rounds(ABC):
    """The rounds of one entry as one backend runs them in one regime; all a backend supplies.

    Subclass :class:`SingleRound` or :class:`Sequential` (the regimes) and
    implement :meth:`batches`; override :meth:`prepare`, :meth:`finish` and
    :meth:`attrs` where the backend needs them.
    """

    def __init__(self, plan: RunPlan, entry: Entry) -> None:
        self.plan, self.entry, self.config = plan, entry, plan.config

    # -- what the regime decides
    @abstractmethod
    def tables(self) -> tuple[str, ...]:
        """Return the tables this run writes."""

    @property
    @abstractmethod
    def total(self) -> int:
        """Rounds the run will have (for the progress line)."""

    @abstractmethod
    def describe(self) -> str:
        """Return what the start line says after the scheme, e.g. ``"m = 8, 100 rounds"``."""

    @abstractmethod
    def stats(self, rounds: np.ndarray, jobs: np.ndarray) -> dict:
        """Return the run's summary statistics from its ``rounds`` (and ``jobs``) rows."""

    def closing_line(self, label: str, stats: dict) -> str | None:
        """Return a line to print when the entry is done (None: none)."""
        return None

    # -- what the backend does
    def attrs(self) -> dict:
        """Return attributes beyond the provenance every run carries (the plan, evaluation, models...)."""
        return {}

    def prepare(self) -> None:
        """Get ready for round 0 (off the clock), after the run exists in the file."""
        return None

    @abstractmethod
    def batches(self) -> Iterator[RoundTables]:
        """Run the rounds; yield their rows, a batch at a time (each ``rounds`` row is one round)."""

    def finish(self) -> RoundTables | None:
        """Return rows still to come after the last round (off the loop's clock), e.g. late reports."""
        return None


class SingleRound(Rounds):
    """The single-round regime: every round decodes its own gradient."""

    def tables(self) -> tuple[str, ...]:
        """Return the ``run.detail`` level's tables."""
        return tables_for(self.config.run.detail)

    @property
    def total(self) -> int:
        """``run.rounds``."""
        return self.config.run.rounds

    def describe(self) -> str:
        """Return ``m = M, R rounds``."""
        return f"m = {self.plan.workers}, {self.config.run.rounds} rounds"

    def stats(self, rounds: np.ndarray, jobs: np.ndarray) -> dict:
        """Return the single-round summary (time to ``run.target_loss`` included)."""
        return report.summarize(rounds, self.config.run.target_loss)


class Sequential(Rounds):
    """The sequential regime (docs/protocols.md#sequential-schemes): J jobs over J + T_seq rounds."""

    def tables(self) -> tuple[str, ...]:
        """Return the ``run.detail`` level's tables and ``jobs``."""
        return tables_for(self.config.run.detail, sgc=True)

    @property
    def total(self) -> int:
        """J + T_seq rounds for J = ``run.rounds`` jobs."""
        return self.config.run.rounds + self.entry.scheme.T

    def describe(self) -> str:
        """Return ``m = M, J jobs, T_seq = T``."""
        return f"m = {self.plan.workers}, {self.config.run.rounds} jobs, T_seq = {self.entry.scheme.T}"

    def attrs(self) -> dict:
        """Return the models trained together, T_seq, the load and ``regime = "sequential"``."""
        scheme = self.entry.scheme
        return {"models": self.entry.models, "T_seq": scheme.T, "load": scheme.load, "regime": "sequential"}

    def stats(self, rounds: np.ndarray, jobs: np.ndarray) -> dict:
        """Return the single-round summary plus total runtime, wait-outs, jobs decoded and lost."""
        return sequential_stats(rounds, jobs)

    def closing_line(self, label: str, stats: dict) -> str | None:
        """Return the run's totals: runtime, wait-outs, jobs decoded and lost."""
        return (f"  {label}: total {stats['total_s']:.6g} s over {stats['rounds']} rounds, {stats['waitouts']} "
                f"wait-outs ({stats['safety_waitouts']} safety), {stats['jobs_done']} jobs decoded, "
                f"{stats['jobs_lost']} lost")


@dataclass
class Backend:
    """What a backend adds to every run: its name, its start-line verb, provenance, write cadence.

    ``timed``: record rank 0's own CPU and wall time of the round loop
    (``master_cpu_s``, ``master_wall_s``, and the summary's ``loop``, wall
    time per round). ``min_interval``: seconds between two writes of a run.
    """

    name: str
    verb: str
    provenance: dict = field(default_factory=dict)
    timed: bool = False
    min_interval: float = 0.0


class RunLifecycle:
    """Drives the entries of one planned run into one result file (or none); see the module docstring.

    Use as: ``open()``, then :meth:`run` per entry, then :meth:`close`; on
    :class:`~mpigc.interrupts.Interrupted` from any of them,
    :meth:`interrupted` (instead of ``close``).
    """

    def __init__(self, plan: RunPlan, backend: Backend, out: str | None, log: TextIO = sys.stderr) -> None:
        self.plan, self.backend, self.log = plan, backend, log
        self.file = (results.ResultFile(out, keep_open=True, min_interval=backend.min_interval)
                     if out else None)
        self.summaries: list[Summary] = []
        self._running: results.RunWriter | None = None   # the run a signal now would interrupt
        self._last: results.RunWriter | None = None      # the newest run: the final merge completes it
        self._closing = False
        self._closed = False

    def open(self) -> None:
        """Take the result file's lock now: another job writing there is refused before any work."""
        if self.file is not None:
            self.file.acquire()

    def run(self, rounds: Rounds) -> Summary:
        """Run one entry's rounds into a new run; return (and keep) its summary row."""
        entry, config = rounds.entry, self.plan.config
        label = self.plan.label(entry)
        attrs = rounds.attrs()
        if attrs.get("eval_set") == "training":
            print(f"note: {config.workload.dataset} has no X_eval/y_eval: evaluating on the training set",
                  file=self.log, flush=True)
        tables = rounds.tables()
        writer = None
        if self.file is not None:
            provenance = run_attrs(self.backend.name, config, entry.code, entry.label, self.plan.workers,
                                   **self.backend.provenance)
            writer = self.file.new_run(label, {**provenance, **attrs}, tables)
            label = writer.name
            self._running = self._last = writer
        rounds.prepare()
        print(f"{self.backend.verb} {label} ({entry.code.scheme}, {rounds.describe()})", file=self.log, flush=True)
        sink = _Sink(writer, tables, config.run.flush_every)
        progress = progress_printer(label, rounds.total, self.log)
        cpu0, wall0 = time.process_time(), time.perf_counter()  # rank 0's own cost of the round loop
        try:
            for batch in rounds.batches():
                sink.store(batch)
                progress(sink.done)
        except interrupts.Interrupted as stop:
            self._totals(rounds, sink, cpu0, wall0)
            if self.file is not None:
                self.file.mark_interrupted(writer, stop.name)
            raise
        except PluginFailure:   # the rows so far are kept, the run marked as failed (not left to be "killed")
            self._totals(rounds, sink, cpu0, wall0)
            if self.file is not None and writer is not None:
                self.file.mark_interrupted(writer, "failed")
            raise
        stats = self._totals(rounds, sink, cpu0, wall0)  # the loop's time, before the final drain
        if writer is not None:
            writer.flush(force=True)  # every round is on disk before the drain, which may wait for a frozen worker
        sink.store(rounds.finish())
        if writer is not None:
            writer.flush(force=True)
        line = rounds.closing_line(label, stats)
        if line:
            print(line, file=self.log, flush=True)
        self._running = None
        self.summaries.append((label, entry.code.scheme, stats))
        return self.summaries[-1]

    def _totals(self, rounds: Rounds, sink: _Sink, cpu0: float, wall0: float) -> dict:
        """Return the summary so far, also set as the run's attributes."""
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        done = sink.collected("rounds")
        stats = rounds.stats(done, sink.collected("jobs"))
        timing = {}
        if self.backend.timed:
            stats["loop"] = wall / done.size if done.size else float("nan")
            timing = {"master_cpu_s": cpu, "master_wall_s": wall}
        if sink.writer is not None:
            sink.writer.set_attrs(**summary_attrs(stats), **timing)
        return stats

    def close(self) -> None:
        """Merge every run into the result file (once, even if a signal comes meanwhile) and release it."""
        if self.file is not None and not self._closed:
            self._closing = self._closed = True   # a failed merge is not tried twice
            self.file.close(mark_on_signal=self._last)

    def interrupted(self, stop: interrupts.Interrupted) -> str:
        """After a signal: mark the run it stopped, merge what is written, release; return a note for the user."""
        if self.file is None:
            return ""
        # the run being written, or during the final merge the newest run (the merge is its last step)
        marked = self._running or (self._last if self._closing else None)
        try:
            if marked is not None:
                self.file.mark_interrupted(marked, stop.name)
        finally:
            self.file.close(mark_on_signal=marked)
        note = f"; results written to {self.file.path}"
        if marked is not None:
            note += f" ({marked.name}: {marked.written.get('rounds', 0)} round(s), marked interrupted)"
        return note


class _Sink:
    """Where a run's rows go: the run writer (flushed every ``flush_every`` rounds) and the summary."""

    def __init__(self, writer: results.RunWriter | None, tables: tuple[str, ...], flush_every: int) -> None:
        self.writer, self.tables, self.flush_every = writer, tables, flush_every
        self.done = 0  # rounds stored
        self._kept: dict[str, list[np.ndarray]] = {"rounds": [], "jobs": []}

    def store(self, batch: RoundTables | None) -> None:
        """Hand a batch's rows to the writer, whole (a signal waits), and keep what the summary needs."""
        if batch is None:
            return
        with interrupts.deferred():
            for table in self.tables:
                rows = getattr(batch, table)
                if len(rows) == 0 or (self.writer is None and table not in self._kept):
                    continue
                arr = results.as_rows(table, rows)
                if table in self._kept:
                    self._kept[table].append(arr)
                if self.writer is not None:
                    self.writer.append(table, arr)
            before, self.done = self.done, self.done + len(batch.rounds)
        if self.writer is not None and self.done // self.flush_every > before // self.flush_every:
            self.writer.flush()  # at most every min_interval seconds (results.ResultFile)

    def collected(self, table: str) -> np.ndarray:
        """Return every row of ``table`` (``rounds`` or ``jobs``) stored so far."""
        kept = self._kept[table]
        return np.concatenate(kept) if kept else np.zeros(0, results.TABLES[table])
