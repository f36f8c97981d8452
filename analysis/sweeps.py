"""The simulator sweeps behind F1–F6: one list of ``--set`` overrides per point, per figure.

Each sweep runs its config from ``jobs/configs/`` once per point, in process
(``mpigc.config.load_config`` + ``mpigc.sim.driver.simulate``), into one HDF5
file; the same points can be run by hand with ``python -m mpigc simulate
CONFIG --set ...`` (``--print`` of ``make_figures.py`` lists those commands).
The file is written under a temporary name and renamed when complete, so a
killed campaign never leaves a half-filled file that looks finished.

Every file a campaign makes records the settings it was made with (rounds,
``--quick``, the points, the config file's text, the mpigc version) as the
JSON root attribute :data:`SETTINGS_ATTR`. :func:`reusable` reuses a file
only if its recorded settings equal the campaign's; any other file (made
with other settings, or before settings were recorded) is moved aside to
``NAME.old`` and made again, so a ``--quick`` smoke test's 300-round files
never stand in for a full campaign's.
"""
from __future__ import annotations

import io
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "jobs" / "configs"

ABLATION = '{scheme="partial", use_partial=false, name="ablation"}'
ASSIGNMENTS = ("cyclic", "graph:circulant", "graph:random-regular")
DEADLINES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
F3_DEADLINES = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
SEQUENTIAL = ("gc-seq", "sr-sgc", "m-sgc")


@dataclass
class Sweep:
    """A figure's simulator sweep: config, result file name, rounds and points."""

    figure: str
    config: Path
    output: str
    rounds: int
    quick_rounds: int
    points: Callable[[bool], list[list[str]]]
    needs: tuple[str, ...] = ()

    def commands(self, out: Path, quick: bool, rounds: int | None = None) -> list[str]:
        """The equivalent ``python -m mpigc simulate`` command of every point."""
        rounds = rounds or (self.quick_rounds if quick else self.rounds)
        cfg = self.config.relative_to(ROOT) if self.config.is_relative_to(ROOT) else self.config
        return [" ".join(["python -m mpigc simulate", str(cfg), *(f"--set {shlex.quote(o)}" for o in
                          [f"run.rounds={rounds}", *p]), "--out", str(out)]) for p in self.points(quick)]


def _scheme(*entries: str) -> str:
    return f"code.scheme=[{', '.join(entries)}]"


def f1_points(quick: bool) -> list[list[str]]:
    """assignment × l = 1..4: partial, ablation; on cyclic also poly, and crc at l = 1."""
    out = []
    for a in ASSIGNMENTS:
        for l in (1, 2, 3, 4):
            entries = ['"partial"', ABLATION]
            if a == "cyclic":
                entries += ['"crc"'] if l == 1 else []
                entries += ['"poly"']
            out.append([f'code.assignment="{a}"', f"code.parts={l}", _scheme(*entries)])
    return out


def f2_points(quick: bool) -> list[list[str]]:
    """l = 1, 2, 3 × deadline T: partial vs crc (l = 1) or poly (l ≥ 2)."""
    grid = DEADLINES[::2] + (4.0,) if quick else DEADLINES
    return [[f"code.parts={l}", f"code.deadline={t}", _scheme('"partial"', '"crc"' if l == 1 else '"poly"')]
            for l in (1, 2, 3) for t in sorted(set(grid))]


def f3_points(quick: bool) -> list[list[str]]:
    """G1, G2 × (exact, l = 1..4) and (approx, l = 1..3 × T); optimal vs random ordering."""
    out = []
    grid = (1.0, 4.0, 8.0) if quick else F3_DEADLINES
    for a in ASSIGNMENTS[1:]:
        out += [[f'code.assignment="{a}"', f"code.parts={l}"] for l in (1, 2, 3, 4)]
        out += [[f'code.assignment="{a}"', f"code.parts={l}", 'code.decode="approx"', f"code.deadline={t}"]
                for l in (1, 2, 3) for t in grid]
    return out


def f4_points(quick: bool) -> list[list[str]]:
    """m = 8..48 (step 4; quick: step 8) × l = 1, 2, with 10 samples per chunk."""
    ms = range(8, 49, 8 if quick else 4)
    return [[f"code.workers={m}", f"code.parts={l}", f"workload.samples={10 * m}"] for l in (1, 2) for m in ms]


def f5_points(quick: bool) -> list[list[str]]:
    """fail_count = 0..8 on f5-nested.toml (m = 16, nested on the ladder 0, 1, 3, 7, frc at each s)."""
    return [[f"delays.fail_count={k}"] for k in range(0, 9)]


def lambda_traces() -> list[Path]:
    """Every load-0 AWS Lambda trace under ``$MPIGC_TRACE_DIR`` (docs/data.md)."""
    from mpigc.delays.lambda_traces import trace_dir
    return sorted(trace_dir().glob("*load0.00*.csv"))


SWEEPS = {
    "F1": Sweep("F1", CONFIGS / "f1-exact.toml", "f1-exact.h5", 2000, 300, f1_points),
    "F2": Sweep("F2", CONFIGS / "f2-approx.toml", "f2-approx.h5", 1000, 200, f2_points),
    "F3": Sweep("F3", CONFIGS / "f3-ordering.toml", "f3-ordering.h5", 1000, 200, f3_points),
    "F4": Sweep("F4", CONFIGS / "f4-poly.toml", "f4-poly.h5", 30, 10, f4_points),
    "F5": Sweep("F5", CONFIGS / "f5-nested.toml", "f5-nested.h5", 1000, 200, f5_points,
                needs=("nested", "frc")),
}


class SweepError(Exception):
    """A sweep cannot run here (missing scheme, config or data); the message says why."""


#: root attribute of a campaign's result file: the settings it was made with (JSON)
SETTINGS_ATTR = "mpigc_sweep"


def settings(figure: str, quick: bool, **more: object) -> dict:
    """A campaign file's settings: figure, quick flag, mpigc version and ``more`` (JSON-normalised)."""
    from mpigc import __version__

    return json.loads(json.dumps({"figure": figure, "quick": bool(quick), "mpigc_version": __version__, **more},
                                 sort_keys=True))


def sweep_settings(sweep: Sweep, quick: bool, rounds: int | None = None) -> dict:
    """The settings of ``sweep``'s file: rounds, points and the config file's text."""
    config = sweep.config.read_text(encoding="utf-8") if sweep.config.exists() else None
    return settings(sweep.figure, quick, rounds=rounds or (sweep.quick_rounds if quick else sweep.rounds),
                    points=sweep.points(quick), config=config)


def reusable(path: Path, wanted: dict, log: TextIO = sys.stdout) -> bool:
    """Whether ``path`` exists and was made with the settings ``wanted``.

    A file made with other settings (or recording none) is moved aside to
    ``NAME.old`` (replacing an earlier one), with one line saying which
    settings differ, and False is returned: the caller makes it again.
    """
    from mpigc import results
    from mpigc.errors import InputError

    if not path.exists():
        return False
    try:
        stored = results.file_attr(path, SETTINGS_ATTR)
    except InputError:
        stored = None
    if stored == wanted:
        return True
    differ = (sorted(k for k in set(wanted) | set(stored) if stored.get(k) != wanted.get(k))
              if isinstance(stored, dict) else ["no settings recorded"])
    old = path.with_name(path.name + ".old")
    path.replace(old)
    print(f"  {path.name} was made with other settings ({', '.join(differ)}): making it again "
          f"(the old file is now {old.name})", file=log, flush=True)
    return False


def stamp(path: Path, wanted: dict) -> None:
    """Record ``wanted`` as the settings of the campaign file ``path``."""
    from mpigc import results

    results.set_file_attr(path, SETTINGS_ATTR, wanted)


def missing_schemes(names: tuple[str, ...]) -> list[str]:
    """The schemes of ``names`` this mpigc does not provide."""
    from mpigc.codes import SCHEMES, scheme_class

    scheme_class("partial")          # imports every scheme module
    return [n for n in names if n not in SCHEMES]


def run_sweep(sweep: Sweep, out: Path, quick: bool, log: TextIO = sys.stdout, rounds: int | None = None) -> Path:
    """Run every point of ``sweep`` into ``out`` (temporary name, stamped with its settings, renamed at the end).

    ``rounds`` replaces the sweep's own rounds per point (a smaller smoke test).
    """
    from mpigc.config import load_config
    from mpigc.errors import InputError
    from mpigc.sim.driver import simulate

    missing = missing_schemes(sweep.needs)
    if missing:
        raise SweepError(f"{sweep.figure} needs the scheme(s) {', '.join(missing)}, which this mpigc does not "
                         "provide yet (see `python -m mpigc schemes`)")
    if not sweep.config.exists():
        raise SweepError(f"{sweep.figure}: config {sweep.config} is missing")
    wanted = sweep_settings(sweep, quick, rounds)
    rounds = wanted["rounds"]
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    points = sweep.points(quick)
    start = time.perf_counter()
    for i, point in enumerate(points, 1):
        t0 = time.perf_counter()
        try:
            config = load_config(str(sweep.config), [f"run.rounds={rounds}", *point])
            simulate(config, str(tmp), log=io.StringIO())
        except InputError as error:
            raise SweepError(f"{sweep.figure} point {json.dumps(point)}: {error}") from None
        shown = " ".join(p for p in point if not p.startswith("code.scheme"))
        print(f"  {sweep.figure} [{i:>2}/{len(points)}] {shown}  ({time.perf_counter() - t0:.1f} s)",
              file=log, flush=True)
    stamp(tmp, wanted)
    tmp.replace(out)
    print(f"  {sweep.figure}: {len(points)} points x {rounds} rounds in {time.perf_counter() - start:.1f} s -> {out}",
          file=log, flush=True)
    return out


def f6_settings(quick: bool) -> dict:
    """The settings of F6's file: jobs, the traces tuned on and f6-sequential.toml's text."""
    traces = lambda_traces()[:1] if quick else lambda_traces()
    config = CONFIGS / "f6-sequential.toml"
    return settings("F6", quick, jobs=100 if quick else 496, traces=[t.name for t in traces],
                    config=config.read_text(encoding="utf-8") if config.exists() else None)


def run_f6(out: Path, quick: bool, log: TextIO = sys.stdout) -> Path:
    """F6: P3's grid search + J = 496 jobs on every load-0 Lambda trace (256 workers), then f6-sequential.toml."""
    from mpigc.config import load_config
    from mpigc.core.inputs import load_trace
    from mpigc.delays.lambda_traces import trace_dir
    from mpigc.sim.driver import simulate
    from mpigc.sim.tune import run_choices, tune

    missing = missing_schemes((*SEQUENTIAL, "uncoded"))
    if missing:
        raise SweepError(f"F6 needs the scheme(s) {', '.join(missing)}, which this mpigc does not provide yet "
                         "(see `python -m mpigc schemes`)")
    traces = lambda_traces()[:1] if quick else lambda_traces()
    if not traces:
        raise SweepError(f"F6: no load-0 Lambda traces under {trace_dir()} (set MPIGC_TRACE_DIR)")
    jobs = 100 if quick else 496
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    for i, trace in enumerate(traces, 1):
        t0 = time.perf_counter()
        choices = tune(load_trace(str(trace)), jobs, 1.0, 2.2, 256)
        run_choices(str(trace), choices, jobs, 1.0, 2.2, 256, str(tmp))
        print(f"  F6 [{i}/{len(traces) + 1}] {trace.name}: tuned and ran {jobs} jobs, 256 workers "
              f"({time.perf_counter() - t0:.1f} s)", file=log, flush=True)
    t0 = time.perf_counter()
    config = load_config(str(CONFIGS / "f6-sequential.toml"), [f"run.rounds={jobs}"])
    simulate(config, str(tmp), log=io.StringIO())
    print(f"  F6 [{len(traces) + 1}/{len(traces) + 1}] gilbert-elliott (f6-sequential.toml, verified) "
          f"({time.perf_counter() - t0:.1f} s)", file=log, flush=True)
    stamp(tmp, f6_settings(quick))
    tmp.replace(out)
    return out
