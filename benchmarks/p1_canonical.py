"""P1's canonical point in the simulator: exact latency ratios and approximate-decoding error.

    python benchmarks/p1_canonical.py [--out benchmarks/results/p1_canonical.h5]

Runs ``jobs/configs/p1-canonical.toml`` (partial, its ablation, crc) and
``p1-canonical-approx.toml`` (partial vs crc at T = 4·chunk_time) on one
realisation, prints the comparison and stores every run plus the summary.
Latency means are over the rounds that all three schemes decode exactly.
"""
from __future__ import annotations

import argparse
import io
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mpigc import results
from mpigc.config import load_config
from mpigc.sim.driver import simulate

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "jobs" / "configs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(HERE / "results" / "p1_canonical.h5"), help="HDF5 output (%(default)s)")
    parser.add_argument("--rounds", type=int, default=None, help="override run.rounds (default: the configs' 2000)")
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    extra = [f"run.rounds={args.rounds}"] if args.rounds else []
    print(f"# P1 canonical point, simulator; {datetime.now(UTC).isoformat(timespec='seconds')}"
          f" on {platform.node()}, python {platform.python_version()}, numpy {np.__version__}")
    exact_cfg = load_config(str(CONFIGS / "p1-canonical.toml"), extra)
    approx_cfg = load_config(str(CONFIGS / "p1-canonical-approx.toml"), extra)
    print(f"# m = {exact_cfg.codes[0].workers}, load 4, l = 1, cyclic, optimal order, {exact_cfg.run.rounds} rounds,"
          " chunk_time * Exp(1) per chunk + 5 % silent workers, seed", exact_cfg.run.seed)
    exact_names = [name for name, _, _ in simulate(exact_cfg, args.out, log=io.StringIO())]
    approx_names = [name for name, _, _ in simulate(approx_cfg, args.out, log=io.StringIO())]
    runs = {r.name: r for r in results.read_runs(args.out, exact_names + approx_names)}
    exact = {runs[n].attrs["entry"]: runs[n].tables["rounds"] for n in exact_names}
    approx = {runs[n].attrs["entry"]: runs[n].tables["rounds"] for n in approx_names}
    common = np.logical_and.reduce([t["status"] == 0 for t in exact.values()])
    mean = {k: float(t["latency"][common].mean()) for k, t in exact.items()}
    err = {k: float(t["coef_error"].mean()) for k, t in approx.items()}
    print(f"\n{'scheme':<10} {'mean_latency_s':>15} {'ratio_to_partial':>17}"
          f"   (exact; {common.sum()} rounds all decode)")
    for k, v in mean.items():
        print(f"{k:<10} {v:>15.4f} {v / mean['partial']:>17.2f}")
    print(f"\n{'scheme':<10} {'mean_coef_error':>16} {'exact_%':>8} {'ratio_to_partial':>17}"
          "   (approx, T = 4 chunk_time)")
    for k, v in err.items():
        share = 100 * float(np.mean(approx[k]["status"] == 0))
        print(f"{k:<10} {v:>16.3e} {share:>8.1f} {v / err['partial']:>17.1f}")
    summary = {"speedup_vs_ablation": mean["ablation"] / mean["partial"],
               "speedup_vs_crc": mean["crc"] / mean["partial"],
               "error_ratio_crc_vs_partial": err["crc"] / err["partial"], "rounds_all_exact": int(common.sum())}
    writer = results.ResultFile(args.out).new_run("p1-canonical-summary", {**results.provenance("sim"), **summary,
                                                  "mean_latency_s": mean, "mean_coef_error": err})
    writer.flush()
    print(f"\n# partial is {summary['speedup_vs_ablation']:.2f}x faster than its ablation (target >= 1.7) and "
          f"{summary['speedup_vs_crc']:.2f}x faster than crc (target >= 2.5);\n# its mean coef_error is "
          f"{summary['error_ratio_crc_vs_partial']:.0f}x below crc's (target >= 100). Wrote {args.out}")
    ok = (summary["speedup_vs_ablation"] >= 1.7 and summary["speedup_vs_crc"] >= 2.5
          and summary["error_ratio_crc_vs_partial"] >= 100)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
