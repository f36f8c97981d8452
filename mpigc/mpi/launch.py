"""``mpigc run``: set up the job, run every scheme entry on MPI, write HDF5 on rank 0.

Rank 0 reads and checks the config (and every scheme entry, and the output
path) before anything runs and broadcasts the verdict, so bad input ends
every rank with exit code 2 and one line from rank 0. Any exception after
that aborts the whole job (``COMM_WORLD.Abort``): no rank is left waiting.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback

import mpi4py
import numpy as np
from mpi4py import MPI

from mpigc import report, results
from mpigc.codes import make_scheme
from mpigc.codes.sequential import is_sequential
from mpigc.config import Config, load_config, to_toml
from mpigc.delays import DelayModel
from mpigc.engine import RoundPolicy
from mpigc.errors import InputError
from mpigc.mpi.master import Master, RoundRows
from mpigc.mpi.worker import Worker
from mpigc.sim import progress_printer
from mpigc.sim.driver import TABLES_BY_DETAIL, plan_entries
from mpigc.workloads import make_workload


def install_abort_handler(comm: MPI.Comm) -> None:
    """Make an uncaught exception on any rank abort the whole job, with its traceback.

    The hook aborts ``COMM_WORLD``, not ``comm``: it outlives ``main``, and a
    caller's communicator (e.g. a test's ``Dup()``) may be freed by then, when
    ``comm.Abort`` would itself fail and leave the other ranks waiting.
    """
    rank = comm.rank

    def abort(kind, value, tb) -> None:
        # The summary line goes first and everything is flushed, with a moment for
        # mpiexec to forward it: Abort kills the job before it drains our output.
        sys.stderr.write(f"mpigc: rank {rank} failed; aborting the job ({kind.__name__}: {value})\n")
        traceback.print_exception(kind, value, tb, file=sys.stderr)
        sys.stderr.flush()
        time.sleep(0.5)
        MPI.COMM_WORLD.Abort(1)

    sys.excepthook = abort


def _checked_config(comm: MPI.Comm, args: argparse.Namespace) -> Config | None:
    """Rank 0 validates everything; every rank learns the verdict. None means exit 2."""
    verdict: tuple[str, object]
    if comm.rank == 0:
        try:
            config = load_config(args.config, args.overrides, backend="mpi", world_size=comm.size)
            plan_entries(config, config.codes[0].workers)
            DelayModel(config.delays, config.run.seed, config.codes[0].workers).check_rounds(config.run.rounds)
            make_workload(config.workload, config.codes[0].workers, config.run.seed)  # scans a user dataset once
            if args.out:
                results.check_writable(args.out)
            verdict = ("ok", config)
        except InputError as error:
            print(f"mpigc: error: {error}", file=sys.stderr, flush=True)
            verdict = ("error", None)
    else:
        verdict = ("", None)
    verdict = comm.bcast(verdict, root=0)
    return verdict[1] if verdict[0] == "ok" else None


def main(args: argparse.Namespace, comm: MPI.Comm | None = None) -> int:
    """Entry point of ``mpigc run`` on every rank; returns the exit code."""
    world = comm if comm is not None else MPI.COMM_WORLD
    install_abort_handler(world)
    config = _checked_config(world, args)
    if config is None:
        return 2
    hosts = world.gather(MPI.Get_processor_name(), root=0)
    rows = []
    file = results.ResultFile(args.out) if (world.rank == 0 and args.out) else None
    for code in config.codes:
        comm = world.Dup()
        try:
            summary = run_entry(comm, config, code, file, args.name if len(config.codes) == 1 else None, hosts)
        finally:
            comm.Free()
        if summary is not None:
            rows.append(summary)
    if world.rank == 0:
        print(report.summary_table(rows), flush=True)
        if args.out:
            print(f"# wrote {len(rows)} run(s) to {args.out}", flush=True)
    return 0


def run_entry(comm: MPI.Comm, config: Config, code, file, name: str | None, hosts) -> tuple | None:
    """Run one scheme entry; rank 0 returns its summary row."""
    if is_sequential(config):  # PROTOCOLS §4.2: the whole config runs in the sequential regime
        from mpigc.mpi.sequential import run_sequential_entry

        return run_sequential_entry(comm, config, code, file, name, hosts)
    m = int(code.workers)
    scheme = make_scheme(code, m, config.run.seed)
    delays = DelayModel(config.delays, config.run.seed, m)
    workload = make_workload(config.workload, scheme.plan.chunks, config.run.seed, check=False)
    if comm.rank != 0:
        worker = Worker(comm, scheme, delays, workload, config.delays.compute)
        worker.prepare()
        comm.Barrier()
        worker.run()
        return None
    master = Master(comm, scheme, RoundPolicy.for_scheme(code, config.run, delays, scheme), workload,
                    config.run.verify)
    label = name or code.name or code.scheme
    writer = file.new_run(label, run_attrs(config, code, label, comm, hosts),
                          TABLES_BY_DETAIL[config.run.detail]) if file is not None else None
    master.prepare()
    comm.Barrier()  # every rank has built its data: round 0 measures the scheme, not start-up
    return drive_master(master, config, code, writer.name if writer else label, writer)


def run_attrs(config: Config, code, label: str, comm: MPI.Comm, hosts) -> dict:
    """Provenance of an MPI run: library, hosts, world size, the resolved config.

    ``mpi_library`` is the first non-empty line of ``MPI.Get_library_version()``
    with NULs removed: Open MPI's string ends in a NUL, which HDF5 variable-length
    string attributes reject, and an implementation may return an empty string.
    """
    lines = (line.strip() for line in MPI.Get_library_version().replace("\0", "").splitlines())
    library = next((line for line in lines if line), "unknown")
    return {**results.provenance("mpi"), "scheme": code.scheme, "config": to_toml(config), "entry": label,
            "seed": config.run.seed, "workers": int(code.workers), "world_size": comm.size,
            "mpi_library": library, "hosts": sorted(set(hosts)), "mpi4py": mpi4py.__version__}


def drive_master(master: Master, config: Config, code, label: str, writer) -> tuple:
    """Rank 0: run the rounds, append and flush rows, print progress; return the summary row."""
    tables = TABLES_BY_DETAIL[config.run.detail]
    collected: list[np.ndarray] = []

    def store(batch: RoundRows) -> None:
        for table in tables:
            rows = getattr(batch, table)
            if rows:
                arr = np.array(rows, dtype=results.TABLES[table])
                if table == "rounds":
                    collected.append(arr)
                if writer is not None:
                    writer.append(table, arr)

    print(f"running {label} ({code.scheme}, {code.workers} workers, {config.run.rounds} rounds)",
          file=sys.stderr, flush=True)
    progress = progress_printer(label, config.run.rounds)
    cpu0, wall0 = time.process_time(), time.perf_counter()  # rank 0's own cost, for benchmarks
    for rnd in range(config.run.rounds):
        store(master.round(rnd))
        if writer is not None and (rnd + 1) % config.run.flush_every == 0:
            writer.flush()
        progress(rnd + 1)
    master.finish(store)
    master_cpu, master_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    stats = report.summarize(np.concatenate(collected) if collected else np.zeros(0, results.ROUNDS_DTYPE))
    if writer is not None:
        writer.set_attrs(**{f"summary_{k}": v for k, v in stats.items()},
                         master_cpu_s=master_cpu, master_wall_s=master_wall)
        writer.flush()
    return (label, code.scheme, stats)
