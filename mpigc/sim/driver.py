"""``mpigc simulate``: every scheme entry of a config on one realisation, into HDF5."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from mpigc import report, results
from mpigc.codes import Scheme, make_scheme
from mpigc.codes.sequential import is_sequential
from mpigc.config import Config, to_toml
from mpigc.delays import DelayModel
from mpigc.engine import RoundPolicy, packed_part_length
from mpigc.sim import Network, Simulator, SimTables, progress_printer
from mpigc.workloads import gradient_dim, make_workload

TABLES_BY_DETAIL = {"rounds": ("rounds",), "workers": ("rounds", "workers"), "full": ("rounds", "workers", "events")}


@dataclass
class Entry:
    """One scheme entry, planned and checked before anything runs."""

    label: str
    code: object
    scheme: Scheme
    policy: RoundPolicy


def plan_entries(config: Config, workers: int, delays: DelayModel | None = None) -> list[Entry]:
    """Build every entry's scheme (raising InputError on bad combinations) before any output exists."""
    delays = delays or DelayModel(config.delays, config.run.seed, workers)
    if is_sequential(config):  # PROTOCOLS §4.2: any sequential entry makes the whole config sequential
        from mpigc.sequential_engine import plan_sequential

        return [Entry(e.label, e.code, e.scheme, RoundPolicy(False, np.inf, np.inf))
                for e in plan_sequential(config, workers, delays)]
    entries = []
    for code in config.codes:
        scheme = make_scheme(code, workers, config.run.seed)
        policy = RoundPolicy.for_scheme(code, config.run, delays, scheme)
        entries.append(Entry(code.name or code.scheme, code, scheme, policy))
    return entries


def workers_of(config: Config) -> int:
    """Number of workers m (resolved by the config loader)."""
    return int(config.codes[0].workers)


def simulate(config: Config, out: str | None, name: str | None = None, log: TextIO = sys.stderr) -> list[tuple]:
    """Run every entry; write runs to ``out``; return summary rows (name, scheme, stats)."""
    if is_sequential(config):
        from mpigc.sim.sequential import simulate_sequential

        return simulate_sequential(config, out, name, log)
    m = workers_of(config)
    delays = DelayModel(config.delays, config.run.seed, m)
    delays.check_rounds(config.run.rounds)
    entries = plan_entries(config, m, delays)
    dim = gradient_dim(config.workload)
    if out is not None:
        results.check_writable(out)
    file = results.ResultFile(out, keep_open=True) if out is not None else None
    if file is not None:
        file.acquire()  # another job writing there is refused now, before any work
    try:
        rows = []
        for entry in entries:
            workload = (make_workload(config.workload, entry.scheme.plan.chunks, config.run.seed)
                        if config.run.verify else None)
            part_bytes = 8 * packed_part_length(dim, entry.scheme.plan.parts)  # as the MPI workers send
            sim = Simulator(entry.scheme, delays, entry.policy,
                            network=Network(config.network.latency, config.network.bandwidth), workload=workload,
                            detail=config.run.detail, vector_bytes=part_bytes)
            label = name if (name and len(entries) == 1) else entry.label
            writer = None
            if file is not None:
                attrs = {**results.provenance("sim"), "scheme": entry.code.scheme, "config": to_toml(config),
                         "entry": entry.label, "seed": config.run.seed, "workers": m,
                         "plan": {k: _plain(v) for k, v in entry.scheme.describe().items()}}
                writer = file.new_run(label, attrs, TABLES_BY_DETAIL[config.run.detail])
                label = writer.name
            collected: list[np.ndarray] = []

            def emit(batch: SimTables, writer=writer, collected=collected) -> None:
                rounds = np.array(batch.rounds, dtype=results.ROUNDS_DTYPE)
                collected.append(rounds)
                if writer is not None:
                    writer.append("rounds", rounds)
                    for table in ("workers", "events"):
                        rows_ = getattr(batch, table)
                        if rows_:
                            writer.append(table, np.array(rows_, dtype=results.TABLES[table]))
                    writer.flush()

            print(f"simulating {label} ({entry.code.scheme}, m = {m}, {config.run.rounds} rounds)", file=log,
                  flush=True)
            sim.run(config.run.rounds, emit, progress_printer(label, config.run.rounds, log))
            all_rounds = np.concatenate(collected) if collected else np.zeros(0, results.ROUNDS_DTYPE)
            stats = report.summarize(all_rounds)
            if writer is not None:
                writer.set_attrs(**{f"summary_{k}": v for k, v in stats.items()})
                writer.flush()
            rows.append((label, entry.code.scheme, stats))
    finally:
        if file is not None:
            file.close()  # commits the runs into the file (results.writer)
    return rows


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    return value
