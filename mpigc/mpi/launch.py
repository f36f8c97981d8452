"""``mpigc run``: set up the job, run every scheme entry on MPI, write HDF5 on rank 0.

Rank 0 checks the config, every scheme entry (with the workload each will
build), every run name and the output path before anything runs
(:func:`mpigc.core.preflight.check_run`) and broadcasts the verdict, so bad input
ends every rank with exit code 2 and one line from rank 0, and no file. Any
exception after that aborts the whole job (``COMM_WORLD.Abort``): no rank is
left waiting.

SIGTERM and SIGINT (SLURM's time limit or ``scancel``; ``mpiexec`` forwards
both to every rank) raise :class:`~mpigc.interrupts.Interrupted` on each rank.
Rank 0 writes every finished round it holds, marks the running run with the
attribute ``interrupted`` (the signal's name), closes the file and aborts
the job with exit code 128 + signal number (143 for SIGTERM, 130 for
SIGINT). A worker calls no MPI after the signal (its peers may be gone): it
waits up to :data:`WORKER_GRACE` seconds for rank 0's abort, then leaves
with the same code. Workers must not leave first: ``mpiexec`` (Hydra) kills
the remaining ranks as soon as one exits without finalizing, which would cut
rank 0's write short.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from mpigc import interrupts, report, results
from mpigc.codes import make_scheme
from mpigc.codes.sgc import is_sequential
from mpigc.config import Config, load_config
from mpigc.core.evaluation import eval_attrs, make_evaluator
from mpigc.core.inputs import build_delays, build_workload
from mpigc.core.policy import RoundPolicy
from mpigc.core.preflight import check_run
from mpigc.core.progress import progress_printer
from mpigc.core.tables import RoundTables, summary_attrs, tables_for
from mpigc.errors import InputError
from mpigc.mpi.master import Master
from mpigc.mpi.provenance import run_attrs
from mpigc.mpi.sgc import run_sequential_entry
from mpigc.mpi.worker import Worker

#: seconds an interrupted worker waits for rank 0 to write the file and abort the job
WORKER_GRACE = 5.0


def install_abort_handler(comm: MPI.Comm) -> None:
    """Make an uncaught exception on any rank abort the whole job, with its traceback.

    The hook aborts ``COMM_WORLD``, not ``comm``: it outlives ``main``, and a
    caller's communicator (e.g. a test's ``Dup()``) may be freed by then, when
    ``comm.Abort`` would itself fail and leave the other ranks waiting. An
    :class:`~mpigc.interrupts.Interrupted` that escapes ``main`` is no
    failure: one line, no traceback, exit code 128 + signal number.
    """
    rank = comm.rank

    def abort(kind, value, tb) -> None:
        if issubclass(kind, interrupts.Interrupted):
            sys.stderr.write(f"mpigc: rank {rank} {value}\n")
            sys.stderr.flush()
            _abort(value.exit_code)
        if issubclass(kind, results.ResultWriteError):  # full disk, quota: one line, exit 1
            sys.stdout.flush()
            sys.stderr.write(f"mpigc: error: {value}\n")
            sys.stderr.flush()
            time.sleep(0.5)
            _abort(1)
        # The summary line goes first and everything is flushed, with a moment for
        # mpiexec to forward it: Abort kills the job before it drains our output.
        sys.stderr.write(f"mpigc: rank {rank} failed; aborting the job ({kind.__name__}: {value})\n")
        traceback.print_exception(kind, value, tb, file=sys.stderr)
        sys.stderr.flush()
        time.sleep(0.5)
        _abort(1)

    sys.excepthook = abort


def _abort(code: int) -> None:
    """End the whole job with ``code``; never returns.

    ``MPI_Abort`` can return when ``mpiexec`` is already going down (it got
    the signal too and closed the process manager's connection): then this
    process leaves on its own.
    """
    try:
        MPI.COMM_WORLD.Abort(code)
    finally:
        os._exit(code)


def _checked_config(comm: MPI.Comm, args: argparse.Namespace, job: _Job) -> Config | None:
    """Rank 0 validates everything and takes the output's lock; every rank learns the verdict. None means exit 2."""
    verdict: tuple[str, object]
    if comm.rank == 0:
        try:
            config = load_config(args.config, args.overrides, backend="mpi", world_size=comm.size)
            check_run(config, backend="mpi", name=args.name, out=args.out or None)
            if args.out:  # a second job on the same file is refused here, before any work
                job.file = results.ResultFile(args.out, keep_open=True, min_interval=config.run.flush_seconds)
                job.file.acquire()
            verdict = ("ok", config)
        except InputError as error:
            print(f"mpigc: error: {error}", file=sys.stderr, flush=True)
            verdict = ("error", None)
    else:
        verdict = ("", None)
    verdict = comm.bcast(verdict, root=0)
    return verdict[1] if verdict[0] == "ok" else None


@dataclass
class _Job:
    """What rank 0 needs to close an interrupted job: the file and the entry running."""

    file: results.ResultFile | None = None
    entry_writers: int = 0  # run writers the file had when the running entry started


def main(args: argparse.Namespace, comm: MPI.Comm | None = None) -> int:
    """Entry point of ``mpigc run`` on every rank; returns the exit code.

    On SIGTERM/SIGINT it does not return: the job ends with exit code
    128 + signal number once rank 0 has written the file (module docstring).
    """
    world = comm if comm is not None else MPI.COMM_WORLD
    install_abort_handler(world)
    job = _Job()
    previous = interrupts.install()
    try:
        return _run(world, args, job)
    except interrupts.Interrupted as stop:
        _end_interrupted(world, stop, job)
        raise  # not reached: _end_interrupted ends the process
    finally:
        interrupts.restore(previous)


def _run(world: MPI.Comm, args: argparse.Namespace, job: _Job) -> int:
    """Check, then run every entry; rank 0 holds the result file open from the first run to the end."""
    config = _checked_config(world, args, job)
    if config is None:
        return 2
    hosts = world.gather(MPI.Get_processor_name(), root=0)
    rows = []
    try:
        for code in config.codes:
            comm = world.Dup()
            if job.file is not None:
                job.entry_writers = len(job.file.writers)
            summary = run_entry(comm, config, code, job.file, args.name if len(config.codes) == 1 else None, hosts)
            comm.Free()  # collective: only on the way out of a run every rank finished
            if job.file is not None:
                job.file.flush()  # an entry's last rows and summary are on disk before the next starts
            if summary is not None:
                rows.append(summary)
    finally:
        if job.file is not None and interrupts.received() is None:
            job.file.close()
    if world.rank == 0:
        print(report.summary_table(rows), flush=True)
        if args.out:
            print(f"# wrote {len(rows)} run(s) to {args.out}", flush=True)
    return 0


def _end_interrupted(world: MPI.Comm, stop: interrupts.Interrupted, job: _Job) -> None:
    """Rank 0: write what it holds, mark the running run, abort the job. Workers: wait, then exit."""
    if world.rank != 0:
        time.sleep(WORKER_GRACE)  # rank 0's abort ends us first, unless rank 0 is gone
        os._exit(stop.exit_code)
    note = ""
    try:
        file = job.file
        if file is not None:
            running = file.writers[job.entry_writers:]
            if running:
                running[-1].set_attrs(interrupted=stop.name)
            file.close()
            note = f"; results written to {file.path}"
            if running:
                note += f" ({running[-1].name}: {running[-1].written.get('rounds', 0)} round(s), marked interrupted)"
    finally:
        sys.stdout.flush()
        sys.stderr.write(f"mpigc: {stop}{note}; ending the job (exit {stop.exit_code})\n")
        sys.stderr.flush()
        _abort(stop.exit_code)


def run_entry(comm: MPI.Comm, config: Config, code, file, name: str | None, hosts) -> tuple | None:
    """Run one scheme entry; rank 0 returns its summary row."""
    if is_sequential(config):  # docs/protocols.md#sequential-schemes: the whole config runs in the sequential regime
        return run_sequential_entry(comm, config, code, file, name, hosts)
    m = int(code.workers)
    scheme = make_scheme(code, m, config.run.seed)
    delays = build_delays(config, m)
    workload = build_workload(config, scheme.plan.chunks, check=False)
    if comm.rank != 0:
        worker = Worker(comm, scheme, delays, workload, config.delays.compute)
        worker.prepare()
        comm.Barrier()
        worker.run()
        return None
    master = Master(comm, scheme, RoundPolicy.for_scheme(code, config.run, delays, scheme), workload,
                    config.run.verify)
    master.evaluator = make_evaluator(config.run, workload)
    evaluation = eval_attrs(config.run, master.evaluator)  # builds the held-out rows before the clock starts
    if evaluation.get("eval_set") == "training":
        print(f"note: {config.workload.dataset} has no X_eval/y_eval: evaluating on the training set",
              file=sys.stderr, flush=True)
    label = name or code.name or code.scheme
    writer = file.new_run(label, {**run_attrs(config, code, label, comm, hosts), **evaluation},
                          tables_for(config.run.detail)) if file is not None else None
    master.prepare()
    comm.Barrier()  # every rank has built its data: round 0 measures the scheme, not start-up
    return drive_master(master, config, code, writer.name if writer else label, writer)


def drive_master(master: Master, config: Config, code, label: str, writer) -> tuple:
    """Rank 0: run the rounds, append and flush rows, print progress; return the summary row.

    The summary's ``loop`` is rank 0's wall time of the round loop per round
    (everything between rounds included: model update, held-out evaluation,
    STOP, reports, the write), the measure of a training loop's iteration; ``latency`` stops
    at the decode. On SIGTERM/SIGINT the run's attributes get what is known
    so far (summary, ``master_wall_s``, ``interrupted``) before the
    exception goes on to :func:`main`.
    """
    tables = tables_for(config.run.detail)
    collected: list[np.ndarray] = []

    def store(batch: RoundTables) -> None:
        for table in tables:
            rows = getattr(batch, table)
            if rows:
                arr = results.as_rows(table, rows)
                if table == "rounds":
                    collected.append(arr)
                if writer is not None:
                    writer.append(table, arr)

    def totals(**extra) -> dict:
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        rounds = np.concatenate(collected) if collected else np.zeros(0, results.ROUNDS_DTYPE)
        stats = report.summarize(rounds, config.run.target_loss)
        stats["loop"] = wall / rounds.size if rounds.size else float("nan")
        if writer is not None:
            writer.set_attrs(**summary_attrs(stats),
                             master_cpu_s=cpu, master_wall_s=wall, **extra)
        return stats

    print(f"running {label} ({code.scheme}, {code.workers} workers, {config.run.rounds} rounds)",
          file=sys.stderr, flush=True)
    progress = progress_printer(label, config.run.rounds)
    cpu0, wall0 = time.process_time(), time.perf_counter()  # rank 0's own cost of the round loop
    try:
        for rnd in range(config.run.rounds):
            batch = master.round(rnd)
            with interrupts.deferred():  # a round's rows go to the writer whole
                store(batch)
            if writer is not None and (rnd + 1) % config.run.flush_every == 0:
                writer.flush()  # writes at most every run.flush_seconds (ResultFile(min_interval=...))
            progress(rnd + 1)
    except interrupts.Interrupted as stop:
        totals(interrupted=stop.name)
        raise
    stats = totals()  # the loop's time, before the final drain
    if writer is not None:
        # every round is on disk before the drain, which waits for a worker that may be frozen
        writer.flush(force=True)
    master.finish(store)
    if writer is not None:
        writer.flush(force=True)
    return (label, code.scheme, stats)
