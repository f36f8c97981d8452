"""F3 (P1 appendix): optimal vs random chunk ordering on G1 = graph:circulant, G2 = graph:random-regular.

Top row: exact completion time of ``partial`` vs l (mean ± std over rounds
both orderings decode exactly, same realisation). Bottom row: mean
coef_error vs deadline T (log axis, zeros at a floor) for each l. Right:
Qmax of both orderings vs l, computed from each run's stored config with
``mpigc.codes`` (``make_scheme(...).plan`` and ``ordering.qmax``). Checks that
optimal is faster than random at every l < δ (and ties at l = δ).

    python analysis/fig3_ordering.py results/f3-ordering.h5 --out figures
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f3_ordering"
FLOOR = 1e-8
ORDERINGS = ("optimal", "random")
STYLE = {"optimal": dict(marker="o", ls="-"), "random": dict(marker="s", ls="--")}


def qmax_of(run: c.Run) -> int:
    """Qmax of a run's assignment and ordering, rebuilt from its stored config."""
    from mpigc.codes import make_scheme
    from mpigc.codes.ordering import qmax
    from mpigc.config import CodeConfig

    names = ("scheme", "workers", "chunks", "load", "parts", "assignment", "ordering")
    fields = {k: run.key(f"code.{k}") for k in names}
    code = CodeConfig(**{k: v for k, v in fields.items() if v is not None})
    plan = make_scheme(code, int(run.attrs.get("workers", code.workers)), int(run.attrs.get("seed", 0))).plan
    return int(qmax(plan.assignment, list(plan.orders), plan.parts))


def collect(files: Sequence[str]) -> tuple[dict, dict, dict, list]:
    """(exact, approx, qmax) keyed by assignment → ordering → l (→ T); and every run used."""
    runs = c.select(c.load_runs(files), "F3 (partial with optimal/random ordering)", files, scheme="partial",
                    code__ordering=lambda o: o in ORDERINGS)
    exact: dict = {}
    approx: dict = {}
    qmax: dict = {}
    for (_, a, l, dec, _, _), group in c.group_by(runs, "file", "code.assignment", "code.parts", "code.decode",
                                                 "code.deadline", "seed").items():
        if dec == "approx":
            for run in group:
                t = float(run.key("code.deadline")) / float(run.key("delays.chunk_time", 1.0))
                approx.setdefault(a, {}).setdefault(run.key("code.ordering"), {}).setdefault(int(l), {})[t] = \
                    c.mean_std(run.table("rounds")["coef_error"])
            continue
        mask = c.common_exact(group)
        for run in group:
            o = run.key("code.ordering")
            exact.setdefault(a, {}).setdefault(o, {})[int(l)] = c.mean_std(run.table("rounds")["latency"][mask])
            qmax.setdefault(a, {}).setdefault(o, {})[int(l)] = qmax_of(run)
    return exact, approx, qmax, runs


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F3 from ``files`` into ``out_dir``; return files, key numbers and claims."""
    exact, approx, qmax, runs = collect(files)
    graphs = [a for a in c.ASSIGNMENTS if a in exact and all(o in exact[a] for o in ORDERINGS)]
    if not graphs:
        raise c.FigureDataError(f"{', '.join(files)}: F3 needs exact-decoding runs of partial with both "
                                "optimal and random ordering on the same assignment")
    plt = c.pyplot()
    fig = plt.figure(figsize=(11, 6.4))
    grid = fig.add_gridspec(2, len(graphs) + 1)
    numbers: dict = {}
    claims = []
    for col, a in enumerate(graphs):
        ax = fig.add_subplot(grid[0, col])
        for o in ORDERINGS:
            series = exact[a][o]
            ls = sorted(series)
            c.errorbars(ax, [l + (-0.04 if o == "optimal" else 0.04) for l in ls], [series[l] for l in ls],
                        color=c.COLORS[o], label=f"{o} ordering", **STYLE[o])
        ax.set_title(f"{c.ASSIGNMENT_LABEL.get(a, a)}: exact time")
        ax.set_xticks(sorted(exact[a]["optimal"]))
        ax.set_xlabel("l (parts of the gradient)")
        ax.set_ylabel("completion time (s, mean ± std)")
        ax.legend(loc="upper left")
        ls = sorted(set(exact[a]["optimal"]) & set(exact[a]["random"]))
        delta = max(ls)
        for l in ls:
            opt, rnd = exact[a]["optimal"][l][0], exact[a]["random"][l][0]
            numbers[f"{a} l={l} random / optimal time"] = rnd / opt
            ok = opt < rnd if l < delta else abs(opt - rnd) <= 1e-9 * max(rnd, 1.0)
            claims.append(c.claim(f"{a} l={l}: optimal {'below' if l < delta else 'ties with'} random "
                                  "(random/optimal mean time)", rnd / opt, ok))
        ax2 = fig.add_subplot(grid[1, col])
        for o in ORDERINGS:
            for i, (l, series) in enumerate(sorted(approx.get(a, {}).get(o, {}).items())):
                ts = sorted(series)
                c.errorbars(ax2, ts, [series[t] for t in ts], log=True, floor=FLOOR, color=f"C{i}",
                            label=f"l = {l}, {o}", alpha=0.9 if o == "optimal" else 0.6, elinewidth=0.7,
                            **STYLE[o])
        ax2.set_yscale("log")
        ax2.axhline(FLOOR, color="0.5", lw=0.8, ls=":")
        ax2.set_title(f"{'G1' if 'circ' in a else 'G2'}: approximate error (floor {FLOOR:g} = exact)")
        ax2.set_xlabel("deadline T (units of chunk_time)")
        ax2.set_ylabel("coef_error (mean ± std)")
        ax2.legend(loc="lower left", ncol=2, fontsize=6.5)
    axq = fig.add_subplot(grid[:, -1])
    for i, a in enumerate(graphs):
        for o in ORDERINGS:
            series = qmax[a][o]
            ls = sorted(series)
            axq.plot([l + 0.05 * (i - 0.5) for l in ls], [series[l] for l in ls], color=f"C{i + 4}",
                     label=f"{'G1' if 'circ' in a else 'G2'} {o}", **STYLE[o])
            for l in ls:
                numbers[f"{a} l={l} Qmax {o}"] = series[l]
    axq.set_title("Qmax: completions that always suffice")
    axq.set_xlabel("l (parts of the gradient)")
    axq.set_xticks(sorted(qmax[graphs[0]]["optimal"]))
    axq.set_ylabel("Qmax (chunk completions)")
    axq.legend(loc="upper left")
    fig.suptitle("F3 · chunk ordering inside workers: optimal (Latin) vs random (m = N = 20, δ = 4)", fontsize=9.5)
    fig.tight_layout()
    c.add_caption(fig, c.caption(runs, "time: rounds both orderings decode exactly; error: all rounds"))
    paths = c.save(fig, out_dir, STEM)
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
