"""``mpigc probe --network`` in-process: ``mpiexec -n N python -m mpi4py -m pytest --with-mpi`` (N >= 2).

Every rank runs the probe at a small d; rank 0's table (stdout and --out)
must parse as TOML and load as an mpigc config whose ``[network]`` is the
fit of the bursts measured, and every burst must have heard every worker.
"""
from __future__ import annotations

import argparse
import tomllib

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, shared_path, verdict

from mpigc.config import load_config
from mpigc.mpi import probe

pytestmark = pytest.mark.mpi(min_size=2)

DIM = 3000
DTYPE = "float32"  # half the bytes of float64: the bursts must say so


def test_bursts_hear_every_worker_in_order():
    comm = MPI.COMM_WORLD.Dup()
    try:
        measured = probe.probe_ingest(comm, DIM, bursts=2, dtype=DTYPE)
    finally:
        comm.Free()

    def check():
        lengths = probe.payload_lengths(DIM)
        assert lengths[0] == 0 and lengths[-1] == DIM + 1  # header only, up to one l = 1 message
        if len(measured) != 2 * len(lengths):
            yield f"{len(measured)} bursts, expected {2 * len(lengths)}"
        for burst in measured:
            if burst.seconds.size != MPI.COMM_WORLD.size - 1:
                yield f"burst of {burst.length} heard {burst.seconds.size} workers"
            if burst.nbytes != 4 * (burst.length + 9):
                yield f"burst of {burst.length} float32 values counted {burst.nbytes} bytes"
            if not (np.all(burst.seconds > 0) and np.all(np.diff(burst.seconds) >= 0)):
                yield f"burst of {burst.length}: arrivals {burst.seconds} not positive and sorted"

    assert_all(verdict(lambda: list(check())))


def test_probe_prints_and_writes_a_loadable_network_table(tmp_path_factory, capsys):
    out = shared_path(tmp_path_factory, "network.toml")
    comm = MPI.COMM_WORLD.Dup()
    try:
        args = argparse.Namespace(config=None, overrides=[f"workload.features={DIM}"], rounds=2, out=out,
                                  network=True)
        rc = probe.main(args, comm=comm)
    finally:
        comm.Free()
    printed = capsys.readouterr().out

    def check():
        if rc != 0:
            yield f"exit code {rc}"
            return
        with open(out, encoding="utf-8") as handle:
            written = handle.read()
        if written != printed:
            yield "the file differs from what was printed"
        table = tomllib.loads(written)["network"]
        if set(table) != {"latency", "bandwidth", "gap", "shared_ingest"} or table["shared_ingest"] is not True:
            yield f"unexpected table {table}"
        if not (table["latency"] >= 0 and table["bandwidth"] >= 0 and table["gap"] >= 0):
            yield f"negative values in {table}"
        net = load_config(out).network
        if (net.latency, net.bandwidth, net.gap, net.shared_ingest) != \
                (table["latency"], table["bandwidth"], table["gap"], True):
            yield f"the loaded config's [network] {net} is not the table {table}"

    assert_all(verdict(lambda: list(check())))
    assert MPI.COMM_WORLD.allgather(rc) == [0] * MPI.COMM_WORLD.size
