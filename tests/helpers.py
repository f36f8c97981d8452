"""Helpers shared by the serial tests: child processes, ``mpiexec``, stderr, data paths, decoding.

Test modules import them as ``from helpers import ...`` (pytest puts ``tests/``
on ``sys.path``); no test module imports another (``test_suite_rules.py``
checks). Nothing here imports mpi4py: helpers for tests running under
``mpiexec ... pytest --with-mpi`` live in ``mpitools.py``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pytest

import mpigc
from mpigc.codes import combine
from mpigc.config import CodeConfig
from mpigc.core.entries import plan_entries
from mpigc.core.inputs import build_delays, build_workload
from mpigc.delays.lambda_traces import TRACE_DIR_ENV, trace_dir
from mpigc.results import read_runs
from mpigc.sim import Network, Simulator

#: the checkout (tests/..)
ROOT = Path(__file__).resolve().parents[1]
#: the directory holding the mpigc package these tests import: children put it first on PYTHONPATH
PACKAGE_PARENT = str(Path(mpigc.__file__).resolve().parents[1])

# ----------------------------------------------------------------------------- child processes and mpiexec

#: prefixes of the variables an MPI job gives its ranks: a child started from a rank must not inherit
#: them (a nested mpiexec or an mpi4py import would try to join the job)
_JOB_VARS = ("PMI_", "PMIX_", "OMPI_", "HYDRA_", "MPIR_", "MPI_LOCALNRANKS")
#: launcher settings a user exports once (Open MPI as root, oversubscription): kept for a child job
_LAUNCHER_SETTINGS = ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_MCA_", "PRTE_MCA_", "PRTE_ALLOW_")
#: this process is a rank of an MPI job (``mpiexec ... pytest --with-mpi``)
IN_MPI_JOB = any(k.startswith(("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")) for k in os.environ)
#: seconds the launcher of a child job may run (``MPIEXEC_TIMEOUT``); ``TIMEOUT`` is the outer limit
MPIEXEC_TIMEOUT = 60
TIMEOUT = 90


def find_mpiexec() -> str | None:
    """The ``mpiexec`` next to this Python (a pip-installed MPI's) or else the first on ``PATH``."""
    return shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                         os.environ.get("PATH", "")]))


MPIEXEC = find_mpiexec()

#: ``pytest -n N --dist loadgroup`` (tests/run-all.sh) runs the tests of this group one after another on one
#: worker: two mpiexec jobs at once on a small machine would break the timings these tests assert
MPIEXEC_GROUP = pytest.mark.xdist_group("mpiexec")
#: marks for a serial test that starts its own ``mpiexec`` job (skip reasons printed with ``-ra``)
OWN_MPIEXEC = [
    pytest.mark.slow,
    MPIEXEC_GROUP,
    pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found next to python or on PATH"),
    pytest.mark.skipif(IN_MPI_JOB, reason="launches its own mpiexec: run serially, not under mpiexec"),
]


def own_mpiexec(test):
    """Decorator: the marks of :data:`OWN_MPIEXEC` on one test (``pytestmark = OWN_MPIEXEC`` marks a module)."""
    for mark in OWN_MPIEXEC:
        test = mark(test)
    return test


def child_env(extra: Mapping[str, str] | None = None, *, mpiexec_timeout: float = MPIEXEC_TIMEOUT
              ) -> dict[str, str]:
    """The environment of a child process (``python -m mpigc``, a script, or an ``mpiexec`` job).

    This process's environment without the variables of an MPI job it may run in, the
    mpigc under test first on ``PYTHONPATH``, ``MPIEXEC_TIMEOUT`` set, then ``extra``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_JOB_VARS) or k.startswith(_LAUNCHER_SETTINGS)}
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, *filter(None, [os.environ.get("PYTHONPATH")])])
    env["MPIEXEC_TIMEOUT"] = str(int(mpiexec_timeout))
    env.update(extra or {})
    return env


def mpiexec_command(n: int, *args: str) -> list[str]:
    """``mpiexec -n n python ARGS`` (this Python)."""
    assert MPIEXEC is not None, "no mpiexec: mark the test with OWN_MPIEXEC"
    return [MPIEXEC, "-n", str(n), sys.executable, *args]


def mpirun(n: int, *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``mpiexec -n n python ARGS``; return the finished process and its wall time."""
    start = time.perf_counter()
    proc = subprocess.run(mpiexec_command(n, *args), capture_output=True, text=True, cwd=cwd, env=child_env(),
                          timeout=TIMEOUT)
    return proc, time.perf_counter() - start


#: the first words of mpigc's progress lines on stderr (``mpigc run`` and ``mpigc simulate``)
PROGRESS_LINES = ("running ", "simulating ", "  ")


def own_lines(stderr: str, *, progress: bool = True) -> list[str]:
    """The non-blank lines of a child's stderr that mpigc wrote, without its progress lines if ``progress`` is False.

    Leaves out what a launcher adds: MPICH's mpiexec adds nothing; Open MPI's prterun adds a
    dashed block about non-zero exits and, at times, libevent warnings (``[warn] ...``) that
    no setting silences.
    """
    out, banner = [], False
    for line in stderr.strip().splitlines():
        if line.startswith("-----"):
            banner = not banner
            continue
        if banner or not line.strip() or line.startswith("[warn]"):
            continue
        if not progress and line.startswith(PROGRESS_LINES):
            continue
        out.append(line)
    return out


# ----------------------------------------------------------------------------- the processes of a job

def descendants(root: int) -> list[int]:
    """PIDs of every process below ``root`` (an ``mpiexec``'s proxies and ranks), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def rank_of(pid: int) -> int | None:
    """The MPI rank an mpigc process was started as (MPICH's ``PMI_RANK``, Open MPI's ``OMPI_COMM_WORLD_RANK``).

    None for a launcher's proxy, a process that is not mpigc, or one gone meanwhile.
    """
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"mpigc" not in f.read():
                return None
    except OSError:
        return None
    for item in env:
        for key in (b"PMI_RANK=", b"OMPI_COMM_WORLD_RANK="):
            if item.startswith(key) and item[len(key):].isdigit():
                return int(item[len(key):])
    return None


def job_ranks(root: int) -> dict[int, int]:
    """The ranks of the mpigc job below ``root``: rank -> PID."""
    ranks = {}
    for pid in descendants(root):
        rank = rank_of(pid)
        if rank is not None:
            ranks[rank] = pid
    return ranks


# ----------------------------------------------------------------------------- results and data

def runs_by_name(path: str | os.PathLike, names: Iterable[str]) -> dict:
    """The runs in the file ``path`` by name, asserting they are exactly ``names``, in that order.

    Tests loop over the result; an empty or short file must fail, not pass vacuously.
    """
    runs = {run.name: run for run in read_runs(path)}
    assert list(runs) == list(names), f"{path}: runs {list(runs)}, expected {list(names)}"
    return runs


def lambda_trace(name: str) -> Path:
    """The path of one Lambda trace under ``$MPIGC_TRACE_DIR`` (docs/data.md); skips the test when absent.

    The traces are data kept outside the repository: without them the test is skipped, its reason
    (the path looked at) printed with ``-ra``.
    """
    path = trace_dir() / name
    if not path.is_file():
        pytest.skip(f"Lambda trace {path} not present (set {TRACE_DIR_ENV} to the traces' directory)")
    return path


# ----------------------------------------------------------------------------- decoding

def code(scheme: str, **kw) -> CodeConfig:
    """A code entry with every field given: ``kw`` over the defaults of a load-2 exact decode."""
    base = dict(scheme=scheme, name=None, chunks=None, load=2, parts=1, assignment=None, ordering="natural",
                decode="exact", deadline=None, transport="stream", use_partial=True, rescale=False)
    base.update(kw)
    return CodeConfig(**base)


def chunk_gradients(n: int, dim: int, seed: int) -> dict[int, np.ndarray]:
    """Gradients of ``n`` chunks, of magnitudes spread over four decades."""
    rng = np.random.default_rng(seed)
    return {i: rng.standard_normal(dim) * 10.0 ** rng.uniform(-2, 2) for i in range(n)}


def decode_until_exact(scheme, rng: np.random.Generator, dim: int, dead: set[int] = frozenset()):
    """Deliver every message in a random interleaving; stop at the first exact decode.

    Returns the decoder's combination, the gradient it combines and the true gradient.
    """
    grads = chunk_gradients(scheme.plan.chunks, dim, int(rng.integers(1 << 30)))
    truth = np.sum(list(grads.values()), axis=0)
    queues = {w: list(scheme.sends_after(w)) for w in range(scheme.plan.workers) if w not in dead}
    decoder, vectors = scheme.decoder(), {}
    while queues and not decoder.exact:
        w = list(queues)[int(rng.integers(len(queues)))]
        p = queues[w].pop(0)
        if not queues[w]:
            del queues[w]
        vectors[(w, p)] = scheme.encode(w, p, grads)
        decoder.add(w, p)
    comb = decoder.combination()
    return comb, combine(comb, vectors, dim), truth


def relerr(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / |b|``."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ----------------------------------------------------------------------------- unbiasedness in the simulator

class _Frozen:
    """A workload whose model never moves; it records every decoded gradient it is handed."""

    def __init__(self, workload):
        self.inner = workload
        self.estimates: list[np.ndarray] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def update(self, model, gradient):
        self.estimates.append(np.array(gradient))
        return model


def simulate_estimates(config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoded gradients of every round (zero for undecodable ones), the true gradient, and the rounds' statuses."""
    m = config.codes[0].workers
    delays = build_delays(config, m)
    (entry,) = plan_entries(config, m, delays)
    workload = _Frozen(build_workload(config, entry.scheme.plan.chunks))
    sim = Simulator(entry.scheme, delays, entry.policy, network=Network(), workload=workload)
    rows = []
    sim.run(config.run.rounds, lambda batch: rows.extend(batch.rounds))
    assert len(rows) == config.run.rounds, f"{len(rows)} rounds of {config.run.rounds}"
    status = np.array([row[2] for row in rows])
    estimates = np.zeros((len(rows), workload.dim))
    estimates[status != 2] = workload.estimates
    truth, _ = workload.inner.full_gradient(workload.inner.initial_model())
    return estimates, truth, status


def z_scores(estimates: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Bias of the mean estimate in standard errors: along the gradient, then per coordinate."""
    direction = truth / np.linalg.norm(truth)
    along = estimates @ direction
    first = (along.mean() - truth @ direction) / (along.std(ddof=1) / np.sqrt(len(along)))
    coords = (estimates.mean(axis=0) - truth) / (estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates)))
    return np.concatenate([[first], coords])
