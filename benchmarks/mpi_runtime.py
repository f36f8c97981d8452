"""Benchmarks of the MPI runtime: fidelity, master overhead, anchor, rank 0's memory, throughput, scale.

Launches ``mpiexec -n M+1 python -m mpigc run CONFIG`` (and ``python -m mpigc
simulate CONFIG``) as subprocesses on the configs under ``jobs/configs/``,
reads their HDF5 files with ``mpigc.results`` and prints one table per
measurement:

- ``fidelity`` (F7, ``f7-fidelity.toml``): 16 workers emulating
  shifted-exponential chunk times; per-round relative difference
  ``|lat_mpi - lat_sim| / lat_sim`` of ``partial``, ``crc`` and ``uncoded`` on
  the same realisation (target: median <= 10 %), and the workers' compute
  overruns (real compute longer than the modelled chunk time).
- ``overhead`` (``overhead-partial-m32.toml``): ``partial`` on 32 workers with
  d = 270 000; decode critical path = latency - last used arrival (target:
  median <= 5 ms) and rank 0's CPU time over wall time (target < 25 % of a
  core); then 64 workers for a few rounds, which must complete.
- ``anchor`` (``anchor-crc-m8.toml``): ``crc`` on 8 workers, no injected
  delay, least squares 4000 x 1000: median round latency against the 16 ms
  per iteration of ZeeChono/gradient_coding_mds on this machine (target:
  <= 8 ms).
- ``memory``, ``throughput``, ``scale``: see ``mpi_scale.py`` (rank 0's peak
  RSS at load 2 and 6; marginal wall time per round of the anchor with real
  compute; fidelity and rank 0's CPU share at 16, 64 and 128 workers).

The MPI library of every job is read back from its result file and printed
(``--mpiexec``/``--env`` may run the jobs under another MPI than this
Python's mpi4py). ``--quick`` runs every measurement small, to check the
script rather than the targets. Every run's raw result file is kept under ``--raw`` (default: ``<out>-raw/``)
and the summary numbers are stored as run attributes in ``--out``.

Usage::

    python benchmarks/mpi_runtime.py [--only fidelity|overhead|anchor|memory|throughput|scale ...]
           [--quick] [--out FILE.h5] [--mpiexec "mpiexec --oversubscribe"] [--env KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import mpi_scale
import numpy as np
from mpibench import (
    ROOT,
    Table,
    config_of,
    header,
    job_library,
    loadavg,
    mpi_command,
    pct,
    run_mpi,
    run_sim,
    show,
    store,
)

from mpigc import results

MEASUREMENTS = ("fidelity", "overhead", "anchor", *mpi_scale.MEASUREMENTS)
ANCHOR_REFERENCE_S = 0.016  # ZeeChono/gradient_coding_mds, same work, this machine
TARGETS = {"fidelity_median": 0.10, "crit_median": 0.005, "cpu_share": 0.25, "anchor_median": 0.008}


# ----------------------------------------------------------------------------- analysis

def critical_path(run: results.RunData) -> np.ndarray:
    """Per round: latency - latest arrival among that round's used, non-stale messages (s)."""
    rounds, events = run.tables["rounds"], run.tables["events"]
    used = events[events["used"] & ~events["stale"]]
    last = {}
    for rnd, t in zip(used["round"], used["t_arrive"]):
        last[int(rnd)] = max(last.get(int(rnd), -np.inf), float(t))
    return np.array([lat - last.get(int(rnd), np.nan) for rnd, lat in zip(rounds["round"], rounds["latency"])])


def overruns(run: results.RunData) -> tuple[float, float]:
    """Share of worker-rounds whose real compute overran the modelled time, and the largest overrun (s)."""
    workers = run.tables.get("workers")
    if workers is None or workers.size == 0:
        return float("nan"), float("nan")
    over = workers["overrun"]
    return float(np.mean(over > 0)), float(over.max())


# ----------------------------------------------------------------------------- measurements

def fidelity(args, raw: Path, summary: results.ResultFile, info: dict) -> bool:
    """F7: per-round latency of the MPI runtime against the simulator on one realisation."""
    config = "f7-fidelity.toml"
    mpi_file, sim_file = raw / "f7-mpi.h5", raw / "f7-sim.h5"
    sets = [f"run.rounds={args.fidelity_rounds}"] if args.fidelity_rounds else []
    print(f"#\n# load average: {loadavg()}", flush=True)
    print(f"# fidelity (F7): config {config}, world size 17 (16 workers), simulator on the same seed", flush=True)
    wall = run_mpi(args, config, 17, mpi_file, sets)
    run_sim(args, config, sim_file, sets)
    print(f"# mpi job wall time {wall:.1f} s; rel_diff = |lat_mpi - lat_sim| / lat_sim per round; "
          "overrun = worker-rounds whose real compute outlasted the modelled chunk time", flush=True)
    sims = {r.name: r for r in results.read_runs(sim_file)}
    table = Table([("scheme", 8), ("rounds", 6), ("mpi_median_ms", 13), ("sim_median_ms", 13),
                   ("rel_diff_median_%", 17), ("rel_diff_p95_%", 14), ("overrun_share_%", 15),
                   ("overrun_max_ms", 14)])
    ok = True
    for run in results.read_runs(mpi_file):
        sim = sims[run.name]
        lat_mpi = run.tables["rounds"]["latency"]
        lat_sim = sim.tables["rounds"]["latency"]
        if not np.array_equal(run.tables["rounds"]["round"], sim.tables["rounds"]["round"]):
            raise SystemExit(f"mpi_runtime: rounds of {run.name} differ between backends")
        rel = np.abs(lat_mpi - lat_sim) / lat_sim
        share, worst = overruns(run)
        table.row(run.name, len(rel), np.median(lat_mpi) * 1e3, np.median(lat_sim) * 1e3,
                  np.median(rel) * 100, np.percentile(rel, 95) * 100, share * 100, worst * 1e3)
        ok &= bool(np.median(rel) <= TARGETS["fidelity_median"])
        store(summary, f"fidelity-{run.name}", info,
              {"measurement": "fidelity", "config": config, "world_size": 17, "scheme": run.attrs.get("scheme"),
               "rounds": len(rel), "mpi_latency_median_s": float(np.median(lat_mpi)),
               "sim_latency_median_s": float(np.median(lat_sim)), "rel_diff_median": float(np.median(rel)),
               "rel_diff_p95": float(np.percentile(rel, 95)), "rel_diff_mean": float(np.mean(rel)),
               "overrun_share": share, "overrun_max_s": worst, "raw_mpi": str(mpi_file), "raw_sim": str(sim_file),
               "target_rel_diff_median": TARGETS["fidelity_median"], "job_mpi_library": job_library(run)})
    print(f"# job MPI library: {job_library(run)}", flush=True)
    print(f"# target: median rel_diff <= {TARGETS['fidelity_median']:.0%}: {'met' if ok else 'MISSED'}", flush=True)
    return ok


def overhead(args, raw: Path, summary: results.ResultFile, info: dict) -> bool:
    """Decode critical path and rank 0's CPU share on 32 workers (d = 270 000); 64 workers must complete."""
    config = "overhead-partial-m32.toml"
    print(f"#\n# load average: {loadavg()}", flush=True)
    print(f"# overhead: config {config}, world sizes 33 and 65; crit = latency - last used arrival; "
          "cpu_share = rank 0 process CPU time / wall time over the round loop (HDF5 writes included)", flush=True)
    jobs = [(32, [f"run.rounds={args.overhead_rounds}"] if args.overhead_rounds else []),
            (64, ["code.workers=64", f"run.rounds={args.big_rounds}", "workload.samples=128"])]
    for workers, extra in jobs:
        show(mpi_command(args, config, workers + 1, raw / f"overhead-m{workers}.h5", extra))
    table = Table([("workers", 7), ("rounds", 6), ("features", 8), ("latency_median_ms", 17), ("crit_median_ms", 14),
                   ("crit_p95_ms", 11), ("master_cpu_s", 12), ("master_wall_s", 13), ("master_cpu_per_round_ms", 23),
                   ("cpu_share_%", 11),
                   ("job_wall_s", 10), ("status", 6)])
    ok = True
    for workers, extra in jobs:
        out = raw / f"overhead-m{workers}.h5"
        wall = run_mpi(args, config, workers + 1, out, extra, quiet=True)
        run = results.read_runs(out)[0]
        rounds = run.tables["rounds"]
        crit = critical_path(run)
        cpu, mwall = float(run.attrs.get("master_cpu_s", np.nan)), float(run.attrs.get("master_wall_s", np.nan))
        share = cpu / mwall
        complete = rounds.size == config_of(run)["run"]["rounds"] and bool(np.all(rounds["status"] == 0))
        status = "ok" if complete else "FAIL"
        table.row(workers, rounds.size, _features(run), float(np.median(rounds["latency"])) * 1e3,
                  pct(crit, 50) * 1e3, pct(crit, 95) * 1e3, cpu, mwall, cpu / max(rounds.size, 1) * 1e3, share * 100,
                  wall,
                  status)
        if workers == 32:
            ok &= pct(crit, 50) <= TARGETS["crit_median"] and share < TARGETS["cpu_share"]
        ok &= complete
        store(summary, f"overhead-m{workers}", info,
              {"measurement": "overhead", "config": config, "world_size": workers + 1, "workers": workers,
               "overrides": extra, "rounds": int(rounds.size), "latency_median_s": float(np.median(rounds["latency"])),
               "crit_median_s": pct(crit, 50), "crit_p95_s": pct(crit, 95), "master_cpu_s": cpu,
               "master_wall_s": mwall, "cpu_share": share, "job_wall_s": wall, "completed": complete,
               "raw": str(out), "target_crit_median_s": TARGETS["crit_median"],
               "target_cpu_share": TARGETS["cpu_share"], "job_mpi_library": job_library(run)})
    print(f"# job MPI library: {job_library(run)}", flush=True)
    print(f"# targets (32 workers): crit median <= {TARGETS['crit_median'] * 1e3:.0f} ms, cpu_share < "
          f"{TARGETS['cpu_share']:.0%}; 64 workers complete: {'met' if ok else 'MISSED'}", flush=True)
    return ok


def _features(run: results.RunData) -> int:
    """workload.features of a run."""
    return int(config_of(run)["workload"]["features"])


def anchor(args, raw: Path, summary: results.ResultFile, info: dict) -> bool:
    """Median round latency of crc (8 workers, 4000 x 1000 least squares) against 16 ms/iteration."""
    config = "anchor-crc-m8.toml"
    out = raw / "anchor.h5"
    print(f"#\n# load average: {loadavg()}", flush=True)
    print(f"# anchor: config {config}, world size 9; reference: ZeeChono/gradient_coding_mds, "
          f"{ANCHOR_REFERENCE_S * 1e3:.0f} ms/iteration for the same work on this machine", flush=True)
    wall = run_mpi(args, config, 9, out, ["run.rounds=20"] if args.quick else [])
    run = results.read_runs(out)[0]
    lat = run.tables["rounds"]["latency"]
    loop = float(run.attrs.get("master_wall_s", np.nan)) / lat.size
    crit = critical_path(run)
    busy = run.tables["workers"]["busy"]
    table = Table([("scheme", 6), ("workers", 7), ("rounds", 6), ("median_ms", 9), ("mean_ms", 7), ("p95_ms", 6),
                   ("loop_per_round_ms", 17), ("worker_busy_median_ms", 21), ("crit_median_ms", 14),
                   ("reference_ms", 12), ("speedup", 7)])
    median = float(np.median(lat))
    table.row(run.attrs.get("scheme"), int(run.attrs.get("workers")), lat.size, median * 1e3,
              float(np.mean(lat)) * 1e3, float(np.percentile(lat, 95)) * 1e3, loop * 1e3, float(np.median(busy)) * 1e3,
              pct(crit, 50) * 1e3, ANCHOR_REFERENCE_S * 1e3, ANCHOR_REFERENCE_S / median)
    ok = median <= TARGETS["anchor_median"]
    store(summary, "anchor-crc-m8", info,
          {"measurement": "anchor", "config": config, "world_size": 9, "rounds": int(lat.size),
           "latency_median_s": median, "latency_mean_s": float(np.mean(lat)),
           "latency_p95_s": float(np.percentile(lat, 95)), "crit_median_s": pct(crit, 50),
           "reference_s": ANCHOR_REFERENCE_S, "reference": "ZeeChono/gradient_coding_mds",
           "speedup": ANCHOR_REFERENCE_S / median, "job_wall_s": wall, "raw": str(out), "loop_per_round_s": loop,
           "target_latency_median_s": TARGETS["anchor_median"], "job_mpi_library": job_library(run)})
    print(f"# job MPI library: {job_library(run)}", flush=True)
    print(f"# target: median <= {TARGETS['anchor_median'] * 1e3:.0f} ms: {'met' if ok else 'MISSED'}; "
          f"mpi job wall time {wall:.1f} s", flush=True)
    return ok


# ----------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", choices=MEASUREMENTS,
                   help="run only this measurement (repeatable; default: all)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mpi_runtime.h5"),
                   help="summary HDF5 file; runs are added if it exists (default: %(default)s)")
    p.add_argument("--raw", default=None, help="directory of the raw result files (default: <out>-raw/)")
    p.add_argument("--mpiexec", default=None,
                   help='launcher, e.g. "mpiexec --oversubscribe" or "srun --mpi=pmix" (default: the mpiexec '
                        "next to this Python, else on PATH)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment of the MPI jobs, e.g. MPIR_CVAR_CH4_CMA_ENABLE=1 (repeatable)")
    p.add_argument("--timeout", type=float, default=300.0, help="MPIEXEC_TIMEOUT of each job in s (default 300)")
    p.add_argument("--fidelity-rounds", type=int, default=None, help="override run.rounds of the fidelity config")
    p.add_argument("--overhead-rounds", type=int, default=None, help="override run.rounds of the 32-worker run")
    p.add_argument("--big-rounds", type=int, default=5, help="rounds of the 64-worker run (default 5)")
    p.add_argument("--scale-rounds", type=int, default=30, help="rounds of each scale run (default 30)")
    p.add_argument("--quick", action="store_true", help="every measurement at a small size (checks the script)")
    args = p.parse_args(argv)
    if args.quick:
        args.fidelity_rounds = args.fidelity_rounds or 5
        args.overhead_rounds = args.overhead_rounds or 3
        args.big_rounds = 1
    args.only = args.only or list(MEASUREMENTS)
    if args.mpiexec is None:
        local = Path(sys.executable).parent / "mpiexec"
        args.mpiexec = str(local) if local.exists() else (shutil.which("mpiexec") or "mpiexec")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the selected measurements; exit 0 if every target is met, 3 if one is missed."""
    args = parse_args(argv)
    out = Path(args.out)
    raw = Path(args.raw) if args.raw else out.with_name(out.stem + "-raw")
    raw.mkdir(parents=True, exist_ok=True)
    info = header(args)
    summary = results.ResultFile(out)
    start = time.perf_counter()
    verdicts = {}
    for name, fn in (("fidelity", fidelity), ("overhead", overhead), ("anchor", anchor), ("memory", mpi_scale.memory),
                     ("throughput", mpi_scale.throughput), ("scale", mpi_scale.scale)):
        if name in args.only:
            verdicts[name] = fn(args, raw, summary, info)
    print(f"#\n# total wall time {time.perf_counter() - start:.0f} s; summary in {out}; raw runs in {raw}/")
    print("# targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in verdicts.items()), flush=True)
    return 0 if all(verdicts.values()) else 3


if __name__ == "__main__":
    sys.exit(main())
