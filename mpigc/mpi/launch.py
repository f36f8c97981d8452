"""``mpigc run``: set up the job, run every scheme entry on MPI, write HDF5 on rank 0.

Rank 0 checks the config, every scheme entry (with the workload each will
build), every run name and the output path before anything runs
(:func:`mpigc.core.preflight.check_run`) and broadcasts the verdict, so bad input
ends every rank with exit code 2 and one line from rank 0, and no file. Any
exception after that aborts the whole job (``COMM_WORLD.Abort``): no rank is
left waiting.

SIGTERM and SIGINT (SLURM's time limit or ``scancel``; ``mpiexec`` forwards
both to every rank) and SIGHUP raise :class:`~mpigc.interrupts.Interrupted` on each rank.
Rank 0 writes every finished round it holds, marks the running run with the
attribute ``interrupted`` (the signal's name), closes the file and aborts
the job with exit code 128 + signal number (143 for SIGTERM, 130 for
SIGINT). A worker calls no MPI after the signal (its peers may be gone): it
waits up to :data:`WORKER_GRACE` seconds for rank 0's abort, then leaves
with the same code. Workers must not leave first: ``mpiexec`` (Hydra) kills
the remaining ranks as soon as one exits without finalizing, which would cut
rank 0's write short. For the same reason every rank waits, signals held,
until rank 0 has merged the result file at the end (:func:`_merged`).

Everything around the rounds (the run's name, file, attributes, progress,
totals, interrupt marking) is :class:`~mpigc.core.lifecycle.RunLifecycle`'s,
on rank 0; the regimes' rounds are :mod:`mpigc.mpi.single` and :mod:`mpigc.mpi.sgc`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass

from mpi4py import MPI

from mpigc import interrupts, report, results
from mpigc.config import Config, load_config
from mpigc.core.entries import SEQUENTIAL, SINGLE_ROUND
from mpigc.core.lifecycle import Backend, RunLifecycle
from mpigc.core.preflight import check_run
from mpigc.errors import InputError, PluginFailure
from mpigc.mpi.provenance import mpi_attrs
from mpigc.mpi.sgc import MpiSequential
from mpigc.mpi.single import MpiRounds

#: seconds an interrupted worker waits for rank 0 to write the file and abort the job
WORKER_GRACE = 5.0
#: sleep between polls of the barrier that keeps every rank until rank 0 has merged the file
MERGE_POLL = 0.01


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
        if issubclass(kind, (results.ResultWriteError, PluginFailure)):  # full disk, a plug-in: one line, exit 1
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


def _checked_config(comm: MPI.Comm, args: argparse.Namespace, job: _Job) -> tuple[Config, str] | None:
    """Rank 0 plans and validates everything and takes the output's lock; every rank learns the verdict.

    Returns the config and its regime (decided once, by rank 0's plan), or None: exit 2.
    """
    verdict: tuple[str, object, str]
    if comm.rank == 0:
        try:
            config = load_config(args.config, args.overrides, backend="mpi", world_size=comm.size)
            plan = check_run(config, backend="mpi", name=args.name, out=args.out or None)
            job.life = RunLifecycle(plan, Backend("mpi", "running", timed=True,
                                                  min_interval=config.run.flush_seconds), args.out or None)
            job.life.open()  # a second job on the same file is refused here, before any work
            verdict = ("ok", config, plan.regime)
        except InputError as error:
            print(f"mpigc: error: {error}", file=sys.stderr, flush=True)
            verdict = ("error", None, "")
    else:
        verdict = ("", None, "")
    verdict = comm.bcast(verdict, root=0)
    return (verdict[1], verdict[2]) if verdict[0] == "ok" else None


@dataclass
class _Job:
    """What rank 0 needs to close an interrupted job: the run's lifecycle (its file, the run running)."""

    life: RunLifecycle | None = None


#: rank 0's rounds of each regime; each class's ``serve`` is the workers' side
REGIMES = {SINGLE_ROUND: MpiRounds, SEQUENTIAL: MpiSequential}


def main(args: argparse.Namespace, comm: MPI.Comm | None = None) -> int:
    """Entry point of ``mpigc run`` on every rank; returns the exit code.

    On SIGTERM/SIGINT/SIGHUP it does not return: the job ends with exit code
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
    checked = _checked_config(world, args, job)
    if checked is None:
        return 2
    config, regime = checked
    hosts = world.gather(MPI.Get_processor_name(), root=0)
    rounds = REGIMES[regime]
    life = job.life
    try:
        if life is not None:
            life.backend.provenance.update(mpi_attrs(world, hosts))
        for k, code in enumerate(config.codes):
            comm = world.Dup()
            if comm.rank == 0:
                life.run(rounds(life.plan, life.plan.entries[k], comm))
            else:
                rounds.serve(comm, config, code)
            comm.Free()  # collective: only on the way out of a run every rank finished
        if life is not None:
            life.close()  # the final merge: a signal meanwhile is raised after it, once (mpigc.results)
    except BaseException as exc:
        if life is not None and not isinstance(exc, interrupts.Interrupted):
            life.close()
        raise
    _merged(world)
    if world.rank == 0:
        print(report.summary_table(life.summaries), flush=True)
        if args.out:
            print(f"# wrote {len(life.summaries)} run(s) to {args.out}", flush=True)
    return 0


def _merged(world: MPI.Comm) -> None:
    """Every rank waits here until rank 0 has merged the result file; workers hold signals meanwhile.

    A worker that left ``main`` would get the default handlers back, and a
    signal to ``mpiexec`` (forwarded to every rank) would kill it, and
    ``mpiexec`` then rank 0 in the middle of the merge. Held back, the
    signal is raised once rank 0 is done (or rank 0's abort ends the job
    first). The wait polls a non-blocking barrier with short sleeps: a
    blocking one spins a core the merge needs.
    """
    with interrupts.deferred():
        request = world.Ibarrier()
        while not request.Test():
            time.sleep(MERGE_POLL)


def _end_interrupted(world: MPI.Comm, stop: interrupts.Interrupted, job: _Job) -> None:
    """Rank 0: write what it holds, mark the running run, abort the job. Workers: wait, then exit."""
    if world.rank != 0:
        time.sleep(WORKER_GRACE)  # rank 0's abort ends us first, unless rank 0 is gone
        os._exit(stop.exit_code)
    try:
        if job.life is not None:
            stop.note = job.life.interrupted(stop)
    finally:
        sys.stdout.flush()
        sys.stderr.write(f"mpigc: {stop}{stop.note}; ending the job (exit {stop.exit_code})\n")
        sys.stderr.flush()
        _abort(stop.exit_code)
