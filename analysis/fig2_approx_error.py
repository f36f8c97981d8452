"""F2 (P1 Fig. 3(a)): mean coef_error vs deadline T, partial vs least-squares decoding of crc / poly.

One panel per l (1, 2, 3). A point is the mean ± std of ``coef_error`` over all
rounds of a run (log axis; exact decodes have error 0 and are drawn at a
visible floor). Checks P1's claim at the canonical point (l = 1,
T = 4·chunk_time): partial's mean error ≥ 100× below crc's.

    python analysis/fig2_approx_error.py results/f2-approx.h5 --out figures
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f2_approx_error"
FLOOR = 1e-8
TARGET = 100.0
MARKERS = {"partial": "o", "crc": "^", "poly": "D"}


def collect(files: Sequence[str]) -> tuple[dict, list]:
    """l → role → {T/chunk_time: (mean, std, rounds)} of coef_error; and the runs used."""
    runs = c.select(c.load_runs(files), "F2 (approximate decoding, code.decode = \"approx\")", files,
                    code__decode="approx", scheme=lambda s: s in MARKERS)
    out: dict = {}
    for run in runs:
        unit = float(run.key("delays.chunk_time", 1.0))
        deadline = run.key("code.deadline")
        if deadline is None:
            raise c.FigureDataError(f"{run.file}: run {run.name!r} has no code.deadline in its config")
        err = run.table("rounds")["coef_error"]
        out.setdefault(int(run.key("code.parts", 1)), {}).setdefault(c.role(run), {})[float(deadline) / unit] = \
            c.mean_std(err)
    return out, runs


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F2 from ``files`` into ``out_dir``; return files, key numbers and claims."""
    data, runs = collect(files)
    l1 = data.get(1, {})
    if 4.0 not in l1.get("partial", {}) or 4.0 not in l1.get("crc", {}):
        raise c.FigureDataError(f"{', '.join(files)}: F2 needs partial and crc at l = 1, T = 4·chunk_time "
                                "(the canonical point)")
    plt = c.pyplot()
    ls = sorted(data)
    fig, axes = plt.subplots(1, len(ls), figsize=(3.6 * len(ls), 3.3), sharey=True, squeeze=False)
    for ax, l in zip(axes[0], ls):
        for r, series in data[l].items():
            ts = sorted(series)
            label = {"partial": "partial (coverage LS)", "crc": "crc (LS of finished workers)",
                     "poly": "poly (LS of finished workers)"}[r]
            c.errorbars(ax, ts, [series[t] for t in ts], log=True, floor=FLOOR, marker=MARKERS[r],
                        color=c.COLORS[r], label=label)
        ax.set_yscale("log")
        ax.axhline(FLOOR, color="0.5", lw=0.8, ls=":", label=f"floor {FLOOR:g} (error 0: exact)")
        ax.set_title(f"l = {l}")
        ax.set_xlabel("deadline T (units of chunk_time)")
        ax.legend(loc="lower left")
    axes[0][0].set_ylabel("coef_error ‖Φ−E‖²/‖E‖² (mean ± std)")
    fig.suptitle("F2 · approximate recovery at a deadline (cyclic, m = N = 20, δ = 4, optimal ordering)",
                 fontsize=9.5)
    c.add_caption(fig, c.caption(runs, "mean over all rounds, zeros drawn at the floor"))
    paths = c.save(fig, out_dir, STEM)
    p, q = l1["partial"][4.0][0], l1["crc"][4.0][0]
    ratio = q / p if p > 0 else np.inf
    numbers = {"l=1 T=4 partial coef_error": p, "l=1 T=4 crc coef_error": q, "l=1 T=4 crc / partial": ratio}
    for l in ls[1:]:
        d = data[l]
        for t in sorted(set(d.get("partial", {})) & set(d.get("poly", {}))):
            if t in (4.0, 8.0):
                pp, pq = d["partial"][t][0], d["poly"][t][0]
                numbers[f"l={l} T={t:g} poly / partial"] = pq / pp if pp > 0 else np.inf
    claims = [c.claim(f"partial's coef_error >= {TARGET:g}x below crc's (l = 1, T = 4 chunk_time)", ratio,
                      ratio >= TARGET)]
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
