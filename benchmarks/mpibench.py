"""Shared plumbing of the MPI runtime benchmarks: launching jobs, provenance, tables, summary runs.

Used by ``mpi_runtime.py`` (the entry point) and ``mpi_scale.py``. Jobs run
as subprocesses (``mpiexec -n N python -m mpigc run ...``) so a benchmark
never initialises MPI itself; the MPI library a job really used is read
back from its result file.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from mpigc import results

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "jobs" / "configs"


class Table:
    """Aligned columns (units in the names), each row printed and flushed as it is made."""

    def __init__(self, columns: list[tuple[str, int]]) -> None:
        self.columns = columns
        print("  ".join(name.rjust(width) if i else name.ljust(width)
                        for i, (name, width) in enumerate(columns)), flush=True)

    def row(self, *cells) -> None:
        """Print one row; floats with 2 decimals unless already formatted."""
        out = []
        for i, ((_, width), cell) in enumerate(zip(self.columns, cells)):
            text = f"{cell:.2f}" if isinstance(cell, float) else str(cell)
            out.append(text.rjust(width) if i else text.ljust(width))
        print("  ".join(out), flush=True)


def mpi_versions() -> tuple[str, str]:
    """MPI library (first line) and mpi4py version, without initialising MPI in this process."""
    import mpi4py

    mpi4py.rc.initialize = False
    mpi4py.rc.finalize = False
    from mpi4py import MPI

    return MPI.Get_library_version().replace("\0", "").strip().splitlines()[0], mpi4py.__version__


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (other jobs on the host distort every timing)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def header(args: argparse.Namespace) -> dict:
    """Print the '#' provenance header; return it for the summary file."""
    library, mpi4py_version = mpi_versions()
    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "mpi_library": library,
        "mpi4py": mpi4py_version,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "mpiexec": args.mpiexec,
        "extra_env": " ".join(args.env) or "none",
        "load_average": loadavg(),
        "measurements": " ".join(args.only),
        "quick": bool(getattr(args, "quick", False)),
    }
    for key, value in info.items():
        print(f"# {key}: {value}", flush=True)
    return info


def job_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of every MPI job: ours, ``MPIEXEC_TIMEOUT`` and each ``--env KEY=VALUE``."""
    env = dict(os.environ)
    env["MPIEXEC_TIMEOUT"] = str(int(args.timeout))
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def show(cmd: list[str]) -> None:
    """Print a command as a '#' line."""
    print("# $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)


def failed(proc_out: str, proc_err: str, returncode: int, cmd: list[str]) -> SystemExit:
    """The exit of a benchmark whose job failed (its output's tail goes to stderr)."""
    sys.stderr.write(proc_out[-4000:] + proc_err[-4000:])
    return SystemExit(f"mpi_runtime: exit code {returncode}: {' '.join(cmd)}")


def launch(args: argparse.Namespace, cmd: list[str], quiet: bool = False) -> float:
    """Run ``cmd`` (its output is shown only if it fails); return its wall time in seconds."""
    if not quiet:
        show(cmd)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=job_env(args), capture_output=True, text=True,
                              timeout=args.timeout + 30)
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"mpi_runtime: timed out after {args.timeout + 30} s: {' '.join(cmd)}") from exc
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise failed(proc.stdout, proc.stderr, proc.returncode, cmd)
    return wall


def mpi_command(args: argparse.Namespace, config: str | None, ranks: int, out: Path,
                sets: list[str] = ()) -> list[str]:
    """``mpiexec -n ranks python -m mpigc run [config] --out out [--set ...]`` (no config: the embedded default)."""
    cmd = [*shlex.split(args.mpiexec), "-n", str(ranks), sys.executable, "-m", "mpigc", "run",
           *([str(CONFIGS / config)] if config else []), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def run_mpi(args: argparse.Namespace, config: str, ranks: int, out: Path, sets: list[str] = (),
            quiet: bool = False) -> float:
    """Run ``mpi_command`` into a fresh file; return its wall time in seconds."""
    out.unlink(missing_ok=True)
    return launch(args, mpi_command(args, config, ranks, out, sets), quiet)


def run_sim(args: argparse.Namespace, config: str, out: Path, sets: list[str] = ()) -> float:
    """``python -m mpigc simulate config --out out``, into a fresh file."""
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "mpigc", "simulate", str(CONFIGS / config), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    return launch(args, cmd)


def job_library(run: results.RunData) -> str:
    """The MPI library an MPI run recorded (the job's, which ``--mpiexec`` may have changed)."""
    return " ".join(str(run.attrs.get("mpi_library", "unknown")).replace("\0", "").split())


def config_of(run: results.RunData) -> dict:
    """A run's resolved config."""
    return tomllib.loads(run.attrs["config"])


def pct(x: np.ndarray, q: float) -> float:
    """Percentile ignoring NaN (NaN if nothing is left)."""
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if x.size else float("nan")


def store(summary: results.ResultFile, name: str, info: dict, attrs: dict) -> None:
    """One summary run: provenance and numbers as attributes, no tables."""
    writer = summary.new_run(name, {**results.provenance("mpi"), **info}, tables=())
    writer.set_attrs(**attrs)
    writer.flush()
