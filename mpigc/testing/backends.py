"""The kit's backend check: one short run in the simulator and one under ``mpiexec``, compared round by round.

Both runs use :class:`Staircase` delays (worker w takes 1 + w/2 chunk
times per chunk), so messages arrive in one order, far enough apart (5 ms
per chunk at the default chunk time) that scheduling noise on a loaded
machine does not reorder them; every round then uses the same messages on
both backends, and the rounds' statuses, coefficient errors and training
losses must agree. ``run.verify`` is on: exact rounds must also match the
true gradient. The MPI run is a subprocess (``mpiexec -n N python -m mpigc
run``) that sees this process's ``sys.path``, so a plug-in importable here is
importable on every rank.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from mpigc import results
from mpigc.codes import make_scheme
from mpigc.config import Config, load_config
from mpigc.core.policy import EXACT, UNSOUND
from mpigc.delays import StragglerModel
from mpigc.errors import InputError
from mpigc.sim.driver import simulate
from mpigc.testing.checks import FAIL, PASS, Result

ROUNDS = 4
CHUNK_TIME = 0.01
#: workers tried (the first the scheme plans) when ``--mpi`` is not given; mpiexec then runs m + 1 ranks
WORKERS = (3, 4, 5, 6)
MPI_TIMEOUT = 300.0
GRAD_TOL = 1e-9


class Staircase(StragglerModel):
    """Worker w takes 1 + w/2 chunk times per chunk, in every round: one arrival order on every backend."""

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        """Return 1 + w/2 in worker w's column."""
        return np.broadcast_to(1.0 + 0.5 * np.arange(self.workers), (positions, self.workers)).copy()


def backend_config(name: str, overrides: list[str], workers: int) -> list[str] | None:
    """Return the overrides of the backend runs (the first load the scheme accepts), or None if none fits."""
    for load in (2, 1, 3):
        over = [f'code.scheme="{name}"', f"code.workers={workers}", f"code.load={load}", f"run.rounds={ROUNDS}",
                "run.verify=true", "run.seed=3", f'delays.model="{__name__}:Staircase"',
                f"delays.chunk_time={CHUNK_TIME}", "workload.features=20", f"workload.samples={24 * workers}",
                'run.detail="rounds"', *overrides]
        try:
            config = load_config(None, over, backend="sim")
            make_scheme(config.codes[0], workers, config.run.seed)
        except InputError:
            continue
        return over
    return None


def check_backends(name: str, overrides: list[str], ranks: int | None) -> Result:
    """Run the scheme briefly in the simulator and (``ranks`` > 0, or mpiexec found) under mpiexec; compare.

    ``ranks`` None: the first of :data:`WORKERS` the scheme plans, plus one rank, if mpiexec is on PATH.
    """
    mpiexec = shutil.which("mpiexec")
    if ranks is not None and ranks != 0 and ranks < 3:
        raise InputError("check", f"--mpi needs at least 3 ranks (2 workers), got {ranks}")
    sizes = [ranks - 1] if ranks else list(WORKERS)
    found = next(((m, over) for m in sizes if (over := backend_config(name, overrides, m)) is not None), None)
    if found is None:
        return Result("backends", FAIL, f"no load in 1..3 plans at m = {' or '.join(map(str, sizes))} workers")
    workers, over = found
    if ranks is None:
        ranks = workers + 1 if mpiexec else 0
    with tempfile.TemporaryDirectory(prefix="mpigc-check-") as tmp:
        sim_path = os.path.join(tmp, "sim.h5")
        config: Config = load_config(None, over, backend="sim")
        simulate(config, sim_path, log=io.StringIO())
        (sim,) = results.read_runs(sim_path)
        problems = list(_own_problems("simulate", sim.tables["rounds"]))
        if problems:
            return Result("backends", FAIL, "; ".join(problems))
        if not ranks:
            why = "--mpi 0" if mpiexec else "mpiexec not found"
            return Result("backends", PASS, f"simulate: {ROUNDS} rounds, exact ones match the true gradient; "
                                            f"mpiexec run skipped ({why})")
        if mpiexec is None:
            return Result("backends", FAIL, "--mpi given but mpiexec is not on PATH")
        mpi_path = os.path.join(tmp, "mpi.h5")
        failed = _run_mpi(mpiexec, ranks, over, mpi_path)
        if failed:
            return Result("backends", FAIL, failed)
        (run,) = results.read_runs(mpi_path)
        problems = list(_own_problems("mpiexec", run.tables["rounds"]))
        problems += list(_disagreements(sim.tables["rounds"], run.tables["rounds"]))
    if problems:
        return Result("backends", FAIL, "; ".join(problems[:3]))
    return Result("backends", PASS, f"simulate and mpiexec -n {ranks} agree on {ROUNDS} rounds (statuses, "
                                    "coef_error, losses); exact rounds match the true gradient")


def _own_problems(backend: str, rounds: np.ndarray):
    # exact on paper: status 0, or 3 when the run found the decode unsound (ill-conditioned or off the truth)
    exact = np.isin(rounds["status"], (EXACT, UNSOUND))
    bad = exact & ~(rounds["grad_error"] <= GRAD_TOL)
    if np.any(bad):
        yield f"{backend}: exact rounds {rounds['round'][bad].tolist()} have grad_error " \
              f"{rounds['grad_error'][bad].tolist()}"


def _disagreements(sim: np.ndarray, mpi: np.ndarray):
    if len(sim) != len(mpi):
        yield f"simulate ran {len(sim)} rounds, mpiexec {len(mpi)}"
        return
    if not np.array_equal(sim["status"], mpi["status"]):
        yield f"statuses differ: simulate {sim['status'].tolist()}, mpiexec {mpi['status'].tolist()}"
    if not np.allclose(sim["coef_error"], mpi["coef_error"], rtol=1e-6, atol=1e-9, equal_nan=True):
        yield f"coef_error differs: simulate {sim['coef_error'].tolist()}, mpiexec {mpi['coef_error'].tolist()}"
    if not np.allclose(sim["loss"], mpi["loss"], rtol=1e-8, atol=1e-12, equal_nan=True):
        yield f"losses differ: simulate {sim['loss'].tolist()}, mpiexec {mpi['loss'].tolist()}"


def _run_mpi(mpiexec: str, ranks: int, overrides: list[str], out: str) -> str | None:
    """Run ``mpigc run`` under mpiexec; return why it failed, or None."""
    env = dict(os.environ)
    paths = [os.path.abspath(p or os.curdir) for p in sys.path if os.path.isdir(p or os.curdir)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + env.get("PYTHONPATH", "").split(os.pathsep)))
    env.setdefault("MPIEXEC_TIMEOUT", str(int(MPI_TIMEOUT)))
    args = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpigc", "run", "--out", out]
    for item in overrides:
        args += ["--set", item]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=MPI_TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        return f"mpiexec -n {ranks} did not finish within {MPI_TIMEOUT + 30:g} s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"mpiexec -n {ranks} exited with {proc.returncode}: {last}"
    return None
