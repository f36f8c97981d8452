"""MPI runtime benchmarks of rank 0's memory, the loop's throughput and scale (run from ``mpi_runtime.py``).

- ``memory``: ``partial`` (l = 1, natural order) on 16 workers with
  d = 500 000 (4 MB per message) at load 2 and load 6, δ − 1 consecutive
  workers 10× slower, so every fast worker sends all its messages before the
  decode. Rank 0's peak resident set (``VmHWM``, polled from
  ``/proc/<pid>/status`` of the rank whose environment says rank 0) must not
  grow with the load: target load 6 within 15 % of load 2.
- ``throughput``: the anchor configuration (``anchor-crc-m8.toml``: crc,
  s = 1, 8 workers, d = 1000, 4000 samples, no injected delay) with
  ``delays.compute = "real"`` and default detail and flushing; marginal wall
  time per round = (wall of the whole ``mpiexec`` command at 700 rounds −
  at 100 rounds) / 600 (target ≤ 8 ms, half the anchor's 16 ms loop time).
- ``scale``: ``partial`` on the F7 fidelity configuration at 16, 64 and 128
  emulated workers (129 ranks on 2 cores must complete): median per-round
  ``|lat_mpi − lat_sim| / lat_sim`` (targets: 10 % at 16, 25 % beyond) and
  rank 0's CPU share (``master_cpu_s / master_wall_s``).

``--quick`` runs each at a small size, to check the script, not the targets.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from mpibench import (
    ROOT,
    Table,
    config_of,
    failed,
    job_env,
    job_library,
    loadavg,
    mpi_command,
    run_mpi,
    run_sim,
    show,
    store,
)

from mpigc import results

MEASUREMENTS = ("memory", "throughput", "scale")
TARGETS = {"memory_ratio": 1.15, "marginal_round_s": 0.008, "fidelity_small": 0.10, "fidelity_large": 0.25}
RANK_VARS = (b"PMI_RANK=0", b"OMPI_COMM_WORLD_RANK=0", b"PMIX_RANK=0")
POLL = 0.05  # s between reads of rank 0's VmHWM


def sizes(args: argparse.Namespace) -> dict:
    """Problem sizes of the three measurements: the issue's, or small ones with ``--quick``."""
    if args.quick:
        return {"memory": dict(workers=4, features=100_000, loads=(2, 4), rounds=4),
                "throughput": dict(rounds=(20, 80), repeat=1),
                "scale": dict(workers=(4, 8), rounds=6)}
    return {"memory": dict(workers=16, features=500_000, loads=(2, 6), rounds=10),
            "throughput": dict(rounds=(100, 700), repeat=2),
            "scale": dict(workers=(16, 64, 128), rounds=args.scale_rounds)}


# ----------------------------------------------------------------------------- rank 0's memory

def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def find_rank0(root: int) -> int | None:
    """The pid of the rank-0 ``mpigc`` process among ``root``'s descendants (None if not started yet)."""
    tree, todo = _children(), [root]
    while todo:
        pid = todo.pop()
        for child in tree.get(pid, []):
            todo.append(child)
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    if b"mpigc" not in f.read():
                        continue
                with open(f"/proc/{child}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if any(var in env for var in RANK_VARS):
                return child
    return None


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set of ``pid`` in MB (``VmHWM``), None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_watching_rank0(args: argparse.Namespace, cmd: list[str]) -> tuple[float, float]:
    """Run an MPI job, polling rank 0's peak RSS until it exits; return (wall s, peak MB, NaN if not found)."""
    show(cmd)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=job_env(args), stdout=out, stderr=err)
        rank0, peak = None, float("nan")
        while proc.poll() is None:
            if time.perf_counter() - start > args.timeout + 30:
                proc.kill()
                raise SystemExit(f"mpi_runtime: timed out: {' '.join(cmd)}")
            rank0 = rank0 or find_rank0(proc.pid)
            if rank0 is not None:
                now = vm_hwm_mb(rank0)
                if now is not None:
                    peak = now if np.isnan(peak) else max(peak, now)
            time.sleep(POLL)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            out.seek(0)
            err.seek(0)
            raise failed(out.read().decode(errors="replace"), err.read().decode(errors="replace"), proc.returncode,
                         cmd)
    return wall, peak


def memory(args, raw: Path, summary: results.ResultFile, info: dict) -> bool:
    """Rank 0's peak RSS at load 2 and load 6 with every fast worker sending everything before the decode."""
    size = sizes(args)["memory"]
    m, features = size["workers"], size["features"]
    print(f"#\n# load average: {loadavg()}", flush=True)
    print(f"# memory: partial (l = 1, natural order), {m} workers, d = {features}, load - 1 consecutive workers "
          f"10x slower; rank 0's VmHWM polled every {POLL * 1e3:.0f} ms", flush=True)
    table = Table([("load", 4), ("rounds", 6), ("exact_%", 7), ("messages_per_round", 18), ("rank0_peak_rss_mb", 17),
                   ("job_wall_s", 10)])
    peaks = {}
    library = "unknown"
    for load in size["loads"]:
        out = raw / f"memory-load{load}.h5"
        out.unlink(missing_ok=True)
        sets = ['code.scheme="partial"', f"code.workers={m}", f"code.load={load}", "code.parts=1",
                'code.ordering="natural"', f"workload.features={features}", f"workload.samples={2 * m}",
                'delays.model="constant"', f"delays.slow={list(range(load - 1))}", "delays.factor=10",
                "delays.chunk_time=0.05", f"run.rounds={size['rounds']}", "run.round_timeout=10.0"]
        wall, peak = run_watching_rank0(args, mpi_command(args, None, m + 1, out, sets))
        run = results.read_runs(out)[0]
        library = job_library(run)
        rounds, events = run.tables["rounds"], run.tables["events"]
        fresh = events[~events["stale"]]
        table.row(load, rounds.size, float(np.mean(rounds["status"] == 0)) * 100,
                  float(fresh.size / max(rounds.size, 1)), peak, wall)
        peaks[load] = peak
        store(summary, f"memory-load{load}", info,
              {"measurement": "memory", "workers": m, "features": features, "load": load, "overrides": sets,
               "rounds": int(rounds.size), "messages_per_round": float(fresh.size / max(rounds.size, 1)),
               "rank0_peak_rss_mb": peak, "job_wall_s": wall, "job_mpi_library": library, "raw": str(out),
               "target_ratio": TARGETS["memory_ratio"]})
    low, high = (peaks[x] for x in size["loads"])
    ratio = high / low
    ok = bool(ratio <= TARGETS["memory_ratio"])
    print(f"# job MPI library: {library}", flush=True)
    print(f"# peak RSS at load {size['loads'][1]} / load {size['loads'][0]} = {ratio:.3f}; target <= "
          f"{TARGETS['memory_ratio']:.2f}: {'met' if ok else 'MISSED'}", flush=True)
    return ok


# ----------------------------------------------------------------------------- throughput

def throughput(args, raw: Path, summary: results.ResultFile, info: dict) -> bool:
    """Marginal wall time per round of the anchor configuration with real compute."""
    size = sizes(args)["throughput"]
    few, many = size["rounds"]
    config = "anchor-crc-m8.toml"
    print(f"#\n# load average: {loadavg()}", flush=True)
    print(f"# throughput: config {config} with delays.compute=\"real\", default detail and flushing; "
          f"marginal = (wall at {many} rounds - wall at {few} rounds) / {many - few}; best of {size['repeat']}",
          flush=True)
    walls = {}
    for rounds in (few, many):
        out = raw / f"throughput-{rounds}.h5"
        sets = ['delays.compute="real"', f"run.rounds={rounds}"]
        walls[rounds] = min(run_mpi(args, config, 9, out, sets, quiet=rep > 0) for rep in range(size["repeat"]))
    run = results.read_runs(raw / f"throughput-{many}.h5")[0]
    lat = run.tables["rounds"]["latency"]
    loop = float(run.attrs.get("master_wall_s", np.nan)) / lat.size
    marginal = (walls[many] - walls[few]) / (many - few)
    table = Table([("rounds", 6), ("job_wall_s", 10), ("latency_median_ms", 17), ("loop_per_round_ms", 17),
                   ("marginal_per_round_ms", 21)])
    table.row(few, walls[few], "", "", "")
    table.row(many, walls[many], float(np.median(lat)) * 1e3, loop * 1e3, marginal * 1e3)
    ok = bool(marginal <= TARGETS["marginal_round_s"])
    store(summary, "throughput-anchor", info,
          {"measurement": "throughput", "config": config, "rounds": [few, many],
           "job_wall_s": [walls[few], walls[many]],
           "marginal_round_s": marginal, "latency_median_s": float(np.median(lat)), "loop_per_round_s": loop,
           "job_mpi_library": job_library(run), "target_marginal_round_s": TARGETS["marginal_round_s"]})
    print(f"# job MPI library: {job_library(run)}", flush=True)
    print(f"# target: marginal <= {TARGETS['marginal_round_s'] * 1e3:.0f} ms per round: {'met' if ok else 'MISSED'}",
          flush=True)
    return ok


# ----------------------------------------------------------------------------- scale

def scale(args, raw: Path, summary: results.ResultFile, info: dict) -> bool:
    """Fidelity to the simulator and rank 0's CPU share at 16, 64 and 128 emulated workers."""
    size = sizes(args)["scale"]
    config = "f7-fidelity.toml"
    print(f"#\n# load average: {loadavg()}", flush=True)
    print(f"# scale: partial on {config} (100 samples per chunk), {size['rounds']} rounds; rel_diff = "
          "|lat_mpi - lat_sim| / lat_sim per round; cpu_share = master_cpu_s / master_wall_s", flush=True)
    table = Table([("workers", 7), ("rounds", 6), ("mpi_median_ms", 13), ("sim_median_ms", 13),
                   ("rel_diff_median_%", 17), ("rel_diff_p95_%", 14), ("cpu_share_%", 11), ("job_wall_s", 10),
                   ("status", 6)])
    ok, library = True, "unknown"
    smallest = min(size["workers"])
    for m in size["workers"]:
        sets = ['code.scheme="partial"', f"code.workers={m}", f"workload.samples={100 * m}",
                f"run.rounds={size['rounds']}"]
        mpi_file, sim_file = raw / f"scale-m{m}-mpi.h5", raw / f"scale-m{m}-sim.h5"
        wall = run_mpi(args, config, m + 1, mpi_file, sets)
        run_sim(args, config, sim_file, sets)
        run, sim = results.read_runs(mpi_file)[0], results.read_runs(sim_file)[0]
        library = job_library(run)
        a, b = run.tables["rounds"], sim.tables["rounds"]
        complete = a.size == config_of(run)["run"]["rounds"] and np.array_equal(a["round"], b["round"])
        rel = np.abs(a["latency"] - b["latency"]) / b["latency"] if complete else np.array([np.nan])
        share = float(run.attrs.get("master_cpu_s", np.nan)) / float(run.attrs.get("master_wall_s", np.nan))
        target = TARGETS["fidelity_small"] if m == smallest else TARGETS["fidelity_large"]
        met = bool(complete and np.median(rel) <= target)
        ok &= met
        table.row(m, a.size, float(np.median(a["latency"])) * 1e3, float(np.median(b["latency"])) * 1e3,
                  float(np.median(rel)) * 100, float(np.percentile(rel, 95)) * 100, share * 100, wall,
                  "ok" if met else "MISSED")
        store(summary, f"scale-m{m}", info,
              {"measurement": "scale", "config": config, "workers": m, "world_size": m + 1, "overrides": sets,
               "rounds": int(a.size), "completed": bool(complete), "rel_diff_median": float(np.median(rel)),
               "rel_diff_p95": float(np.percentile(rel, 95)), "cpu_share": share, "job_wall_s": wall,
               "job_mpi_library": library, "target_rel_diff_median": target, "raw_mpi": str(mpi_file),
               "raw_sim": str(sim_file)})
    print(f"# job MPI library: {library}", flush=True)
    print(f"# targets: median rel_diff <= {TARGETS['fidelity_small']:.0%} at {smallest} workers, <= "
          f"{TARGETS['fidelity_large']:.0%} beyond; every run complete: {'met' if ok else 'MISSED'}", flush=True)
    return ok
