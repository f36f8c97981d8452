"""Does the simulator with the probed ``[network]`` table predict MPI's round latency at large d?

For each gradient length d: ``mpiexec -n 9 python -m mpigc probe --network``
at that d, one MPI job of ``jobs/configs/network-fidelity.toml`` (crc and
partial, 8 workers, emulated compute), then the simulator on the same seed
twice: with the default ``[network]`` (no communication) and with the
probed table. Per round, rel_diff = |lat_mpi − lat_sim| / lat_sim; the
target is a median ≤ 10 % with the probed table. Where the rest of the
time goes is printed beside it: the share of worker-rounds whose real
compute outlasted the modelled chunk time (CPU, not network) and rank 0's
decode tail (latency − arrival of the last message the decode used).

    python benchmarks/network_fidelity.py [--dims 1e6 4e6] [--rounds 30] [--out DIR]

Writes DIR/network-fidelity.h5 (one summary run per (d, scheme), numbers as
attributes) beside the raw files.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # analysis/ (mpibench.py is beside this file)

from mpibench import CONFIGS, Table, header, launch, loadavg, run_mpi, store  # noqa: E402

from analysis.fig9_network import network_overrides  # noqa: E402
from mpigc import results  # noqa: E402

CONFIG = "network-fidelity.toml"
RANKS = 9
TARGET = 0.10


def probe(args, dim: int, out: Path) -> list[str]:
    """Probe the network at ``dim`` into ``out``; return its ``--set`` values."""
    cmd = [*args.mpiexec.split(), "-n", str(RANKS), sys.executable, "-m", "mpigc", "probe", "--network",
           str(CONFIGS / CONFIG), "--set", f"workload.features={dim}", "--out", str(out)]
    launch(args, cmd)
    return network_overrides(out)


def simulate(sets: list[str], out: Path) -> dict[str, results.RunData]:
    """Simulate the config with ``sets`` into ``out``; return its runs by name."""
    from mpigc.config import load_config
    from mpigc.sim.driver import simulate as sim

    out.unlink(missing_ok=True)
    sim(load_config(str(CONFIGS / CONFIG), [*sets, 'run.detail="full"']), str(out), log=io.StringIO())
    return {r.name: r for r in results.read_runs(out)}


def decode_tail(run: results.RunData) -> np.ndarray:
    """Per round: latency − arrival of the last message the decode used (rank 0's own work at the end)."""
    rounds, events = run.tables["rounds"], run.tables["events"]
    used = events[events["used"] & ~events["stale"]]
    last = np.array([np.max(t) if (t := used["t_arrive"][used["round"] == r]).size else np.nan
                     for r in rounds["round"]])
    return rounds["latency"] - last


def measure(args, dim: int, raw: Path, summary: results.ResultFile, info: dict, table: Table) -> bool:
    """One d: probe, MPI job, both simulations; print a row per scheme; True if every target is met."""
    print(f"#\n# d = {dim}: load average {loadavg()}", flush=True)
    net = probe(args, dim, raw / f"network-{dim}.toml")
    print(f"# probed: {' '.join(net)}", flush=True)
    sets = [f"workload.features={dim}", f"run.rounds={args.rounds}"]
    mpi_file = raw / f"mpi-{dim}.h5"
    run_mpi(args, CONFIG, RANKS, mpi_file, sets)
    plain, probed = simulate(sets, raw / f"sim-plain-{dim}.h5"), simulate(sets + net, raw / f"sim-net-{dim}.h5")
    ok = True
    for run in results.read_runs(mpi_file):
        lat = run.tables["rounds"]["latency"]
        rel = {k: np.abs(lat - s[run.name].tables["rounds"]["latency"]) / s[run.name].tables["rounds"]["latency"]
               for k, s in (("plain", plain), ("probed", probed))}
        over = run.tables["workers"]["overrun"]
        tail = decode_tail(run)
        numbers = {"d": dim, "scheme": run.name, "rounds": int(lat.size), "mpi_median_ms": np.median(lat) * 1e3,
                   "sim_plain_median_ms": np.median(plain[run.name].tables["rounds"]["latency"]) * 1e3,
                   "sim_probed_median_ms": np.median(probed[run.name].tables["rounds"]["latency"]) * 1e3,
                   "rel_diff_plain_median": float(np.median(rel["plain"])),
                   "rel_diff_probed_median": float(np.median(rel["probed"])),
                   "overrun_share": float(np.mean(over > 0)), "overrun_median_ms": float(np.median(over) * 1e3),
                   "decode_tail_median_ms": float(np.nanmedian(tail) * 1e3), "network": " ".join(net),
                   "load_average": loadavg()}
        table.row(dim, run.name, lat.size, numbers["mpi_median_ms"], numbers["sim_plain_median_ms"],
                  numbers["sim_probed_median_ms"], 100 * numbers["rel_diff_plain_median"],
                  100 * numbers["rel_diff_probed_median"], 100 * numbers["overrun_share"],
                  numbers["overrun_median_ms"], numbers["decode_tail_median_ms"])
        ok &= numbers["rel_diff_probed_median"] <= TARGET
        store(summary, f"fidelity-{dim}-{run.name}", info, numbers)
    return ok


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", nargs="+", type=float, default=[1e6, 4e6], help="gradient lengths d")
    p.add_argument("--rounds", type=int, default=30, help="rounds per job (default: %(default)s)")
    p.add_argument("--out", default="benchmarks/results/network", help="directory of the raw and summary files")
    p.add_argument("--mpiexec", default=os.environ.get("MPIEXEC", "mpiexec"), help="MPI launcher")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per MPI job (MPIEXEC_TIMEOUT)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment of the jobs")
    args = p.parse_args(argv)
    args.only = ["network-fidelity"]
    raw = Path(args.out)
    raw.mkdir(parents=True, exist_ok=True)
    info = header(args)
    summary = results.ResultFile(str(raw / "network-fidelity.h5"))
    print("# rel_diff = |lat_mpi - lat_sim| / lat_sim per round (median); plain = default [network] (none), "
          "probed = the probe's table; overrun = worker-rounds whose real compute outlasted the modelled time; "
          "tail = latency - last used arrival (rank 0's decode)", flush=True)
    table = Table([("d", 8), ("scheme", 8), ("rounds", 6), ("mpi_ms", 8), ("plain_ms", 8), ("probed_ms", 9),
                   ("plain_%", 8), ("probed_%", 8), ("overrun_%", 9), ("overrun_ms", 10), ("tail_ms", 8)])
    ok = all([measure(args, int(d), raw, summary, info, table) for d in args.dims])
    summary.close()
    print(f"# target: median rel_diff <= {TARGET:.0%} with the probed table: {'met' if ok else 'MISSED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
