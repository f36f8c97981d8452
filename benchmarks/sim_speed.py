"""Simulator throughput and memory: partial, m = 256, δ = 8, l = 2, run.detail = "rounds".

    python benchmarks/sim_speed.py [--rounds 2500 5000 10000] [--out benchmarks/results/sim_speed.h5]

Each size runs in a fresh subprocess (so peak RSS is its own) that simulates
and writes HDF5; the table shows wall time, rounds/s and peak memory, which
must stay flat as the number of rounds grows (rows are written in batches).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

CHILD = r"""
import io, json, resource, sys, time
from mpigc.config import load_config
from mpigc.sim.driver import simulate
rounds, out = int(sys.argv[1]), sys.argv[2]
cfg = load_config(None, ['code.scheme="partial"', "code.workers=256", "code.load=8", "code.parts=2",
                         f"run.rounds={rounds}", 'run.detail="rounds"'])
t0 = time.perf_counter()
rows = simulate(cfg, out, log=io.StringIO())
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "mean_latency_s": rows[0][2]["mean"], "exact": rows[0][2]["exact"]}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, nargs="+", default=[2500, 5000, 10000])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "sim_speed.h5"))
    args = parser.parse_args(argv)
    from mpigc import results

    print(f"# simulator speed; {datetime.now(UTC).isoformat(timespec='seconds')} on {platform.node()},"
          f" python {platform.python_version()}, numpy {np.__version__}")
    print("# partial, m = 256, delta = 8, l = 2, shifted-exponential, detail rounds, HDF5 written in batches")
    print(f"{'rounds':>8} {'wall_s':>8} {'rounds_per_s':>13} {'peak_rss_MB':>12} {'exact_%':>8}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rounds:
            proc = subprocess.run([sys.executable, "-c", CHILD, str(n), f"{tmp}/r{n}.h5"], capture_output=True,
                                  text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({"rounds": n, **r})
            print(f"{n:>8} {r['wall_s']:>8.2f} {n / r['wall_s']:>13,.0f} {r['peak_rss_mb']:>12.1f} "
                  f"{100 * r['exact']:>8.1f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results.ResultFile(args.out).new_run("sim-speed", {**results.provenance("sim"), "rows": rows}).flush()
    print(f"# wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
