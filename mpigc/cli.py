"""The ``mpigc`` command line (see ``mpigc --help``)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mpigc import __version__
from mpigc.errors import InputError, PluginFailure

DESCRIPTION = """\
MPI benchmark suite for gradient coding under stragglers.

Run a scheme on MPI ranks (rank 0 decodes, ranks 1..M are workers) or in the
discrete-event simulator, with injected slowdowns and failures, and write
per-round timings and errors to HDF5. Without CONFIG the embedded default
config is used; `mpigc validate` prints it with every default.
"""

EPILOG = """\
examples:
  mpigc simulate --out results.h5
  mpigc simulate jobs/configs/p1-canonical.toml --set run.rounds=200
  mpiexec -n 9 python -m mpigc run --set code.scheme=crc
  mpigc plan --set code.ordering=optimal --set code.load=4
  mpigc info results.h5
  mpiexec -n 9 python -m mpigc probe --network --set workload.features=1000000 --out network.toml
  mpigc plot results.h5 --out figures/

exit codes: 0 success, 2 bad input (config, arguments, world size), 1 failure during a run,
  128 + N stopped by signal N (143 SIGTERM, 130 SIGINT, 129 SIGHUP; the running run is marked interrupted)
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="TOML config file (default: the embedded default config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set code.parts=2 (repeatable; values are TOML)")


def _runner(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--out", metavar="FILE.h5", default="mpigc-results.h5",
                   help="HDF5 result file; runs are added if it exists (default: %(default)s)")
    p.add_argument("--name", help="run name (default: the entry's name or scheme; -2, -3... if taken)")


PROBE_DESCRIPTION = """\
With --network: every worker sends one result message to rank 0 at once, as
the runtime sends them, for message sizes from the header alone up to one
message of the config's gradient length d (l = 1); the k-th arrival is
fitted to latency + k * (gap + bytes / bandwidth) (the shared-ingest rule of the
simulator), and the [network] table to use is printed (and written with
--out). Run it at the world size of the job it models.
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="mpigc", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mpigc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _runner(sub.add_parser("run", help="run on MPI: mpiexec -n M+1 python -m mpigc run [CONFIG]",
                           description="Run the config's schemes on MPI ranks; needs code.workers + 1 ranks."))
    _runner(sub.add_parser("simulate", help="run the same schemes in virtual time",
                           description="Simulate the config's schemes on one straggler realisation."))
    v = sub.add_parser("validate", help="check a config and print it resolved, with every default")
    _common(v)
    v.add_argument("--keys", action="store_true", help="also list every key with its default and meaning")
    p = sub.add_parser("plan", help="assignment, orders, Qmax against its bound, worst condition number")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    i = sub.add_parser("info", help="summary table of every run in a result file")
    i.add_argument("file", help="HDF5 result file")
    i.add_argument("--csv", action="store_true", help="CSV instead of the aligned table (one row per run)")
    i.add_argument("--rounds", action="store_true",
                   help="CSV with one row per round of every run (all fields of the rounds table), for pandas")
    g = sub.add_parser("merge", help="copy the runs of result files into one (campaigns: one file per job)",
                       description="Copy every run of the input files, in order, into OUT (created if needed; "
                                   "taken names get -2, -3...). One commit: O(total size) once, where appending "
                                   "each job's run to one big file costs a copy of that file per job.")
    g.add_argument("out", metavar="OUT.h5", help="result file to add the runs to")
    g.add_argument("inputs", nargs="+", metavar="IN.h5", help="result files whose runs are copied")
    s = sub.add_parser("schemes", help="list schemes (built-in and plug-ins), where they come from, their keys",
                       description="List every scheme: built-in, registered by installed packages (entry points "
                                   "of the group mpigc.schemes), and any package.module:Name given.")
    s.add_argument("plugins", nargs="*", metavar="MODULE:CLASS", help="also describe these plug-ins")
    c = sub.add_parser("check", help="conformance kit: run a scheme (a name or a plug-in) through mpigc.testing",
                       description="Check a scheme against the Scheme/Decoder contract (docs/extending.md): "
                                   "exact decodes, decode times, coef_error, no wall clocks, both backends. "
                                   "One line per check; exit 0 if all pass, 1 otherwise, 2 on bad input.")
    c.add_argument("scheme", metavar="NAME_OR_MODULE:CLASS", help="a scheme name or package.module:Class")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config key for every instance, e.g. --set code.p=0.2 (repeatable; values are TOML)")
    c.add_argument("--mpi", type=int, metavar="N", default=None,
                   help="also run under mpiexec with N ranks (N - 1 workers); 0 skips it "
                        "(default: N = 4 if mpiexec is on PATH)")
    c.add_argument("--seeds", type=int, default=3, help="random instances per (m, load) (default: %(default)s)")
    n = sub.add_parser("probe", help="mpiexec -n N python -m mpigc probe --network: measure rank 0's ingest, "
                       "print the [network] table", description=PROBE_DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(n)
    n.add_argument("--network", action="store_true",
                   help="measure latency and ingest bandwidth into rank 0 (required: the compute probe is not built)")
    n.add_argument("--rounds", type=int, default=5, help="bursts per message size (default: %(default)s)")
    n.add_argument("--out", metavar="FILE.toml", help="also write the [network] table to this file")
    t = sub.add_parser("tune", help="P3's grid search of sequential-code parameters on a load-0 trace")
    t.add_argument("trace", help="CSV trace of per-round, per-worker load-0 seconds (e.g. a Lambda trace)")
    t.add_argument("--jobs", type=int, default=496, help="jobs J (default: %(default)s)")
    t.add_argument("--mu", type=float, default=1.0, help="round ends at (1+mu)*t_min (default: %(default)s)")
    t.add_argument("--slope", default="2.2",
                   help="seconds per unit of normalised load, or 'fit': least squares on the trace's loaded "
                        "siblings (load0.25 ... beside it), as P3's authors fit it (default: %(default)s, "
                        "their Canada fit)")
    t.add_argument("--workers", type=int, default=256, help="workers m (default: %(default)s)")
    t.add_argument("--lambda-max", type=int, dest="lambda_max",
                   help="largest lambda searched for sr-sgc and m-sgc, at most workers - 1 "
                        "(default: 63, P3's grid, or workers - 1 if fewer)")
    t.add_argument("--out", metavar="FILE.h5", help="also simulate the chosen parameters and store the runs")
    from mpigc.viz.commands import add_parsers  # plot and timeline (argparse only: no matplotlib here)

    add_parsers(sub)
    from mpigc import tracecmd

    tracecmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mpigc`` and ``python -m mpigc``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command in ("run", "simulate", "tune"):
        # One BLAS thread per process (unless the user chose): ranks already share
        # the cores, and an idle OpenBLAS thread spins after each threaded call.
        # On 2 cores this took the 8-worker anchor from 35 to 8 ms per round.
        from mpigc.blas_threads import pin_blas

        pin_blas()
    if args.command == "run":
        from mpigc.mpi.launch import main as run_main

        return run_main(args)
    if args.command == "probe":
        return _probe(args)
    try:
        return COMMANDS[args.command](args)
    except InputError as error:
        print(f"mpigc: error: {error}", file=sys.stderr)
        return 2
    except PluginFailure as error:  # a plug-in failed during the run: named, one line
        print(f"mpigc: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mpigc: interrupted", file=sys.stderr)
        return 130


def _probe(args: argparse.Namespace) -> int:
    """``mpigc probe``: ``--network`` runs on MPI; without it (issue 18's compute probe) refuse with exit 2."""
    if not args.network:
        import os

        rank = os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or "0"
        if rank == "0":  # one line per job, not one per rank
            print("mpigc: error: probe: only `probe --network` is built; the compute probe (probe without "
                  "--network, issue 18) is not built yet", file=sys.stderr, flush=True)
        return 2
    from mpigc.mpi.probe import main as probe_main

    return probe_main(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run ``mpigc simulate``.

    Everything :func:`mpigc.core.preflight.check_run` can find is bad input
    before the first entry runs, and its plan is the one that runs.
    SIGTERM/SIGINT/SIGHUP end it with 128 + signal number, the runs written
    so far kept and the running one marked ``interrupted``.
    """
    from mpigc import interrupts, report, results
    from mpigc.config import load_config
    from mpigc.core.preflight import check_run
    from mpigc.sim.driver import simulate

    config = load_config(args.config, args.overrides, backend="sim")
    plan = check_run(config, backend="sim", name=args.name, out=args.out or None)
    previous = interrupts.install()
    try:
        rows = simulate(config, args.out, args.name, plan=plan)
    except interrupts.Interrupted as stop:
        print(f"mpigc: {stop}{stop.note}", file=sys.stderr)
        return stop.exit_code
    except results.ResultWriteError as error:  # full disk, quota: the file is as it was before
        print(f"mpigc: error: {error}", file=sys.stderr)
        return 1
    except PluginFailure as error:  # the run so far is kept, marked as failed (not left for "killed")
        kept = f" (the rounds so far are in {args.out}, the run marked interrupted = failed)" if args.out else ""
        print(f"mpigc: error: {error}{kept}", file=sys.stderr)
        return 1
    finally:
        interrupts.restore(previous)
    print(report.summary_table(rows))
    if args.out:
        print(f"# wrote {len(rows)} run(s) to {args.out}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Run ``mpigc validate`` (the simulator's checks, every entry and its name included)."""
    from mpigc.config import describe_keys, load_config, to_toml
    from mpigc.core.preflight import check_run

    config = load_config(args.config, args.overrides, backend="sim")
    check_run(config, backend="sim")
    print(to_toml(config))
    if args.keys:
        print(describe_keys())
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Run ``mpigc plan``."""
    from mpigc.config import load_config
    from mpigc.core.planinfo import describe_plan, format_plan

    config = load_config(args.config, args.overrides, backend="sim")
    plans = describe_plan(config)
    print(json.dumps(plans, indent=2) if args.json else format_plan(plans))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Run ``mpigc info``: every healthy run, then one ``# damaged: NAME (reason)`` line per damaged run.

    Runs without a ``rounds`` table (e.g. F4's Lagrange runs) get a ``# no
    rounds table: NAME`` line instead of a row. These lines follow the table
    on stdout (on stderr with ``--csv`` and ``--rounds``, which stay plain
    CSV). Exit 0 if the file holds a healthy run or no run at all; 2 (one
    line naming every damaged run) if every run is damaged.
    """
    from mpigc import report, results

    scan = results.scan_runs(args.file, require=())
    runs = scan.runs
    damaged = report.damaged_lines(scan.damaged) + [f"# no rounds table: {run.name}" for run in runs
                                                    if "rounds" not in run.tables]
    damaged += report.damaged_lines(scan.set_aside) + [f"# ignored: {item}" for item in scan.ignored]
    if scan.damaged and not runs:
        raise InputError(args.file, "no readable run; damaged: " + "; ".join(map(str, scan.damaged)))
    if damaged and (args.rounds or args.csv):
        print("\n".join(damaged), file=sys.stderr)
    if args.rounds:
        import csv

        tables = [(run.name, str(run.attrs.get("scheme", "?")), str(run.attrs.get("backend", "?")),
                   run.tables["rounds"])
                  for run in runs if "rounds" in run.tables]
        csv.writer(sys.stdout, lineterminator="\n").writerows(report.round_rows(tables))
        return 0
    rows = [(run.name, str(run.attrs.get("scheme", "?")), _run_stats(run))
            for run in runs if "rounds" in run.tables]       # runs holding only attributes are skipped
    if args.csv:
        import csv

        csv.writer(sys.stdout).writerows(report.csv_rows(rows))
    else:
        first = runs[0].attrs if runs else {}
        print(report.provenance_header({k: first.get(k) for k in ("mpigc_version", "created", "host", "backend")}))
        print(report.summary_table(rows))
        for run in runs:  # where a run's scheme, model or workload came from when it was not built in
            for plugin in run.attrs.get("plugins") or []:
                print(f"# {run.name}: {plugin.get('key')} = {plugin.get('name')} is a plug-in "
                      f"({plugin.get('module')} {plugin.get('version')}, {plugin.get('source')})")
        if damaged:
            print("\n".join(damaged))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Run ``mpigc merge``: one line naming how many runs went where; exit 1 if the write fails."""
    from mpigc import results
    from mpigc.results.merge import merge_files

    results.check_writable(args.out)
    try:
        names = merge_files(args.out, args.inputs)
    except results.ResultWriteError as error:
        print(f"mpigc: error: {error}", file=sys.stderr)
        return 1
    print(f"# merged {len(names)} run(s) from {len(args.inputs)} file(s) into {args.out}")
    return 0


def _run_stats(run) -> dict:
    """Return a stored run's summary: its rounds' statistics, loop time per round, and ``interrupted``."""
    from mpigc import report

    target = run.attrs.get("target_loss")  # time to accuracy (run.target_loss), recorded by both backends
    stats = report.summarize(run.tables["rounds"], float(target) if target not in (None, "") else None)
    stats["loop"] = report.loop_time(run.attrs, int(stats["rounds"]))
    if run.attrs.get("interrupted"):
        stats["interrupted"] = str(run.attrs["interrupted"])
    return stats


def cmd_schemes(args: argparse.Namespace) -> int:
    """Run ``mpigc schemes``: every scheme, where it came from, its keys; then other plug-ins installed."""
    from mpigc.codes import SCHEMES
    from mpigc.delays import MODELS
    from mpigc.workloads import WORKLOADS

    for name in args.plugins:  # bad plug-ins given by hand are bad input (exit 2), before any output
        SCHEMES.lookup(name, "schemes")
    names = [*SCHEMES.names(), *args.plugins]
    width = max(map(len, names))
    for name in names:
        print(_describe_entry(SCHEMES, name, width, keys=True))
    for registry in (MODELS, WORKLOADS):
        extra = [n for n in registry.names() if n not in registry.entries or _origin_of(registry, n) != "built-in"]
        if extra:
            print(f"\n{registry.kind} plug-ins ({registry.key}):")
            for name in extra:
                print(_describe_entry(registry, name, max(map(len, extra)), keys=False))
    return 0


def _origin_of(registry, name: str) -> str:
    """``built-in``, or the plug-in's description, or why it does not load."""
    try:
        return registry.origin(name).describe()
    except InputError as error:
        return f"does not load: {error.problem}"


def _describe_entry(registry, name: str, width: int, keys: bool) -> str:
    """Return ``name  first doc line`` and, below it, its keys and (for a plug-in) where it came from."""
    origin = _origin_of(registry, name)
    cls = registry.lookup(name) if not origin.startswith("does not load") else None
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls is not None and cls.__doc__ else ""
    lines = [f"{name:<{width}}  {doc}"]
    if keys and cls is not None and getattr(cls, "config_keys", ()):
        lines.append(f"{'':<{width}}  keys: {', '.join(cls.config_keys)}")
    if origin != "built-in":
        lines.append(f"{'':<{width}}  from: {origin}")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    """Run ``mpigc check``: the conformance kit (:mod:`mpigc.testing`) on one scheme."""
    from mpigc.testing import run_kit

    return run_kit(args.scheme, overrides=args.overrides, mpi=args.mpi, seeds=args.seeds)


def cmd_tune(args: argparse.Namespace) -> int:
    """Run ``mpigc tune``."""
    from mpigc import results
    from mpigc.core.inputs import load_trace
    from mpigc.sim.tune import format_choices, run_choices, tune

    slope = _tune_slope(args)
    if args.jobs < 1 or args.workers < 2 or args.mu < 0:
        raise InputError("tune", "need --jobs >= 1, --workers >= 2 and --mu >= 0")
    lam_max = min(63, args.workers - 1) if args.lambda_max is None else args.lambda_max
    if not 1 <= lam_max < args.workers:
        raise InputError("tune", f"need 1 <= --lambda-max < --workers ({args.workers}), got {lam_max}")
    values = load_trace(args.trace)
    if args.out:
        results.check_writable(args.out)
    choices = tune(values, args.jobs, args.mu, slope, args.workers, max_lam=lam_max)
    sims = run_choices(args.trace, choices, args.jobs, args.mu, slope, args.workers, args.out) if args.out else None
    how = " (fitted)" if args.slope == "fit" else ""
    print(f"# mpigc tune: {args.trace}, J = {args.jobs}, mu = {args.mu:g}, slope = {slope:.6g} s{how}, "
          f"m = {args.workers}, lambda <= {lam_max}")
    print(format_choices(args.trace.rsplit("/", 1)[-1], choices, sims))
    if args.out:
        print(f"# wrote {len(sims)} run(s) to {args.out}")
    return 0


def _tune_slope(args: argparse.Namespace) -> float:
    """``--slope``: a number ≥ 0, or ``fit`` (from the trace's loaded siblings)."""
    if args.slope == "fit":
        from mpigc.delays.slope import fitted_slope

        return fitted_slope(args.trace)
    try:
        slope = float(args.slope)
    except ValueError:
        raise InputError("tune", f"--slope must be a number or 'fit', got {args.slope!r}") from None
    if not slope >= 0:
        raise InputError("tune", f"--slope must be >= 0, got {args.slope}")
    return slope


def cmd_viz(args: argparse.Namespace) -> int:
    """Run ``mpigc plot`` or ``mpigc timeline`` (:mod:`mpigc.viz.commands`)."""
    from mpigc.viz.commands import run

    return run(args)


def _trace(args: argparse.Namespace) -> int:
    from mpigc import tracecmd

    return tracecmd.main(args)


COMMANDS = {"simulate": cmd_simulate, "validate": cmd_validate, "plan": cmd_plan, "info": cmd_info, "merge": cmd_merge,
            "schemes": cmd_schemes, "tune": cmd_tune, "check": cmd_check, "plot": cmd_viz, "timeline": cmd_viz,
            "trace": _trace}
