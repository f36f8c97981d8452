"""Helpers for tests that run under ``mpiexec -n N python -m mpi4py -m pytest --with-mpi``.

Every rank takes part in each run; rank 0 inspects the results and every
rank asserts the same verdict, so ranks fail together instead of one
failing while the others wait in a collective (docs/testing.md#writing-mpi-tests).
"""
from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Iterable

from mpi4py import MPI

from mpigc.mpi import launch


def shared_path(tmp_path_factory, name: str) -> str:
    """A fresh path chosen on rank 0 and known to every rank (tmp_path differs per rank)."""
    path = str(tmp_path_factory.mktemp(name.split(".")[0]) / name) if MPI.COMM_WORLD.rank == 0 else None
    return MPI.COMM_WORLD.bcast(path, root=0)


def run_mpigc(path: str, overrides: list[str]) -> None:
    """Run ``mpigc run`` in-process on a ``Dup()`` of COMM_WORLD; every rank must return 0."""
    world = MPI.COMM_WORLD
    dup = world.Dup()
    try:
        rc = launch.main(argparse.Namespace(config=None, overrides=overrides, out=path, name=None), comm=dup)
    except BaseException:  # one rank failing inside a collective run would leave the others blocked
        traceback.print_exc()
        sys.stderr.flush()
        world.Abort(1)
        raise
    finally:
        dup.Free()
    codes = world.allgather(rc)
    assert codes == [0] * world.size, codes


def verdict(check: Callable[[], Iterable[str]]) -> list[str]:
    """Rank 0 runs ``check()`` (the problems it finds); every rank gets the same list."""
    problems: list[str] = []
    if MPI.COMM_WORLD.rank == 0:
        try:
            problems = list(check())
        except Exception as error:  # a crash on rank 0 is a failure on every rank
            problems = [f"{type(error).__name__}: {error}"]
    return MPI.COMM_WORLD.bcast(problems, root=0)


def assert_all(problems: list[str]) -> None:
    """Assert on every rank that no rank found a problem."""
    ok = MPI.COMM_WORLD.allreduce(not problems, op=MPI.LAND)
    assert ok, "\n".join(problems[:20])
