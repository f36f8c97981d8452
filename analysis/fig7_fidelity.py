"""F7 (ours): per-round latency of the MPI backend vs the simulator on the same seeds.

Runs are paired by (entry, seed, workers, rounds): an ``mpi`` run and a
``sim`` run of the same config see the same straggler realisation. Left:
scatter of per-round latencies (sim on x, MPI on y, identity line). Right:
histogram of the relative error (mpi − sim)/sim per scheme, with mean ± std
in the legend. Checks that the median |relative error| is ≤ 10 %.

    python analysis/fig7_fidelity.py results/f7-mpi.h5 results/f7-sim.h5 --out figures
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f7_fidelity"
TARGET = 0.10


def pairs(runs: Sequence[c.Run]) -> list[tuple[c.Run, c.Run]]:
    """(mpi, sim) run pairs with the same entry, seed, workers and round count."""
    def key(r: c.Run) -> tuple:
        return (r.entry, r.attrs.get("seed"), r.attrs.get("workers"), r.tables.get("rounds", np.zeros(0)).size)

    sims = {key(r): r for r in runs if r.backend == "sim" and "rounds" in r.tables}
    return [(r, sims[key(r)]) for r in runs if r.backend == "mpi" and "rounds" in r.tables and key(r) in sims]


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F7 from ``files`` into ``out_dir``; return files, key numbers and claims."""
    runs = c.load_runs(files)
    matched = pairs(runs)
    if not matched:
        have = ", ".join(sorted({f"{r.entry}/{r.backend}" for r in runs})) or "none"
        raise c.FigureDataError(f"{', '.join(files)}: F7 needs an mpi run and a sim run of the same entry, seed, "
                                f"workers and rounds (runs: {have})")
    plt = c.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.9))
    numbers: dict = {}
    everything = []
    hi = 0.0
    for i, (mpi, sim) in enumerate(matched):
        a, b = mpi.table("rounds"), sim.table("rounds")
        ok = (a["status"] == 0) & (b["status"] == 0)
        x, y = b["latency"][ok], a["latency"][ok]
        rel = (y - x) / x
        everything.append(np.abs(rel))
        hi = max(hi, float(x.max(initial=0)), float(y.max(initial=0)))
        ax1.scatter(x * 1e3, y * 1e3, s=10, alpha=0.7, color=f"C{i}", label=f"{mpi.entry} ({ok.sum()} rounds)")
        mean, std, _ = c.mean_std(rel)
        ax2.hist(rel * 100, bins=20, alpha=0.55, color=f"C{i}",
                 label=f"{mpi.entry}: {mean * 100:+.1f} ± {std * 100:.1f} %")
        numbers[f"{mpi.entry} median |rel err|"] = float(np.median(np.abs(rel))) if rel.size else np.nan
        numbers[f"{mpi.entry} mean rel err"] = mean
    ax1.plot([0, hi * 1e3], [0, hi * 1e3], color="0.4", lw=0.8, ls="--", label="mpi = sim")
    ax1.set_xlabel("simulator latency (ms)")
    ax1.set_ylabel("MPI latency (ms)")
    ax1.set_title("per-round latency, same realisation")
    ax1.legend(loc="upper left")
    ax2.axvline(0, color="0.4", lw=0.8, ls="--")
    ax2.set_xlabel("relative error (mpi − sim) / sim (%)")
    ax2.set_ylabel("rounds")
    ax2.set_title("relative error per round (legend: mean ± std)")
    ax2.legend(loc="upper right")
    m = matched[0][0].attrs.get("workers", "?")
    hosts = matched[0][0].attrs.get("hosts", "")
    hosts = ", ".join(hosts) if isinstance(hosts, list) else str(hosts)
    fig.suptitle(f"F7 · MPI backend vs simulator (m = {m} workers, mpiexec -n {int(m) + 1 if str(m).isdigit() else '?'}"
                 f"{', hosts ' + hosts if hosts else ''})", fontsize=9.5)
    fig.tight_layout()
    c.add_caption(fig, c.caption([r for p in matched for r in p], "rounds both backends decode exactly"))
    paths = c.save(fig, out_dir, STEM)
    median = float(np.median(np.concatenate(everything)))
    numbers["median |rel err| (all schemes)"] = median
    claims = [c.claim(f"median |relative error| <= {TARGET:.0%}", median, median <= TARGET)]
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
