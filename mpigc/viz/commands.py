"""The ``plot`` and ``timeline`` subcommands: their arguments and what they print."""
from __future__ import annotations

import argparse
import sys
import time

from mpigc.errors import InputError

PLOT_DESCRIPTION = """\
Draw every healthy run of a result file: latency distribution (ECDF, median and
p95), latency and status per round with loss against run time, busy time per
worker and round (detail "workers"/"full"), messages per round (detail "full"),
job completion (sequential schemes). One file per figure and format, named after
the run, and an index.html listing them with each run's parameters (opens
offline). Damaged runs are named on a warning line and skipped; runs of a
running job are drawn as far as written. Needs matplotlib (the analysis extra)."""

TIMELINE_DESCRIPTION = """\
Write one run (detail "full") as Chrome trace-event JSON, for ui.perfetto.dev or
chrome://tracing: a thread per worker with a slice per message (chunk or coded
result), rank 0's wait and decode per round, arrows from each message used to
its round's decode, STOP marks and a messages-per-round counter. Times are µs
from the run's start (virtual time for simulated runs). Worker slices are
rebuilt from arrival times at rank 0; docs/plotting.md says how."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``plot`` and ``timeline`` to the ``mpigc`` subcommands."""
    p = sub.add_parser("plot", help="figures of every run in a result file, and an index.html",
                       description=PLOT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example: mpigc plot results.h5 --out figures/ --format png,pdf")
    p.add_argument("file", metavar="FILE.h5", help="HDF5 result file")
    p.add_argument("--runs", nargs="+", metavar="NAME", help="draw only these runs (default: every run)")
    p.add_argument("--out", metavar="DIR", default="mpigc-plots",
                   help="directory for the figures and index.html; created if missing (default: %(default)s)")
    p.add_argument("--format", default="png", metavar="png,pdf",
                   help="comma-separated formats: png, pdf or png,pdf (default: %(default)s)")
    t = sub.add_parser("timeline", help="one run as Chrome trace-event JSON (open in ui.perfetto.dev)",
                       description=TIMELINE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example: mpigc timeline results.h5 --run partial --rounds 0:50 --out partial.json.gz")
    t.add_argument("file", metavar="FILE.h5", help="HDF5 result file")
    t.add_argument("--run", required=True, metavar="NAME", help="the run (see mpigc info FILE.h5)")
    t.add_argument("--rounds", metavar="A:B",
                   help="rounds A to B - 1 only (either end may be left out; default: all, "
                        "up to 200000 messages)")
    t.add_argument("--out", required=True, metavar="RUN.json[.gz]",
                   help="output file; gzip-compressed if it ends in .gz (Perfetto opens both)")


def run(args: argparse.Namespace) -> int:
    """Run ``mpigc plot`` or ``mpigc timeline``; InputError for bad input (exit 2 in :func:`mpigc.cli.main`)."""
    return cmd_plot(args) if args.command == "plot" else cmd_timeline(args)


def cmd_plot(args: argparse.Namespace) -> int:
    """``mpigc plot``: draw, then one line per figure written and where the index is."""
    from mpigc.viz.plot import make_plots
    from mpigc.viz.style import parse_formats

    formats = parse_formats(args.format)
    began = time.perf_counter()
    result = make_plots(args.file, args.runs, args.out, formats)
    for fig in result.figures:
        print(f"{args.out.rstrip('/')}/{fig.files[0]}" + (f" (+{len(fig.files) - 1})" if len(fig.files) > 1 else ""))
    print(f"# {len(result.figures)} figure(s) of {len(result.runs)} run(s) in {time.perf_counter() - began:.1f} s; "
          f"open {result.index}")
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    """``mpigc timeline``: one run, the rounds asked for, as trace-event JSON."""
    from pathlib import Path

    from mpigc.viz.runs import load_runs
    from mpigc.viz.timeline import build_trace, check_size, parse_rounds, write_trace

    out = Path(args.out)
    if not out.name.endswith((".json", ".json.gz")):
        raise InputError("--out", f"expected a file ending in .json or .json.gz, got {args.out!r}")
    if not out.parent.is_dir():
        raise InputError("--out", f"directory {out.parent} does not exist")
    loaded = load_runs(args.file, [args.run])
    if not loaded.runs:
        reason = "; ".join(d.reason for d in loaded.damaged) or "unreadable"
        raise InputError("--run", f"run {args.run!r} is damaged ({reason})")
    run_ = loaded.runs[0]
    if "events" not in run_.tables:
        raise InputError("--run", f"run {args.run!r} has no events table (detail {run_.detail!r}); a timeline needs "
                                  "run.detail = \"full\" (the default of mpigc run; simulated sequential "
                                  "schemes record no messages)")
    numbers = run_.tables["rounds"]["round"]
    first, stop = (int(numbers.min()), int(numbers.max()) + 1) if numbers.size else (0, 0)
    lo, hi = parse_rounds(args.rounds, first, stop)
    count = check_size(run_, lo, hi)
    path = write_trace(build_trace(run_, lo, hi, source=str(args.file)), out)
    print(f"# wrote {path}: run {run_.name!r}, rounds {lo}:{hi}, {count} messages, {run_.clock}; "
          "open it in https://ui.perfetto.dev", file=sys.stdout)
    return 0
