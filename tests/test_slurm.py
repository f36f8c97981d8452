"""The SLURM batch scripts of jobs/slurm/, run here with a stand-in ``srun`` over mpiexec."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import MPIEXEC, OWN_MPIEXEC, ROOT

from mpigc import results

SLURM = ROOT / "jobs" / "slurm"
pytestmark = [*OWN_MPIEXEC, pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")]

FAKE_SRUN = """#!/bin/bash
# stand-in for srun: srun [--mpi=...] [-n N] cmd... -> mpiexec -n N (default SLURM_NTASKS) cmd...
np="${SLURM_NTASKS}"
while [ $# -gt 0 ]; do
    case "$1" in
        --mpi=*|--exclusive|--overlap) shift ;;
        -n|--ntasks) np="$2"; shift 2 ;;
        --ntasks=*) np="${1#--ntasks=}"; shift ;;
        *) break ;;
    esac
done
np="${FAKE_SRUN_NP:-$np}"          # a test sets this to imitate a wrong --mpi plugin
exec "%s" -n "$np" "$@"
"""

TINY = """
[run]
rounds = 3
seed = 1
round_timeout = 5.0

[code]
scheme = "partial"
load = 2

[workload]
samples = 40
features = 10

[delays]
model = "shifted-exponential"
chunk_time = 0.002
"""


@pytest.fixture
def slurm_env(tmp_path):
    """Environment of a fake SLURM allocation: srun stand-in first on PATH, SLURM_* set."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    srun = bindir / "srun"
    srun.write_text(FAKE_SRUN % MPIEXEC)
    srun.chmod(0o755)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHON": sys.executable, "SLURM_NTASKS": "3", "SLURM_JOB_ID": "42", "SLURM_SUBMIT_DIR": str(ROOT),
           "MPIEXEC_TIMEOUT": "120", "CONFIG": str(config)}
    env.pop("FAKE_SRUN_NP", None)
    return env


def sbatch(script: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SLURM / script)], env=env, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_run_sbatch_writes_results(slurm_env, tmp_path):
    out = tmp_path / "run.h5"
    proc = sbatch("run.sbatch", {**slurm_env, "OUT": str(out)})
    assert proc.returncode == 0, proc.stderr
    assert "SLURM_NTASKS" in proc.stdout
    (run,) = results.read_runs(out)
    assert run.attrs["backend"] == "mpi" and run.attrs["workers"] == 2 and run.tables["rounds"].size == 3


def test_sweep_sbatch_array_then_merge(slurm_env, tmp_path):
    res = tmp_path / "sweep"
    env = {**slurm_env, "RESULTS": str(res), "PARAM": "code.parts", "VALUES": "1 2", "SLURM_ARRAY_JOB_ID": "7"}
    for task in ("0", "1"):
        proc = sbatch("sweep.sbatch", {**env, "SLURM_ARRAY_TASK_ID": task})
        assert proc.returncode == 0, proc.stderr
    files = sorted(res.glob("*.h5"))
    assert [f.name for f in files] == ["tiny-code.parts-1.h5", "tiny-code.parts-2.h5"]
    merged = tmp_path / "merged.h5"
    proc = subprocess.run([sys.executable, str(SLURM / "merge.py"), str(merged), *map(str, files)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    runs = results.read_runs(merged)
    assert [r.name for r in runs] == ["partial", "partial-2"]
    assert all(r.tables["rounds"].size == 3 for r in runs)
    bad = sbatch("sweep.sbatch", {**env, "SLURM_ARRAY_TASK_ID": "5"})
    assert bad.returncode != 0 and "outside VALUES" in bad.stderr


def test_campaign_sbatch_makes_a_figure(slurm_env, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figs"
    env = {**slurm_env, "SLURM_NTASKS": "9", "OUT": str(out), "MAKE_FIGURES_ARGS": "--quick --only F4"}
    proc = sbatch("campaign.sbatch", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "f4_poly_instability.png").exists() and (out / "f4_poly_instability.pdf").exists()
    assert (out / "results" / "f4-poly.h5").exists()


@pytest.mark.parametrize("script", ["run.sbatch", "sweep.sbatch", "campaign.sbatch"])
def test_world_size_mismatch_is_refused(slurm_env, tmp_path, script):
    out = tmp_path / "never"
    env = {**slurm_env, "FAKE_SRUN_NP": "1", "OUT": str(out / "x.h5"), "RESULTS": str(out),
           "SLURM_ARRAY_TASK_ID": "0", "MAKE_FIGURES_ARGS": "--only F1"}
    if script == "campaign.sbatch":
        env["SLURM_NTASKS"] = "9"
    proc = sbatch(script, env)
    assert proc.returncode != 0
    assert "world size 1 != SLURM_NTASKS" in proc.stderr
    assert not out.exists()


def test_merge_is_idempotent(tmp_path):
    """A retried merge, or a part named twice, adds no run; distinct runs of the same name are all kept."""
    import io

    from mpigc.config import load_config
    from mpigc.sim.driver import simulate

    parts = []
    for seed in (1, 2):                      # same run names, different content
        part = tmp_path / f"part{seed}.h5"
        simulate(load_config(None, ["run.rounds=4", "code.workers=3", "code.load=2", f"run.seed={seed}",
                                    'code.scheme=["crc", "partial"]']), str(part), log=io.StringIO())
        parts.append(str(part))
    merged = tmp_path / "merged.h5"

    def merge(*files: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, str(SLURM / "merge.py"), str(merged), *files], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc

    first = merge(*parts)
    names = [r.name for r in results.read_runs(merged)]
    assert names == ["crc", "partial", "crc-2", "partial-2"] and "merged 4 run(s)" in first.stdout
    before = merged.read_bytes()
    again = merge(*parts, parts[0])          # the retried job, with a part listed twice
    assert "merged 0 run(s)" in again.stdout and "(6 already there)" in again.stdout
    assert [r.name for r in results.read_runs(merged)] == names and merged.read_bytes() == before
    seeds = [r.attrs["seed"] for r in results.read_runs(merged)]
    assert seeds == [1, 1, 2, 2]
