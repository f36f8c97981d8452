"""``mpigc plot`` and ``mpigc timeline`` on an MPI run, its simulation and a damaged run in one file.

Run as ``mpiexec -n 3 python -m mpi4py -m pytest --with-mpi tests/test_viz_mpi.py`` (and at 5 ranks).
All ranks run the MPI run; rank 0 then simulates the same config into the same file, adds a damaged
run, and runs the two commands as a user would (subprocesses).
"""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.config import load_config
from mpigc.results import read_runs
from mpigc.sim.driver import simulate

pytestmark = pytest.mark.mpi(min_size=3)
pytest.importorskip("matplotlib")


def _config(workers: int) -> list[str]:
    # partial sends after every chunk; exponential stragglers leave late messages for the next round (stale)
    return ['code.scheme="partial"', f"code.workers={workers}", "code.load=2", "run.rounds=12", 'run.detail="full"',
            'delays.model="shifted-exponential"', "delays.chunk_time=0.004", "delays.scale=1.5", "run.seed=3"]


def _mpigc(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpigc", *argv], capture_output=True, text=True, timeout=600)


def test_plot_and_timeline_on_mpi_and_simulated_runs(tmp_path_factory, check_trace):
    workers = MPI.COMM_WORLD.size - 1
    path = shared_path(tmp_path_factory, "viz.h5")
    run_mpigc(path, _config(workers))

    def check():
        simulate(load_config(None, _config(workers), backend="sim"), path, "sim", log=io.StringIO())
        with h5py.File(path, "a") as f:                 # a copy of the MPI run that lost its rounds table
            f["runs"].copy(f["runs/partial"], "damaged")
            del f["runs/damaged/rounds"]
        out = Path(path).parent / "plots"
        proc = _mpigc("plot", path, "--out", str(out))
        if proc.returncode != 0:
            yield f"plot exit {proc.returncode}: {proc.stderr}"
            return
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
        if len(warnings) != 1 or "'damaged'" not in warnings[0]:
            yield f"warnings {warnings}"
        want = {"partial-sim-latency"} | {f"{run}-{kind}" for run in ("partial", "sim")
                                           for kind in ("rounds", "workers", "messages")}
        pngs = {p.stem: p.stat().st_size for p in out.glob("*.png")}
        if set(pngs) != want or min(pngs.values()) < 5000:
            yield f"figures {pngs}, want {sorted(want)} (the MPI run and its simulation side by side)"
        page = (out / "index.html").read_text()
        if not all(f'src="{stem}.png"' in page for stem in want) or "<td>mpi</td>" not in page:
            yield "index.html lacks a figure or the MPI run's backend"
        runs = {r.name: r for r in read_runs(path, ["partial", "sim"])}
        for name, clock in (("partial", "MPI, rank 0's wall clock"), ("sim", "simulator, virtual time")):
            target = Path(path).parent / f"{name}.json.gz"
            proc = _mpigc("timeline", path, "--run", name, "--out", str(target))
            if proc.returncode != 0:
                yield f"timeline {name}: exit {proc.returncode}: {proc.stderr}"
                continue
            with gzip.open(target) as f:
                trace = json.load(f)
            events = runs[name].tables["events"]
            if events.size == 0 or not events["used"].any():
                yield f"{name}: no used message in the events table"
            yield from (f"{name}: {p}" for p in check_trace(trace, events, 0, 12, workers))
            if trace["otherData"]["clock"] != clock:
                yield f"{name}: clock {trace['otherData']['clock']!r}"

    assert_all(verdict(check))
