"""F9 (ours): mean round latency against the gradient length d, MPI and simulator side by side.

Where do communication-efficient codes (l > 1: messages of d/l values)
matter? ``uncoded``, ``crc``, ``poly`` l = 2 and ``partial`` l = 1 and 2
(every coded scheme tolerating s = 1 straggler, ``jobs/configs/f9-network.toml``)
on 8 workers, for d = 10^3 … 10^7. Left: mean latency over the rounds every
scheme of a d decodes exactly, MPI (solid) and the simulator with the probed
``[network]`` table (dashed). Right: each scheme's mean over ``partial``
l = 1's, per backend: below 1, faster. The crossover d (the first d from
which an l = 2 code stays faster than an l = 1 code, :data:`PAIRS`) is
reported per backend; no claim is checked: which way it goes is the result.

    python analysis/fig9_network.py results/f9-mpi.h5 results/f9-sim.h5 --out figures

:func:`make` produces those files (``make_figures.py --only F9`` calls it):
``mpiexec -n 9 python -m mpigc probe --network`` at the largest d, one MPI job
per d (fewer rounds at larger d), and ``simulate`` with the probed table.
"""
from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402
from analysis import sweeps  # noqa: E402

STEM = "f9_network"
CONFIG = sweeps.CONFIGS / "f9-network.toml"
RANKS = 9
ENTRIES = ("uncoded", "crc", "poly-l2", "partial-l1", "partial-l2")
BASE = "partial-l1"
#: (d, rounds): fewer rounds where one round takes seconds
POINTS = ((10**3, 20), (10**4, 20), (10**5, 20), (10**6, 10), (3 * 10**6, 6), (10**7, 4))
QUICK_POINTS = ((10**3, 6), (10**5, 6), (10**6, 4))
JOB_TIMEOUT = 1800


def points(quick: bool) -> tuple[tuple[int, int], ...]:
    """The (d, rounds) of the sweep."""
    return QUICK_POINTS if quick else POINTS


def settings(quick: bool, backend: str) -> dict:
    """The settings of one F9 file: backend, points and the config's text."""
    return sweeps.settings("F9", quick, backend=backend, points=[list(p) for p in points(quick)],
                           config=CONFIG.read_text(encoding="utf-8") if CONFIG.exists() else None)


def _mpi(cmd: list[str], what: str) -> None:
    print(f"  F9 launching: {' '.join(shlex.quote(x) for x in cmd)}", flush=True)
    env = {**os.environ, "MPIEXEC_TIMEOUT": os.environ.get("MPIEXEC_TIMEOUT", str(JOB_TIMEOUT))}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT + 60)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise sweeps.SweepError(f"F9: {what} failed (exit {proc.returncode}): {tail}")


def network_overrides(table_file: Path) -> list[str]:
    """``--set`` values of the ``[network]`` table in ``table_file`` (as ``probe --network`` writes it)."""
    table = tomllib.loads(table_file.read_text(encoding="utf-8"))["network"]
    return [f"network.{k}={str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in table.items()]


def make(results: Path, quick: bool, mpiexec: str = "mpiexec") -> list[Path]:
    """Make ``f9-network.toml``, ``f9-mpi.h5`` and ``f9-sim.h5`` in ``results`` unless reusable; return the h5 paths."""
    from mpigc.config import load_config
    from mpigc.sim.driver import simulate

    results.mkdir(parents=True, exist_ok=True)
    table, mpi_out, sim_out = results / "f9-network.toml", results / "f9-mpi.h5", results / "f9-sim.h5"
    launcher = [*shlex.split(mpiexec), "-n", str(RANKS), sys.executable, "-m", "mpigc"]
    top = max(d for d, _ in points(quick))
    if not sweeps.reusable(mpi_out, settings(quick, "mpi")) or not table.exists():
        t0 = time.perf_counter()
        _mpi([*launcher, "probe", "--network", str(CONFIG), "--set", f"workload.features={top}",
              "--out", str(table)], "the network probe")
        tmp = mpi_out.with_name(mpi_out.name + ".partial")
        tmp.unlink(missing_ok=True)
        for d, rounds in points(quick):
            _mpi([*launcher, "run", str(CONFIG), "--set", f"workload.features={d}", "--set", f"run.rounds={rounds}",
                  "--set", 'run.detail="rounds"', "--out", str(tmp)], f"the MPI job at d = {d}")
        sweeps.stamp(tmp, settings(quick, "mpi"))
        tmp.replace(mpi_out)
        sim_out.unlink(missing_ok=True)  # simulated with the new probe's table
        print(f"  F9: probe and MPI runs in {time.perf_counter() - t0:.1f} s -> {mpi_out}", flush=True)
    if not sweeps.reusable(sim_out, settings(quick, "sim")):
        tmp = sim_out.with_name(sim_out.name + ".partial")
        tmp.unlink(missing_ok=True)
        network = network_overrides(table)
        for d, rounds in points(quick):
            config = load_config(str(CONFIG), [f"workload.features={d}", f"run.rounds={rounds}", *network])
            simulate(config, str(tmp), log=io.StringIO())
        sweeps.stamp(tmp, settings(quick, "sim"))
        tmp.replace(sim_out)
        print(f"  F9: simulations with {' '.join(network)} -> {sim_out}", flush=True)
    return [mpi_out, sim_out]


def means(runs: Sequence[c.Run]) -> dict[str, dict[str, dict[int, float]]]:
    """backend -> entry -> d -> mean latency over the rounds every entry of that (backend, d) decodes exactly."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for (backend, dim), group in c.group_by(runs, "backend", lambda r: int(r.key("workload.features"))).items():
        ok = c.common_exact(group)
        for run in group:
            lat = run.table("rounds")["latency"][ok]
            out.setdefault(backend, {}).setdefault(run.entry, {})[dim] = float(lat.mean()) if lat.size else np.nan
    return out


#: (l = 2 code, l = 1 code) pairs whose crossover is reported
PAIRS = (("partial-l2", "partial-l1"), ("poly-l2", "partial-l1"), ("poly-l2", "crc"), ("partial-l2", "crc"))


def crossover(curve: dict[str, dict[int, float]], fast: str = "partial-l2", slow: str = BASE) -> float:
    """The first d from which ``fast`` stays faster than ``slow`` (NaN if it never is)."""
    dims = sorted(set(curve.get(fast, {})) & set(curve.get(slow, {})))
    wins = [curve[fast][d] < curve[slow][d] for d in dims]
    for i, d in enumerate(dims):
        if all(wins[i:]):
            return float(d)
    return float("nan")


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F9 from ``files`` into ``out_dir``; return files and key numbers."""
    runs = [r for r in c.load_runs(files) if r.entry in ENTRIES and "rounds" in r.tables]
    table = means(runs)
    missing = [b for b in ("mpi", "sim") if b not in table or BASE not in table[b]]
    if missing:
        have = ", ".join(sorted({f"{r.entry}/{r.backend}" for r in runs})) or "none"
        raise c.FigureDataError(f"{', '.join(files)}: F9 needs mpi and sim runs of {', '.join(ENTRIES)} "
                                f"(f9-network.toml) at several d; missing backend(s) {', '.join(missing)} "
                                f"(runs: {have})")
    plt = c.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 4.1))
    numbers: dict = {}
    for i, entry in enumerate(ENTRIES):
        for backend, style in (("mpi", "-o"), ("sim", "--s")):
            curve = table.get(backend, {}).get(entry)
            if not curve:
                continue
            dims = sorted(curve)
            ys = np.array([curve[d] for d in dims])
            base = np.array([table[backend][BASE].get(d, np.nan) for d in dims])
            label = f"{entry} ({backend})"
            ax1.plot(dims, ys * 1e3, style, color=f"C{i}", label=label, alpha=0.9 if backend == "mpi" else 0.7)
            ax2.plot(dims, ys / base, style, color=f"C{i}", label=label, alpha=0.9 if backend == "mpi" else 0.7)
            for d, y in zip(dims, ys):
                numbers[f"{backend} {entry} d={d:.0e} mean ms"] = y * 1e3
    for backend in ("mpi", "sim"):
        for fast, slow in PAIRS:
            numbers[f"{backend} crossover d ({fast} < {slow} from here on)"] = crossover(table[backend], fast, slow)
    dtype = "/".join(sorted({str(r.key("workload.dtype", "float64")) for r in runs}))
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel(f"gradient length d (a message carries d/l + 1 + 9 values of {dtype})")
    ax1.set_yscale("log")
    ax1.set_ylabel("mean round latency (ms)")
    ax1.set_title("mean latency, rounds all schemes decode (solid: MPI, dashed: simulator)")
    ax1.legend(loc="upper left", ncol=2, fontsize=6.5)
    ax2.axhline(1.0, color="0.4", lw=0.8, ls=":")
    ax2.set_ylabel(f"mean latency / {BASE}'s (same backend)")
    ax2.set_title("below 1: faster than partial l = 1")
    mpi_runs = [r for r in runs if r.backend == "mpi"]
    hosts = mpi_runs[0].attrs.get("hosts", "") if mpi_runs else ""
    hosts = ", ".join(hosts) if isinstance(hosts, list) else str(hosts)
    net = next((r.config.get("network", {}) for r in runs if r.backend == "sim"), {})
    probed = (f"latency {net.get('latency', 0) * 1e3:.2f} ms, gap {net.get('gap', 0) * 1e3:.2f} ms, bandwidth "
              f"{net.get('bandwidth', 0) / 1e9:.2f} GB/s, shared ingest {net.get('shared_ingest', False)}")
    fig.suptitle(f"F9 · round latency vs gradient length, 8 workers (mpiexec -n {RANKS}"
                 f"{', host ' + hosts if hosts else ''}) · simulator: probed [network] {probed}", fontsize=8.5)
    fig.tight_layout()
    c.add_caption(fig, c.caption(runs, f"{dtype} messages; s = 1 for every coded scheme (uncoded: s = 0)"))
    paths = c.save(fig, out_dir, STEM)
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": []}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
