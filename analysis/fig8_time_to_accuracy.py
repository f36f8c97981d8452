"""F8 (ours, docs/protocols.md#time-to-accuracy): held-out loss vs wall time, exact codes vs practical baselines.

Every run of the file is one scheme entry of ``jobs/configs/f8-time-to-accuracy.toml`` on the same
straggler realisation, data, initial model and step size. Left: ``eval_loss`` of the evaluated rounds
against the cumulative round latency (the wall time a training loop would have spent waiting for
gradients; evaluation itself is on no clock), with the target loss dashed. Right: time to the
target per run (the first evaluated round with ``eval_loss`` ≤ ``run.target_loss``), "not reached"
for runs that never get there. Key numbers: time and rounds to target, mean latency, the final
and best loss of every run, and which run reaches the target first and by how much.

    python analysis/fig8_time_to_accuracy.py results/f8-time-to-accuracy.h5 --out figures
"""
from __future__ import annotations

import io
import math
import os
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402
from analysis import sweeps  # noqa: E402

STEM = "f8_time_to_accuracy"
CONFIG = sweeps.CONFIGS / "f8-time-to-accuracy.toml"
DATA = sweeps.ROOT / "jobs" / "data" / "digits-5to9.npz"
OUTPUT = "f8-time-to-accuracy.h5"
QUICK_ROUNDS = 60


def curve(run: c.Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (wall time s, eval_loss, round count) of a run's evaluated rounds.

    Raises
    ------
    FigureDataError
        The run has no ``eval_loss`` (a file made before time to accuracy) or no evaluated round.
    """
    rounds = run.table("rounds")
    if "eval_loss" not in (rounds.dtype.names or ()):
        raise c.FigureDataError(f"{run.file}: run {run.name!r} has no eval_loss (made before time to accuracy); "
                                "rerun it with run.eval_every")
    loss = np.asarray(rounds["eval_loss"], dtype=float)
    done = np.isfinite(loss)
    if not done.any():
        raise c.FigureDataError(f"{run.file}: run {run.name!r} has no evaluated round (run.eval_every unset)")
    wall = np.cumsum(np.asarray(rounds["latency"], dtype=float))
    return wall[done], loss[done], np.flatnonzero(done) + 1.0


def target_of(runs: Sequence[c.Run]) -> float:
    """The runs' ``target_loss`` attribute (their config's ``run.target_loss``); NaN if none set one."""
    values = {float(r.attrs["target_loss"]) for r in runs if r.attrs.get("target_loss") not in (None, "")}
    return values.pop() if len(values) == 1 else math.nan


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F8 from ``files`` into ``out_dir``; return files and key numbers (no published claim to check)."""
    from mpigc import report

    runs = [r for r in c.load_runs(files) if "rounds" in r.tables]
    if not runs:
        raise c.FigureDataError(f"{', '.join(files)}: F8 needs runs with a rounds table")
    curves = {r.entry: curve(r) for r in runs}
    target = target_of(runs)
    plt = c.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    numbers: dict = {}
    reached: dict[str, float] = {}
    for i, run in enumerate(runs):
        wall, loss, _ = curves[run.entry]
        ax1.plot(wall, loss, color=f"C{i}", lw=1.2, label=run.entry)
        seconds, count = report.time_to_target(run.tables["rounds"], target) if math.isfinite(target) \
            else (math.nan, math.nan)
        numbers[f"{run.entry}: time to target (s)"] = seconds
        numbers[f"{run.entry}: rounds to target"] = count
        numbers[f"{run.entry}: mean latency (s)"] = float(np.mean(run.tables["rounds"]["latency"]))
        numbers[f"{run.entry}: final / best eval_loss"] = f"{loss[-1]:.4f} / {loss.min():.4f}"
        if math.isfinite(seconds):
            reached[run.entry] = seconds
            ax1.plot([seconds], [target], "o", color=f"C{i}", ms=4)
    if math.isfinite(target):
        ax1.axhline(target, color="0.3", lw=0.8, ls="--", label=f"target {target:g}")
    # log time: a scheme that makes the same progress per round at a different latency is a shifted copy
    ax1.set_xscale("log")
    low = min(float(lo.min()) for _, lo, _ in curves.values())
    first = max(float(lo[0]) for _, lo, _ in curves.values())
    ax1.set_ylim(low - 0.02 * (first - low), first + 0.02 * (first - low))
    ax1.set_xlabel("wall time: cumulative round latency (s, log scale)")
    ax1.set_ylabel("held-out loss (eval_loss)")
    ax1.set_title("held-out loss against wall time (same realisation, data, θ₀, step)")
    ax1.legend(loc="upper right", ncol=2)
    names = [r.entry for r in runs]
    bars = [reached.get(n, 0.0) for n in names]
    ax2.barh(range(len(names)), bars, color=[f"C{i}" for i in range(len(names))])
    for j, n in enumerate(names):
        text = f"{reached[n]:.0f} s" if n in reached else "not reached"
        ax2.text(bars[j], j, f" {text}", va="center", fontsize=7.5)
    ax2.set_yticks(range(len(names)), names)
    ax2.invert_yaxis()
    ax2.set_xlim(0, 1.3 * max(bars + [1.0]))
    ax2.set_xlabel(f"time to eval_loss ≤ {target:g} (s)")
    ax2.set_title("time to target")
    dataset = Path(str(runs[0].key("workload.dataset", "?"))).name
    fig.suptitle(f"F8 · time to accuracy: {runs[0].key('workload.model', '?')} on {dataset}, "
                 f"m = {runs[0].attrs.get('workers', '?')}, eval every {runs[0].attrs.get('eval_every', '?')} "
                 f"round(s) on the {runs[0].attrs.get('eval_set', '?')} set", fontsize=9.5)
    fig.tight_layout()
    c.add_caption(fig, c.caption(runs, "wall time = sum of round latencies (evaluation off the clock)"))
    paths = c.save(fig, out_dir, STEM)
    if reached:
        order = sorted(reached, key=reached.get)
        numbers["first to target"] = order[0]
        if len(order) > 1:
            numbers["runner-up / first (time)"] = reached[order[1]] / reached[order[0]]
    numbers["never reached the target"] = ", ".join(n for n in names if n not in reached) or "none"
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": []}


def available_entries(config: Path) -> tuple[list, list[str]]:
    """The config's scheme entries whose scheme this mpigc provides, and the names of the missing ones."""
    entries = tomllib.loads(config.read_text(encoding="utf-8"))["code"]["scheme"]
    names = [e if isinstance(e, str) else e["scheme"] for e in entries]
    missing = set(sweeps.missing_schemes(tuple(names)))
    return [e for e, n in zip(entries, names) if n not in missing], sorted(missing)


def settings(quick: bool) -> dict:
    """The settings F8's file is made with: rounds, the config's text and the dataset's size."""
    return sweeps.settings("F8", quick, rounds=QUICK_ROUNDS if quick else None,
                           config=CONFIG.read_text(encoding="utf-8") if CONFIG.exists() else None,
                           data_bytes=DATA.stat().st_size if DATA.exists() else None,
                           missing=available_entries(CONFIG)[1] if CONFIG.exists() else None)


def make(out: Path, quick: bool, log=sys.stdout) -> Path:
    """Run F8's config in the simulator into ``out`` (every entry whose scheme exists; the others named)."""
    from mpigc.config import load_config
    from mpigc.config.toml import format_value
    from mpigc.errors import InputError
    from mpigc.sim.driver import simulate

    if not DATA.exists():
        raise sweeps.SweepError(f"F8: dataset {DATA} is missing (python jobs/convert_digits.py makes it)")
    entries, missing = available_entries(CONFIG)
    if missing:
        print(f"  F8: scheme(s) {', '.join(missing)} not provided by this mpigc: drawn without them", file=log)
    overrides = [f"workload.dataset={format_value(str(DATA))}", f"code.scheme={format_value(entries)}"]
    if quick:
        overrides.append(f"run.rounds={QUICK_ROUNDS}")
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        simulate(load_config(str(CONFIG), overrides), str(tmp), log=io.StringIO())
    except InputError as error:
        raise sweeps.SweepError(f"F8: {error}") from None
    sweeps.stamp(tmp, settings(quick))
    tmp.replace(out)
    print(f"  F8: {len(entries)} runs in {time.perf_counter() - t0:.1f} s -> {out}", file=log, flush=True)
    return out


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
