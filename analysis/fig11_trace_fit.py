"""F11: a fitted straggler model against the data it did not see, and against the i.i.d. fit.

A Lambda trace (Sydney, load 0, 20 rounds x 256 workers) split in halves by
rounds: ``mpigc trace fit`` on the first half, then on the second half (a)
the mean per-round k-th order statistic against k (the time a scheme
waiting for k workers waits; held-out vs fitted model vs i.i.d. shifted
exponential, means over synthetic traces of the same shape) and (b) the
distribution of slow-run lengths (consecutive rounds above the fit data's
90th percentile). ``make`` writes the numbers to HDF5; ``main`` draws them.

    python analysis/fig11_trace_fit.py results/f11-trace-fit.h5 --out figures
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f11_trace_fit"
TRACE = "cnn-sydney-load0.00-batch256-mbp2-r20.csv"
MAX_RUN = 6


def settings(quick: bool) -> dict:
    """The settings the F11 file is made with (reused only if equal)."""
    return {"figure": "F11", "trace": TRACE, "replicates": 50 if quick else 400}


def _run_lengths(values: np.ndarray, threshold: float) -> np.ndarray:
    """Return counts of slow runs of length 1..MAX_RUN (the last bin: MAX_RUN or longer)."""
    slow = np.zeros((values.shape[0] + 2, values.shape[1]), dtype=np.int8)
    slow[1:-1] = values > threshold
    edges = np.diff(slow, axis=0).T
    lengths = np.nonzero(edges == -1)[1] - np.nonzero(edges == 1)[1]
    return np.bincount(np.minimum(lengths, MAX_RUN), minlength=MAX_RUN + 1)[1:].astype(float)


def make(path: Path, quick: bool) -> None:
    """Fit the first half of the trace, sample model and baseline, write the curves to ``path`` (HDF5)."""
    import h5py

    from mpigc.delays.fit import check_trace, fit_traces
    from mpigc.delays.fitted import FittedValues
    from mpigc.delays.lambda_traces import trace_dir
    from mpigc.delays.trace import load_trace

    values = load_trace(str(trace_dir() / TRACE))
    half = values.shape[0] // 2
    first, second = values[:half], values[half:]
    fit = fit_traces([check_trace(first, TRACE)])
    rounds, workers = second.shape
    rng = np.random.default_rng(0)
    replicates = settings(quick)["replicates"]
    curves = {"held-out": (np.sort(second, axis=1).mean(axis=0), _run_lengths(second, fit.slow_threshold))}
    for label, draw in (("fitted", lambda: FittedValues(fit.params, int(rng.integers(2**63)), workers).trace(rounds)),
                        ("iid", lambda: fit.baseline.sample(rng, rounds, workers))):
        samples = [draw() for _ in range(replicates)]
        curves[label] = (np.mean([np.sort(s, axis=1).mean(axis=0) for s in samples], axis=0),
                         np.mean([_run_lengths(s, fit.slow_threshold) for s in samples], axis=0))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        for label, (order, runs) in curves.items():
            f[f"{label}/order"] = order
            f[f"{label}/runs"] = runs
        f.attrs["slow_threshold"] = fit.slow_threshold
        f.attrs["shape"] = [rounds, workers]
        f.attrs["settings"] = json.dumps(settings(quick), sort_keys=True)
    tmp.replace(path)


def current(path: Path, quick: bool) -> bool:
    """Whether ``path`` exists and was made with this invocation's settings."""
    import h5py

    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("settings") == json.dumps(settings(quick), sort_keys=True)
    except OSError:
        return False


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F11 from ``files[0]`` into ``out_dir``; return files, key numbers and claims."""
    import h5py

    with h5py.File(files[0], "r") as f:
        curves = {label: (f[f"{label}/order"][()], f[f"{label}/runs"][()]) for label in ("held-out", "fitted", "iid")}
        rounds, workers = (int(x) for x in f.attrs["shape"])
        threshold = float(f.attrs["slow_threshold"])
    plt = c.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    k = np.arange(1, workers + 1)
    styles = {"held-out": dict(color="black", lw=2.2), "fitted": dict(color="tab:blue", lw=1.6, ls="--"),
              "iid": dict(color="tab:red", lw=1.4, ls=":")}
    names = {"held-out": "held-out half (observed)", "fitted": "fitted model (first half)",
             "iid": "i.i.d. shifted exponential (first half)"}
    for label, (order, _) in curves.items():
        ax1.plot(k, order, label=names[label], **styles[label])
    ax1.set_xlabel("k (the k-th fastest of the round's workers)")
    ax1.set_ylabel("mean k-th order statistic (s)")
    ax1.set_title("(a) time to hear from k workers")
    ax1.legend(fontsize=8, loc="upper left")
    width = 0.27
    bins = np.arange(1, MAX_RUN + 1)
    for i, (label, (_, runs)) in enumerate(curves.items()):
        ax2.bar(bins + (i - 1) * width, runs / max(runs.sum(), 1e-12), width, label=names[label],
                color=styles[label]["color"], alpha=0.85)
    ax2.set_xticks(bins, [str(b) for b in bins[:-1]] + [f"{MAX_RUN}+"])
    ax2.set_xlabel(f"slow run length (consecutive rounds above {threshold:.2f} s)")
    ax2.set_ylabel("fraction of slow runs")
    ax2.set_title("(b) how long a straggler stays slow")
    c.add_caption(fig, f"Lambda trace {TRACE}: fit on rounds 0-{rounds - 1}, checked on the next {rounds} "
                       f"rounds x {workers} workers")
    written = c.save(fig, out_dir, STEM)
    held, fitted, iid = (curves[x][0] for x in ("held-out", "fitted", "iid"))
    rel = lambda pred: float(np.median(np.abs(pred - held) / held))  # noqa: E731
    numbers = {"median_rel_error_order_fitted": rel(fitted), "median_rel_error_order_iid": rel(iid),
               "max_rel_error_order_fitted": float(np.max(np.abs(fitted - held) / held))}
    claims = [c.claim("fitted model's median error over all k is at most half the i.i.d. fit's",
                      numbers["median_rel_error_order_fitted"],
                      numbers["median_rel_error_order_fitted"] <= 0.5 * numbers["median_rel_error_order_iid"])]
    return {"files": [str(p) for p in written], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
