"""``mpigc simulate``: every scheme entry of a config on one realisation, into HDF5."""
from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

from mpigc import report, results
from mpigc.codes.sgc import is_sequential
from mpigc.config import Config
from mpigc.core.entries import plan_entries, workers_of
from mpigc.core.evaluation import eval_attrs, make_evaluator
from mpigc.core.inputs import build_delays, build_workload, workload_dim
from mpigc.core.network import Network
from mpigc.core.payload import packed_part_length
from mpigc.core.progress import progress_printer
from mpigc.core.provenance import plain, run_attrs
from mpigc.core.tables import RoundTables, summary_attrs, tables_for
from mpigc.sim import Simulator
from mpigc.sim.sgc import simulate_sequential


def network_of(config: Config) -> Network:
    """Return the ``[network]`` model of ``config``."""
    net = config.network
    return Network(net.latency, net.bandwidth, net.shared_ingest, net.gap)


def simulate(config: Config, out: str | None, name: str | None = None, log: TextIO = sys.stderr) -> list[tuple]:
    """Run every entry; write runs to ``out``; return summary rows (name, scheme, stats)."""
    if is_sequential(config):
        return simulate_sequential(config, out, name, log)
    m = workers_of(config)
    delays = build_delays(config, m)
    delays.check_rounds(config.run.rounds)
    entries = plan_entries(config, m, delays)
    dim = workload_dim(config)
    if out is not None:
        results.check_writable(out)
    file = results.ResultFile(out, keep_open=True) if out is not None else None
    if file is not None:
        file.acquire()  # another job writing there is refused now, before any work
    try:
        rows = []
        for entry in entries:
            workload = (build_workload(config, entry.scheme.plan.chunks)
                        if config.run.verify else None)
            itemsize = np.dtype(config.workload.dtype).itemsize
            part_bytes = itemsize * packed_part_length(dim, entry.scheme.plan.parts)  # as the MPI workers send
            evaluator = make_evaluator(config.run, workload)
            sim = Simulator(entry.scheme, delays, entry.policy,
                            network=network_of(config), workload=workload,
                            detail=config.run.detail, vector_bytes=part_bytes, evaluator=evaluator,
                            itemsize=itemsize)
            label = name if (name and len(entries) == 1) else entry.label
            if evaluator is not None and evaluator.source == "training":
                print(f"note: {config.workload.dataset} has no X_eval/y_eval: evaluating on the training set",
                      file=log, flush=True)
            writer = None
            if file is not None:
                attrs = run_attrs("sim", config, entry.code, entry.label, m,
                                  plan={k: plain(v) for k, v in entry.scheme.describe().items()},
                                  round_timeout_s=entry.policy.timeout, **eval_attrs(config.run, evaluator))
                writer = file.new_run(label, attrs, tables_for(config.run.detail))
                label = writer.name
            collected: list[np.ndarray] = []

            def emit(batch: RoundTables, writer=writer, collected=collected) -> None:
                rounds = results.as_rows("rounds", batch.rounds)
                collected.append(rounds)
                if writer is not None:
                    writer.append("rounds", rounds)
                    for table in ("workers", "events"):
                        rows_ = getattr(batch, table)
                        if rows_:
                            writer.append(table, results.as_rows(table, rows_))
                    writer.flush()

            print(f"simulating {label} ({entry.code.scheme}, m = {m}, {config.run.rounds} rounds)", file=log,
                  flush=True)
            sim.run(config.run.rounds, emit, progress_printer(label, config.run.rounds, log))
            all_rounds = np.concatenate(collected) if collected else np.zeros(0, results.ROUNDS_DTYPE)
            stats = report.summarize(all_rounds, config.run.target_loss)
            if writer is not None:
                writer.set_attrs(**summary_attrs(stats))
                writer.flush()
            rows.append((label, entry.code.scheme, stats))
    finally:
        if file is not None:
            file.close()  # commits the runs into the file (results.writer)
    return rows
