"""F5 (P2): mean latency vs silent workers per round, nested gradient codes vs FRC at each fixed s.

Left: mean ± std latency over all rounds (a round that never decodes exactly
ends at the shared ``run.round_timeout`` and counts with that latency, the
convention of ``jobs/configs/f5-nested.toml``). Right: share of rounds decoded
exactly. Checks that nested is never slower on average than any fixed-s code.

    python analysis/fig5_nested.py results/f5-nested.h5 --out figures
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f5_nested"


def label(run: c.Run) -> str:
    """``nested (ladder …)`` or ``frc s = δ−1``."""
    if run.scheme == "nested":
        return f"nested (ladder {', '.join(map(str, run.key('code.ladder', [])))})"
    return f"frc s = {int(run.key('code.load')) - 1}"


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F5 from ``files`` into ``out_dir``; return files, key numbers and claims."""
    runs = c.select(c.load_runs(files), "F5 (nested and frc)", files, scheme=lambda s: s in ("nested", "frc"))
    if not any(r.scheme == "nested" for r in runs) or not any(r.scheme == "frc" for r in runs):
        raise c.FigureDataError(f"{', '.join(files)}: F5 needs both nested and frc runs")
    lat: dict = {}
    exact: dict = {}
    for run in runs:
        k = int(run.key("delays.fail_count", 0))
        rounds = run.table("rounds")
        lat.setdefault(label(run), {})[k] = c.mean_std(rounds["latency"])
        exact.setdefault(label(run), {})[k] = float(np.mean(rounds["status"] == 0)) * 100
    plt = c.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    order = sorted(lat, key=lambda n: (not n.startswith("nested"), len(n), n))
    for i, name in enumerate(order):
        ks = sorted(lat[name])
        style = dict(color="C0", marker="o", lw=2.2) if name.startswith("nested") else \
            dict(color=f"C{i + 1}", marker="s", ls="--")
        c.errorbars(ax1, [k + 0.04 * (i - 2) for k in ks], [lat[name][k] for k in ks], label=name, **style)
        ax2.plot(ks, [exact[name][k] for k in ks], label=name, **style)
    ax1.set_yscale("log")
    ax1.set_xlabel("silent workers per round (delays.fail_count)")
    ax1.set_ylabel("round latency (s, mean ± std; timeouts count)")
    ax1.set_title("mean latency")
    ax2.set_xlabel("silent workers per round (delays.fail_count)")
    ax2.set_ylabel("rounds decoded exactly (%)")
    ax2.set_title("exact decodes")
    ax2.legend(loc="lower left", bbox_to_anchor=(0.02, 0.1))
    m = runs[0].attrs.get("workers", "?")
    timeout = runs[0].key("run.round_timeout")
    fig.suptitle(f"F5 · nested gradient codes vs fixed-s FRC (m = {m}); undecodable rounds end at the "
                 f"{timeout} s timeout", fontsize=9.5)
    fig.tight_layout()
    c.add_caption(fig, c.caption(runs))
    paths = c.save(fig, out_dir, STEM)
    nested = next(n for n in order if n.startswith("nested"))
    numbers: dict = {}
    worst = np.inf
    for k in sorted(lat[nested]):
        best = min(lat[n][k][0] for n in order if n != nested and k in lat[n])
        numbers[f"fail_count={k} nested mean (s)"] = lat[nested][k][0]
        numbers[f"fail_count={k} best frc / nested"] = best / lat[nested][k][0]
        worst = min(worst, best / lat[nested][k][0])
    claims = [c.claim("nested never slower on average than the best fixed-s frc (min best-frc/nested)",
                      worst, worst >= 1 - 1e-9)]
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
