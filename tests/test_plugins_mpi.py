"""Plug-ins by module path under ``mpiexec``: every rank resolves them, and they run exactly as the built-ins.

    mpiexec -n N python -m mpi4py -m pytest --with-mpi -q tests/test_plugins_mpi.py      (N = 3, 5)

``tests.plugin_schemes:MyCrc`` (crc, subclassed) runs beside ``crc`` in one
job; the delays are the kit's staircase (worker w takes 1 + w/2 chunk times
per chunk, itself a ``delays.model`` named by module path), so messages
arrive in one order and both entries must use the same messages in every
round: same statuses, same used workers, same losses, exact gradients, and
the same rounds as the simulator on the same seed.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import runs_by_name
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc import results
from mpigc.config import load_config
from mpigc.sim.driver import simulate

#: what it checks does not change with the world size: the two smallest default sizes (also Open MPI's in CI)
pytestmark = [pytest.mark.mpi(min_size=3), pytest.mark.world_sizes(3, 6)]

ROUNDS = 6
PLUGIN = "tests.plugin_schemes:MyCrc"
DELAYS = "mpigc.testing.backends:Staircase"


def _overrides(m: int) -> list[str]:
    return [f"run.rounds={ROUNDS}", "run.verify=true", 'run.detail="full"', "run.round_timeout=5.0",
            f'code.scheme=["crc", "{PLUGIN}"]', "code.load=2", f'delays.model="{DELAYS}"', "delays.chunk_time=0.01",
            "workload.features=30", f"workload.samples={8 * m}"]


def test_a_module_path_plug_in_runs_as_the_built_in_on_every_rank(tmp_path_factory):
    world = MPI.COMM_WORLD
    m = world.size - 1
    path = shared_path(tmp_path_factory, "plugins.h5")
    run_mpigc(path, _overrides(m))

    def check():
        crc, mine = results.read_runs(path)
        if (crc.name, mine.name) != ("crc", PLUGIN):
            yield f"runs {crc.name}, {mine.name}"
        a, b = crc.tables["rounds"], mine.tables["rounds"]
        if len(a) != ROUNDS or not np.array_equal(a["status"], b["status"]) or not np.all(a["status"] == 0):
            yield f"statuses crc {a['status'].tolist()}, plug-in {b['status'].tolist()}"
        if max(a["grad_error"].max(), b["grad_error"].max()) > 1e-9:
            yield f"grad_error crc {a['grad_error'].tolist()}, plug-in {b['grad_error'].tolist()}"
        if not np.allclose(a["loss"], b["loss"], rtol=1e-12, atol=0):
            yield f"losses crc {a['loss'].tolist()}, plug-in {b['loss'].tolist()}"
        used = [{(int(e["round"]), int(e["worker"])) for e in run.tables["events"] if e["used"]} for run in (crc, mine)]
        if used[0] != used[1]:
            yield f"used messages differ: {sorted(used[0] ^ used[1])}"
        staircase = ("delays.model", "module path", "Staircase", results.provenance("mpi")["mpigc_version"])
        kinds = [[(p["key"], p["source"], p["attr"], p["version"]) for p in run.attrs["plugins"]]
                 for run in (crc, mine)]
        if kinds != [[staircase], [("code.scheme", "module path", "MyCrc", "0.0.test"), staircase]]:
            yield f"plug-in provenance {kinds}"
        if mine.attrs.get("backend") != "mpi":
            yield f"backend {mine.attrs.get('backend')}"
        sim_path = path + ".sim.h5"
        simulate(load_config(None, [*_overrides(m), f"code.workers={m}"], backend="sim"), sim_path, log=io.StringIO())
        for run in runs_by_name(sim_path, ("crc", PLUGIN)).values():
            if not np.allclose(run.tables["rounds"]["loss"], a["loss"], rtol=1e-12, atol=0):
                yield f"{run.name}: simulator losses {run.tables['rounds']['loss'].tolist()}, mpi {a['loss'].tolist()}"

    assert_all(verdict(check))


def test_a_bad_plug_in_ends_every_rank_with_exit_2():
    """Rank 0 finds it while checking the config and broadcasts the verdict: no rank waits."""
    import argparse

    from mpigc.mpi import launch

    dup = MPI.COMM_WORLD.Dup()
    try:
        rc = launch.main(argparse.Namespace(config=None, overrides=['code.scheme="tests.plugin_broken:X"'],
                                            out="", name=None), comm=dup)
    finally:
        dup.Free()
    assert MPI.COMM_WORLD.allgather(rc) == [2] * MPI.COMM_WORLD.size
