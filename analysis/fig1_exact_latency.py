"""F1 (P1 Fig. 3(b)): exact-recovery completion time vs l, partial vs its ablation, crc and poly.

One panel per assignment (cyclic, graph:circulant, graph:random-regular). A
point is the mean ± std over the rounds in which every scheme run on that
realisation (same file, assignment and l) decoded exactly. Checks P1's claim
at the canonical point (cyclic, l = 1): partial ≥ 1.7× faster than its ablation.

    python analysis/fig1_exact_latency.py results/f1-exact.h5 --out figures
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f1_exact_latency"
ROLES = ("partial", "ablation", "crc", "poly")
MARKERS = {"partial": "o", "ablation": "s", "crc": "^", "poly": "D"}
OFFSET = {"partial": -0.06, "ablation": -0.02, "crc": 0.02, "poly": 0.06}   # keep coinciding points apart
TARGET = 1.7


def collect(files: Sequence[str]) -> dict[str, dict[str, dict[int, tuple[float, float, int]]]]:
    """assignment → role → l → (mean, std, rounds) of exact completion time (s)."""
    runs = c.select(c.load_runs(files), "F1 (exact decoding)", files,
                    code__decode=lambda d: d in (None, "exact"), scheme=lambda s: s in ("partial", "crc", "poly"))
    out: dict = {}
    for (_, assignment, parts, _), group in c.group_by(runs, "file", "code.assignment", "code.parts", "seed").items():
        mask = c.common_exact(group)
        for run in group:
            lat = run.table("rounds")["latency"][: mask.size][mask]
            out.setdefault(assignment, {}).setdefault(c.role(run), {})[int(parts)] = c.mean_std(lat)
    return out


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F1 from ``files`` into ``out_dir``; return files, key numbers and claims."""
    data = collect(files)
    cyc = data.get("cyclic", {})
    if 1 not in cyc.get("partial", {}) or 1 not in cyc.get("ablation", {}):
        raise c.FigureDataError(f"{', '.join(files)}: F1 needs partial and its ablation (use_partial = false) "
                                "on the cyclic assignment at l = 1 (the canonical point)")
    plt = c.pyplot()
    panels = [a for a in c.ASSIGNMENTS if a in data] + [a for a in data if a not in c.ASSIGNMENTS]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.3), sharey=True, squeeze=False)
    for ax, assignment in zip(axes[0], panels):
        for r in ROLES:
            series = data[assignment].get(r)
            if not series:
                continue
            ls = sorted(series)
            c.errorbars(ax, [l + OFFSET[r] for l in ls], [series[l] for l in ls], marker=MARKERS[r], color=c.COLORS[r],
                        label={"ablation": "ablation (use_partial = false)", "crc": "crc (l = 1)"}.get(r, r),
                        linestyle="none" if len(ls) == 1 else "-")
        ax.set_title(c.ASSIGNMENT_LABEL.get(assignment, assignment))
        ax.set_xlabel("l (parts of the gradient)")
        ax.set_xticks(sorted({l for s in data[assignment].values() for l in s}))
        ax.legend(loc="upper left")
    axes[0][0].set_ylabel("exact completion time (s, mean ± std)")
    fig.suptitle("F1 · exact gradient recovery: partial stragglers vs the original class (m = N = 20, δ = 4)",
                 fontsize=9.5)
    runs = c.load_runs(files)
    c.add_caption(fig, c.caption(runs, "means over rounds where every scheme of a point decodes exactly"))
    paths = c.save(fig, out_dir, STEM)
    p, a = cyc["partial"][1][0], cyc["ablation"][1][0]
    numbers = {"cyclic l=1 partial mean (s)": p, "cyclic l=1 ablation mean (s)": a,
               "cyclic l=1 ablation / partial": a / p, "cyclic l=1 rounds compared": cyc["partial"][1][2]}
    if 1 in cyc.get("crc", {}):
        numbers["cyclic l=1 crc mean (s)"] = cyc["crc"][1][0]
        numbers["cyclic l=1 crc / partial"] = cyc["crc"][1][0] / p
    for assignment in panels:
        d = data[assignment]
        for l in sorted(d.get("partial", {})):
            if l in d.get("ablation", {}):
                numbers[f"{assignment} l={l} ablation / partial"] = d["ablation"][l][0] / d["partial"][l][0]
    claims = [c.claim(f"partial >= {TARGET}x faster than its ablation (cyclic, l = 1)", a / p, a / p >= TARGET)]
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
