"""A signal during the final merge into a large result file: the run is written once, marked, nothing left over.

Serial and slow (marked ``slow``): every test appends a short run to a
400 MB result file (one run of zeros, made once per module and hard-linked
into each test's directory: a commit never writes the file in place, so the
shared inode is never changed), waits until the merge's temporary file
appears and sends the signal then. Expected: exit 128 + signal number, the
new run in the file exactly once and marked with the signal, no temporary
or side file left. Under ``mpiexec`` the signal goes to rank 0 (the pid in
the temporary file's name) or to ``mpiexec``, which forwards it to every
rank: the workers hold it until rank 0 has merged.

400 MB is the size the failure was reported at; copying it takes long
enough (about a second) that the signal lands inside the commit.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import mpigc
from mpigc.results import EVENTS_DTYPE, ResultFile

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(mpigc.__file__))
#: size of the result file the run is merged into (the size of the report's failure)
BIG_BYTES = 400 * 2**20
_MPIEXEC = Path(sys.executable).parent / "mpiexec"
MPIEXEC = str(_MPIEXEC) if _MPIEXEC.is_file() else shutil.which("mpiexec")
IN_MPI_JOB = any(k.startswith(("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")) for k in os.environ)
TMP = re.compile(r"\.r\.h5\.(\d+)\.tmp\Z")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """A 400 MB result file holding one run (``big``) of zero rows."""
    path = tmp_path_factory.mktemp("big") / "big.h5"
    writer = ResultFile(path).new_run("big", {}, ["events"])
    writer.append("events", np.zeros(BIG_BYTES // EVENTS_DTYPE.itemsize, EVENTS_DTYPE))
    writer.flush()
    assert path.stat().st_size >= BIG_BYTES
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDRA_"))}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])
    env["MPIEXEC_TIMEOUT"] = "240"
    return env


def _signal_in_merge(cmd: list[str], out: Path, sig: int, to_launcher: bool) -> tuple[int, str]:
    """Start ``cmd``; once the merge's temporary file exists, send ``sig``; return (exit code, stderr)."""
    err_path = out.with_name("stderr.txt")
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=out.parent, env=_env(),
                                start_new_session=True)
        try:
            deadline, merging = time.monotonic() + 240, None
            while merging is None and proc.poll() is None and time.monotonic() < deadline:
                merging = next((int(m.group(1)) for n in os.listdir(out.parent) if (m := TMP.match(n))), None)
                time.sleep(0.001)
            assert merging is not None, f"no merge seen (exit {proc.poll()}): {err_path.read_text()[-2000:]}"
            os.kill(proc.pid if to_launcher else merging, sig)
            code = proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return code, err_path.read_text()


def _check(out: Path, name: str, rounds: int, sig: int, code: int, err: str) -> None:
    """Exit 128 + sig; ``big`` and the new run, once each, the new one marked; no temporary or side file."""
    assert code == 128 + sig, (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    with h5py.File(out, "r") as f:  # not read_runs: it would read the 400 MB run too
        assert list(f["runs"]) == ["big", name]
        run = f["runs"][name]
        assert run.attrs["interrupted"] == signal.Signals(sig).name
        assert np.array_equal(run["rounds"]["round"], np.arange(rounds))
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.h5", "stderr.txt"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_during_the_final_merge_of_simulate(tmp_path, big_file, sig):
    out = tmp_path / "r.h5"
    os.link(big_file, out)
    cmd = [sys.executable, "-m", "mpigc", "simulate", "--set", "run.rounds=50", "--set", 'code.scheme="crc"',
           "--name", "termsim", "--out", str(out)]
    code, err = _signal_in_merge(cmd, out, sig, to_launcher=True)
    _check(out, "termsim", 50, sig, code, err)
    assert f"mpigc: interrupted by {signal.Signals(sig).name}" in err


@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found next to python or on PATH")
@pytest.mark.skipif(IN_MPI_JOB, reason="launches its own mpiexec: run serially, not under mpiexec")
@pytest.mark.parametrize("target", ["rank0", "mpiexec"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_final_merge_of_mpiexec(tmp_path, big_file, target, sig):
    out = tmp_path / "r.h5"
    os.link(big_file, out)
    cmd = [MPIEXEC, "-n", "3", sys.executable, "-m", "mpigc", "run", "--set", "run.rounds=20",
           "--set", 'code.scheme="crc"', "--name", "termmpi", "--out", str(out)]
    code, err = _signal_in_merge(cmd, out, sig, to_launcher=target == "mpiexec")
    _check(out, "termmpi", 20, sig, code, err)
