"""``mpigc trace``: traces out of runs, a straggler model fitted to traces, samples of it, numeric checks.

The four steps of docs/your-cluster.md: ``export`` (a run's per-round,
per-worker busy seconds as a CSV trace), ``fit`` (the ``fitted`` model and
the i.i.d. shifted-exponential baseline, to MODEL.toml), ``sample`` (a
synthetic trace drawn exactly as the simulator draws it) and ``check``
(held-out trace vs model vs baseline).
"""
from __future__ import annotations

import argparse
import os
import tomllib

import numpy as np

from mpigc import __version__
from mpigc.errors import InputError


def add_parser(sub) -> None:
    """Add ``trace`` and its four subcommands to the ``mpigc`` subparsers ``sub``."""
    t = sub.add_parser("trace", help="traces from runs; fit, sample and check a straggler model of them",
                       description="Bring your cluster's stragglers into the simulator: export a run's "
                                   "durations as a trace, fit a model to traces, sample it, check it.")
    steps = t.add_subparsers(dest="trace_command", metavar="STEP", required=True)
    e = steps.add_parser("export", help="a run's per-round, per-worker busy seconds as a CSV trace",
                         description="Write the trace that delays.model = \"trace\" replays (header w0,w1,...; "
                                     "one line per round) from a run with detail \"workers\" or \"full\". A "
                                     "worker's value is censored (an empty cell) when a STOP cut its round short "
                                     "or it failed.")
    e.add_argument("file", metavar="FILE.h5", help="mpigc result file")
    e.add_argument("--run", help="run name (required if the file holds several runs)")
    e.add_argument("--out", required=True, metavar="T.csv", help="CSV trace to write")
    e.add_argument("--drop-censored", action="store_true", help="leave out every round holding a censored value")
    f = steps.add_parser("fit", help="fit the fitted straggler model (and the i.i.d. baseline) to traces",
                         description="Fit per-worker speed factors, a fast/slow Markov chain per worker and a "
                                     "shifted log-normal per state (EM) to one or more CSV traces; write a "
                                     "config with a [delays] table (model = \"fitted\") that simulate and "
                                     "emulated run accept for any code.workers and run.rounds.")
    f.add_argument("traces", nargs="+", metavar="T.csv", help="CSV traces (rounds x workers, seconds)")
    f.add_argument("--out", required=True, metavar="MODEL.toml", help="model to write")
    f.add_argument("--drop-censored", action="store_true",
                   help="leave censored (empty) values out of the likelihood (the chain runs through them)")
    s = steps.add_parser("sample", help="a synthetic trace drawn from a fitted model, as the simulator draws it")
    s.add_argument("model", metavar="MODEL.toml")
    s.add_argument("--rounds", type=int, required=True, help="rounds R")
    s.add_argument("--workers", type=int, required=True, help="workers M")
    s.add_argument("--seed", type=int, default=None, help="seed (default: run.seed of MODEL.toml, else 0)")
    s.add_argument("--out", required=True, metavar="S.csv")
    c = steps.add_parser("check", help="held-out trace vs fitted model vs i.i.d. baseline, a row per statistic",
                         description="Quantiles, per-round order statistics, slow runs and the spread of worker "
                                     "means of a held-out trace against the mean over synthetic traces of the "
                                     "same shape from the model and from its i.i.d. baseline.")
    c.add_argument("model", metavar="MODEL.toml")
    c.add_argument("heldout", metavar="HELDOUT.csv")
    c.add_argument("--replicates", type=int, default=200, help="synthetic traces per model (default: %(default)s)")
    c.add_argument("--seed", type=int, default=0, help="seed of the synthetic traces (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    """Run one ``mpigc trace`` step."""
    return {"export": _export, "fit": _fit, "sample": _sample, "check": _check}[args.trace_command](args)


def read_csv(path: str, keep_censored: bool) -> np.ndarray:
    """Return a CSV trace; censored (empty) values refused, or kept as NaN with ``keep_censored``."""
    from mpigc.delays.trace import load_trace

    return load_trace(path, censored="keep" if keep_censored else "refuse")


def write_csv(path: str, values: np.ndarray) -> None:
    """Write a trace with header ``w0,w1,...``; NaN (censored) as an empty cell; values exact (17 digits)."""
    header = ",".join(f"w{w}" for w in range(values.shape[1]))
    lines = [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in values]
    _write_text(path, "\n".join([header, *lines]) + "\n")


def _write_text(path: str, text: str) -> None:
    """Write ``text`` whole or not at all (a temporary file renamed into place)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise InputError(path, f"cannot write: {exc.strerror or exc}") from None


def _export(args: argparse.Namespace) -> int:
    from mpigc import results

    runs = results.read_runs(args.file, None if args.run is None else [args.run])
    if len(runs) != 1:
        names = ", ".join(r.name for r in runs) or "none"
        raise InputError(args.file, f"holds {len(runs)} runs ({names}); name one with --run")
    values, censored = run_trace(runs[0])
    if args.drop_censored:
        values = values[~censored.any(axis=1)]
        if not len(values):
            raise InputError(args.file, f"run {runs[0].name!r}: every round holds a censored value")
    else:
        values = np.where(censored, np.nan, values)
    write_csv(args.out, values)
    print(f"# wrote {values.shape[0]} rounds x {values.shape[1]} workers to {args.out} "
          f"({int(censored.sum())} censored value(s){', rounds dropped' if args.drop_censored else ''})")
    return 0


def run_trace(run) -> tuple[np.ndarray, np.ndarray]:
    """Return a run's (rounds × workers) busy seconds and which of them are censored.

    A value is censored when the worker failed or finished fewer tasks than its
    load (a STOP cut it short); the load is the run's ``load`` attribute, else the
    most tasks the worker ever finished in a round.
    """
    table = run.tables.get("workers")
    if table is None or table.size == 0:
        raise InputError(run.name, 'has no workers table (record it with run.detail = "workers" or "full")')
    rounds, row = np.unique(table["round"], return_inverse=True)
    worker = table["worker"].astype(np.int64)
    shape = (rounds.size, int(worker.max()) + 1)
    busy = np.full(shape, np.nan)
    done = np.zeros(shape, dtype=np.int64)
    failed = np.ones(shape, dtype=bool)  # a missing row counts as censored
    busy[row, worker] = table["busy"]
    done[row, worker] = table["tasks_done"]
    failed[row, worker] = table["failed"]
    load = run.attrs.get("load")
    full = np.full(shape[1], int(load)) if load is not None else done.max(axis=0)
    return busy, failed | (done < full) | ~np.isfinite(busy)


def _fit(args: argparse.Namespace) -> int:
    from mpigc.delays.fit import check_trace, fit_traces

    traces = [check_trace(read_csv(p, args.drop_censored), p, censored=args.drop_censored) for p in args.traces]
    result = fit_traces(traces)
    _write_text(args.out, model_toml(result, args.traces))
    p = result.params
    print(f"# fitted {result.rounds} rounds x {result.workers} workers in {result.iterations} EM iterations "
          f"(log likelihood {result.log_likelihood:.6g})")
    print(f"#   speed factors: log-sd {p.speed_sigma:.4g}; chain: P(fast->slow) {p.p_bad:.4g}, "
          f"P(slow->fast) {p.p_good:.4g} (slow {100 * p.p_slow:.1f}% of rounds)")
    print(f"#   value/speed = {p.floor:.4g} + lognormal: fast ({p.fast_mu:.4g}, {p.fast_sigma:.4g}), "
          f"slow ({p.slow_mu:.4g}, {p.slow_sigma:.4g})")
    print(f"#   i.i.d. baseline: {result.baseline.shift:.4g} + Exp(mean {result.baseline.scale:.4g})")
    print(f"# wrote {args.out}")
    return 0


def model_toml(result, sources) -> str:
    """Return MODEL.toml: a config whose [delays] table is the model, and a [fit] table saying how."""
    import tomli_w

    fit = {"mpigc_version": __version__, "traces": [os.fspath(s) for s in sources], "rounds": result.rounds,
           "workers": result.workers, "log_likelihood": result.log_likelihood, "iterations": result.iterations,
           "slow_threshold": result.slow_threshold,
           "baseline": {"model": "shifted-exponential", "shift": result.baseline.shift,
                        "scale": result.baseline.scale}}
    head = ("# A straggler model fitted by `mpigc trace fit` (docs/your-cluster.md).\n"
            "# Use it as a config, or copy its [delays] table into yours; [fit] is informational.\n")
    return head + tomli_w.dumps({"delays": {"model": "fitted", **result.params.as_dict()}, "fit": fit})


def _load_model(path: str):
    from mpigc.config import load_config
    from mpigc.delays.fitted import FittedParams

    config = load_config(path)
    if config.delays.model != "fitted":
        raise InputError(f"{path}: delays.model", f'must be "fitted" (a model from mpigc trace fit), '
                                                  f"got {config.delays.model!r}")
    with open(path, "rb") as fh:
        info = tomllib.load(fh).get("fit", {})
    return config, FittedParams.from_config(config.delays), info


def _sample(args: argparse.Namespace) -> int:
    from mpigc.delays.fitted import FittedValues

    if args.rounds < 1 or args.workers < 1:
        raise InputError("--rounds/--workers", "must be at least 1")
    config, params, _ = _load_model(args.model)
    seed = config.run.seed if args.seed is None else args.seed
    values = FittedValues(params, seed, args.workers).trace(args.rounds)
    write_csv(args.out, values)
    print(f"# wrote {args.rounds} rounds x {args.workers} workers (seed {seed}) to {args.out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from mpigc.delays.fit import Baseline, check_trace
    from mpigc.delays.fitted import FittedValues
    from mpigc.delays.tracecheck import CheckTable, predicted_statistics, trace_statistics

    if args.replicates < 1:
        raise InputError("--replicates", "must be at least 1")
    _, params, info = _load_model(args.model)
    heldout = check_trace(read_csv(args.heldout, False), args.heldout)
    rounds, workers = heldout.shape
    threshold = float(info.get("slow_threshold", np.quantile(heldout, 0.9)))
    base = info.get("baseline")
    if not base:
        raise InputError(args.model, "has no [fit.baseline] table (write models with mpigc trace fit)")
    baseline = Baseline(float(base["shift"]), float(base["scale"]))
    model = predicted_statistics(lambda rng: FittedValues(params, int(rng.integers(2**63)), workers).trace(rounds),
                                 threshold, args.replicates, args.seed)
    iid = predicted_statistics(lambda rng: baseline.sample(rng, rounds, workers), threshold, args.replicates,
                               args.seed)
    table = CheckTable(trace_statistics(heldout, threshold), model, iid)
    print(f"# {args.heldout}: {rounds} rounds x {workers} workers; model {args.model}; "
          f"{args.replicates} synthetic traces each; slow = above {threshold:.4g}")
    print(table.format())
    return 0
