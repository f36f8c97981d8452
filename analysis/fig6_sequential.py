"""F6 (P3): total runtime of J jobs for m-sgc, sr-sgc, gc-seq and uncoded; training loss vs wall time.

Left: time at which the last of the J jobs is decoded (max ``jobs.t_done``)
for every load-0 AWS Lambda trace and the Gilbert–Elliott model (one bar
each), their mean ± std over the Lambda traces, and P3's published
916/1019/1095/1321 s (± 63 / – / 51 / – s). Right: training loss of every
decoded job vs the wall time it was decoded (``jobs`` table), from the runs
made with ``run.verify = true``. Checks gc-seq is never above uncoded.

    python analysis/fig6_sequential.py results/f6-sequential.h5 --out figures
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f6_sequential"
SCHEMES = ("m-sgc", "sr-sgc", "gc-seq", "uncoded")
PUBLISHED = {"m-sgc": (916.0, 63.0), "sr-sgc": (1019.0, 0.0), "gc-seq": (1095.0, 51.0), "uncoded": (1321.0, 0.0)}


def source(run: c.Run) -> str:
    """Short label of a run's straggler source: the trace name or the model."""
    if run.key("delays.model") == "trace":
        name = Path(str(run.key("delays.trace", "?"))).stem
        return re.sub(r"^cnn-|-load0\.00", "", name)
    return str(run.key("delays.model", "?"))


def params(run: c.Run) -> str:
    """The scheme's tuned parameters, e.g. ``B=2 W=3 λ=52`` or ``s=18``."""
    if run.scheme == "gc-seq":
        return f"s={int(run.key('code.load', 1)) - 1}"
    if run.scheme in ("m-sgc", "sr-sgc"):
        return f"B={run.key('code.B')} W={run.key('code.W')} λ={run.key('code.lambda')}"
    return ""


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F6 from ``files`` into ``out_dir``; return files, key numbers and claims."""
    runs = c.select(c.load_runs(files), "F6 (sequential schemes m-sgc, sr-sgc, gc-seq, uncoded)", files,
                    scheme=lambda s: s in SCHEMES)
    totals: dict = {}
    for run in runs:
        jobs = run.table("jobs")
        if not jobs.size:
            raise c.FigureDataError(f"{run.file}: run {run.name!r} has an empty jobs table")
        totals.setdefault(source(run), {})[run.scheme] = (float(jobs["t_done"].max()), params(run))
    if not totals:
        raise c.FigureDataError(f"{', '.join(files)}: F6 needs sequential runs without run.verify (total runtimes)")
    plt = c.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    sources = sorted(totals, key=lambda s: (s == "gilbert-elliott", s))
    lambda_sources = [s for s in sources if s != "gilbert-elliott"]
    bars = [*sources, "mean of Lambda traces", "P3 published"]
    width = 0.8 / len(bars)
    x = np.arange(len(SCHEMES))
    numbers: dict = {}
    for j, name in enumerate(bars):
        heights, errs = [], []
        for scheme in SCHEMES:
            if name == "P3 published":
                h, e = PUBLISHED[scheme]
            elif name == "mean of Lambda traces":
                h, e, _ = c.mean_std([totals[s][scheme][0] for s in lambda_sources if scheme in totals[s]])
            else:
                h, e = totals[name].get(scheme, (np.nan, ""))[0], 0.0
            heights.append(h)
            errs.append(e)
        hatch = "//" if name == "P3 published" else None
        color = "0.75" if name == "P3 published" else ("0.35" if name.startswith("mean") else f"C{j}")
        ax1.bar(x + (j - (len(bars) - 1) / 2) * width, heights, width, yerr=errs, color=color, hatch=hatch,
                edgecolor="0.2", linewidth=0.4, label=name, capsize=2)
        if name.startswith("mean"):
            for scheme, h, e in zip(SCHEMES, heights, errs):
                numbers[f"{scheme} mean over Lambda traces (s)"] = h
                numbers[f"{scheme} std over Lambda traces (s)"] = e
    ax1.set_xticks(x, SCHEMES)
    ax1.set_ylabel(f"total runtime of J = {runs[0].key('run.rounds')} jobs (s)")
    ax1.set_yscale("log")
    ax1.set_title("total runtime (bars: one trace/model; mean ± std over Lambda traces; P3)")
    ax1.legend(fontsize=6, ncol=2, loc="upper left")
    verified = [r for r in runs if r.key("run.verify", False) and "jobs" in r.tables
                and np.isfinite(r.tables["jobs"]["loss"]).any()]
    for run in verified:
        jobs = np.sort(run.table("jobs"), order="t_done")
        ax2.plot(jobs["t_done"], jobs["loss"], color=c.COLORS.get(run.scheme), lw=1.0,
                 label=f"{run.scheme} {params(run)}".strip())
    if verified:
        ax2.set_yscale("log")
        ax2.set_title(f"training loss vs wall time (m = {verified[0].attrs.get('workers')}, "
                      f"{source(verified[0])}, K = {verified[0].key('workload.models') or 'T_seq+1'} models)")
        ax2.legend(fontsize=7)
    else:
        ax2.text(0.5, 0.5, "no run with run.verify = true:\nno training loss recorded", ha="center",
                 va="center", transform=ax2.transAxes)
        ax2.set_title("training loss vs wall time")
    ax2.set_xlabel("wall time when the job was decoded (s)")
    ax2.set_ylabel("training loss of the job's model")
    fig.suptitle("F6 · sequential gradient coding (P3): 256 workers, parameters by P3's grid search per trace",
                 fontsize=9.5)
    fig.tight_layout()
    c.add_caption(fig, c.caption(runs, "affine load model: trace seconds + load · slope"))
    paths = c.save(fig, out_dir, STEM)
    claims = []
    for s in sources:
        for scheme in SCHEMES:
            if scheme in totals[s]:
                numbers[f"{s} {scheme} (s) [{totals[s][scheme][1]}]"] = totals[s][scheme][0]
        if "gc-seq" in totals[s] and "uncoded" in totals[s]:
            gc, unc = totals[s]["gc-seq"][0], totals[s]["uncoded"][0]
            claims.append(c.claim(f"{s}: gc-seq not above uncoded (uncoded / gc-seq)", unc / gc, gc <= unc))
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
