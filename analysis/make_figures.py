"""Regenerate every figure (F1–F9, F11) from scratch: run the missing sweeps, then draw.

    python analysis/make_figures.py --out figures/ [--results DIR] [--quick] [--only F1 F3 ...]
    python -m analysis.make_figures ...      # the same, from the repository root

F1–F6 come from simulator sweeps (``analysis/sweeps.py``, configs under
``jobs/configs/``), F4(a) from ``analysis/lagrange_sweep.py``, F7 from a small
MPI job launched here (``mpiexec -n 9 python -m mpigc run`` on
``jobs/configs/f7-fidelity.toml`` with 8 workers) plus the matching
``simulate``, F8 from one simulation of ``jobs/configs/f8-time-to-accuracy.toml``
on the committed digits dataset (``analysis/fig8_time_to_accuracy.py``), F9
from ``mpiexec -n 9 python -m mpigc probe --network``, one MPI job per
gradient length d on ``jobs/configs/f9-network.toml`` and the simulator with
the probed ``[network]`` table (``analysis/fig9_network.py``),
F11 from a fit to a Lambda trace (``analysis/fig11_trace_fit.py``).
Result files go to ``--results`` (default ``OUT/results``). Each records
the settings it was made with (rounds, ``--quick``, points, config text,
mpigc version); a file that exists is reused only if its settings are
this invocation's, and is otherwise moved aside to ``NAME.old`` and made
again (delete a file to rerun its sweep anyway). Every figure is
drawn from HDF5 alone by ``analysis/figN_*.py``. Exit code 0 when every
figure was drawn and every checked claim holds; 1 otherwise, with one line
per problem (a missing scheme, a result file lacking a table or run, a claim
not met; claims only warn under ``--quick``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run by path (python analysis/make_figures.py): the repo root makes the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import common, lagrange_sweep, sweeps  # noqa: E402

F7_CONFIG = sweeps.CONFIGS / "f7-fidelity.toml"


@dataclass
class Figure:
    """A figure: its drawing module and the result files it reads."""

    key: str
    module: str
    inputs: list[str]
    summary: dict = field(default_factory=dict)


FIGURES = [
    Figure("F1", "fig1_exact_latency", ["f1-exact.h5"]),
    Figure("F2", "fig2_approx_error", ["f2-approx.h5"]),
    Figure("F3", "fig3_ordering", ["f3-ordering.h5"]),
    Figure("F4", "fig4_poly_instability", ["f4-lagrange.h5", "f4-poly.h5"]),
    Figure("F5", "fig5_nested", ["f5-nested.h5"]),
    Figure("F6", "fig6_sequential", ["f6-sequential.h5"]),
    Figure("F7", "fig7_fidelity", ["f7-mpi.h5", "f7-sim.h5"]),
    Figure("F8", "fig8_time_to_accuracy", ["f8-time-to-accuracy.h5"]),
    Figure("F9", "fig9_network", ["f9-mpi.h5", "f9-sim.h5"]),
    Figure("F11", "fig11_trace_fit", ["f11-trace-fit.h5"]),
]


def log(text: str) -> None:
    """Print a progress line immediately."""
    print(text, flush=True)


def f7_overrides(quick: bool) -> tuple[Path, list[str]]:
    """The F7 config and overrides: 8 workers (mpiexec -n 9), few rounds."""
    return F7_CONFIG, ["code.workers=8", f"run.rounds={12 if quick else 40}"]


def f7_settings(quick: bool, backend: str) -> dict:
    """The settings of one F7 file: backend, overrides and the config's text."""
    config, overrides = f7_overrides(quick)
    return sweeps.settings("F7", quick, backend=backend, overrides=overrides,
                           config=config.read_text(encoding="utf-8") if config.exists() else None)


def make_f7(results: Path, quick: bool, mpiexec: str) -> None:
    """Run the F7 MPI job (mpiexec -n 9) and the matching simulation on the same seed."""
    from mpigc.config import load_config
    from mpigc.sim.driver import simulate

    config, overrides = f7_overrides(quick)
    sets = [x for o in overrides for x in ("--set", o)]
    mpi_out, sim_out = results / "f7-mpi.h5", results / "f7-sim.h5"
    if not sweeps.reusable(mpi_out, f7_settings(quick, "mpi")):
        tmp = mpi_out.with_name(mpi_out.name + ".partial")
        tmp.unlink(missing_ok=True)
        cmd = [*shlex.split(mpiexec), "-n", "9", sys.executable, "-m", "mpigc", "run", str(config), *sets,
               "--out", str(tmp)]
        log(f"  F7 launching: {' '.join(shlex.quote(c) for c in cmd)}")
        t0 = time.perf_counter()
        env = {**os.environ, "MPIEXEC_TIMEOUT": os.environ.get("MPIEXEC_TIMEOUT", "600")}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise sweeps.SweepError(f"F7: the MPI job failed (exit {proc.returncode}): {tail}")
        sweeps.stamp(tmp, f7_settings(quick, "mpi"))
        tmp.replace(mpi_out)
        log(f"  F7: MPI run done in {time.perf_counter() - t0:.1f} s -> {mpi_out}")
    if not sweeps.reusable(sim_out, f7_settings(quick, "sim")):
        tmp = sim_out.with_name(sim_out.name + ".partial")
        tmp.unlink(missing_ok=True)
        import io

        simulate(load_config(str(config), overrides), str(tmp), log=io.StringIO())
        sweeps.stamp(tmp, f7_settings(quick, "sim"))
        tmp.replace(sim_out)
        log(f"  F7: matching simulation -> {sim_out}")


def ensure_inputs(fig: Figure, results: Path, quick: bool, mpiexec: str, rounds: int | None = None) -> list[str]:
    """Create the figure's result files that are missing or were made with other settings; return their paths."""
    paths = [results / name for name in fig.inputs]
    if fig.key == "F7":
        make_f7(results, quick, mpiexec)
    elif fig.key == "F4":
        trials = 20 if quick else 100
        wanted = sweeps.settings("F4a", quick, trials=trials, degrees=[20, 25, 30])
        if not sweeps.reusable(paths[0], wanted):
            tmp = paths[0].with_name(paths[0].name + ".partial")
            tmp.unlink(missing_ok=True)
            t0 = time.perf_counter()
            lagrange_sweep.run(str(tmp), trials=trials, log=sys.stdout)
            sweeps.stamp(tmp, wanted)
            tmp.replace(paths[0])
            log(f"  F4: Lagrange sweep in {time.perf_counter() - t0:.1f} s -> {paths[0]}")
    if fig.key == "F6" and not sweeps.reusable(paths[0], sweeps.f6_settings(quick)):
        sweeps.run_f6(paths[0], quick)
    if fig.key == "F9":
        from analysis import fig9_network as f9

        f9.make(results, quick, mpiexec)
    if fig.key == "F8":
        from analysis import fig8_time_to_accuracy as f8

        if not sweeps.reusable(paths[0], f8.settings(quick)):
            f8.make(paths[0], quick)
    if fig.key == "F11":
        from analysis import fig11_trace_fit as f11

        if not f11.current(paths[0], quick):
            f11.make(paths[0], quick)
    if fig.key in sweeps.SWEEPS:
        sweep, target = sweeps.SWEEPS[fig.key], paths[-1]
        if not sweeps.reusable(target, sweeps.sweep_settings(sweep, quick, rounds)):
            sweeps.run_sweep(sweep, target, quick, rounds=rounds)
        else:
            log(f"  {fig.key}: reusing {target} (made with these settings)")
    return [str(p) for p in paths]


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, metavar="DIR", help="figure directory (PNG and PDF)")
    p.add_argument("--results", metavar="DIR", help="result files (default: OUT/results); existing files are reused")
    p.add_argument("--quick", action="store_true", help="fewer rounds and points (a smoke test; claims only warn)")
    p.add_argument("--rounds", type=int, metavar="N",
                   help="simulator rounds per point of F1-F5 instead of each sweep's own (claims only warn)")
    p.add_argument("--only", nargs="+", metavar="FN", help="figures to make, e.g. --only F1 F2 (default: all)")
    p.add_argument("--mpiexec", default=os.environ.get("MPIEXEC", "mpiexec"), help="MPI launcher for F7 and F9")
    p.add_argument("--print-commands", action="store_true", help="print the equivalent mpigc commands and exit")
    args = p.parse_args(argv)
    out = Path(args.out)
    results = Path(args.results) if args.results else out / "results"
    wanted = {k.upper() for k in args.only} if args.only else {f.key for f in FIGURES}
    unknown = wanted - {f.key for f in FIGURES}
    if unknown:
        p.error(f"unknown figure(s) {', '.join(sorted(unknown))}; known: F1..F9, F11")
    if args.rounds is not None and args.rounds < 1:
        p.error(f"--rounds must be a positive integer, got {args.rounds}")
    if args.print_commands:
        for key, sweep in sweeps.SWEEPS.items():
            if key in wanted:
                print("\n".join(sweep.commands(results / sweep.output, args.quick, args.rounds)))
        return 0
    problems: list[str] = []
    timings: list[tuple[str, float, str]] = []
    start = time.perf_counter()
    for fig in FIGURES:
        if fig.key not in wanted:
            continue
        log(f"== {fig.key} ({fig.module})")
        t0 = time.perf_counter()
        try:
            files = ensure_inputs(fig, results, args.quick, args.mpiexec, args.rounds)
            module = importlib.import_module(f"analysis.{fig.module}")
            result = module.main(files, str(out))
        except (common.FigureDataError, sweeps.SweepError) as error:
            problems.append(f"{fig.key}: {error}")
            log(f"  {fig.key} FAILED: {error}")
            timings.append((fig.key, time.perf_counter() - t0, "failed"))
            continue
        log(common.report_lines(result))
        bad = [c for c in result.get("claims", []) if not c["ok"]]
        problems += [f"{fig.key}: claim not met: {c['claim']} (measured {c['value']:.4g})" for c in bad
                     if not (args.quick or args.rounds)]
        timings.append((fig.key, time.perf_counter() - t0, "ok" if not bad else "claim not met"))
    log(f"== done in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{k} {t:.1f} s ({s})" for k, t, s in timings))
    for problem in problems:
        print(f"make_figures: error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
