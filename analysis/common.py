"""Shared helpers of the figure scripts: loading runs, grouping, statistics, plotting, saving.

Every figure script reads HDF5 result files through :mod:`mpigc.results` only
(:func:`load_runs`), groups runs by their attributes and by keys of the
resolved config stored with each run (``attrs["config"]``, TOML text), draws
mean ± standard deviation and writes PNG and PDF (:func:`save`) with a caption
line naming backend, rounds and straggler model (:func:`caption`). A result
file that lacks what a figure needs raises :class:`FigureDataError`, which
:func:`figure_cli` turns into one clear line and exit code 2.

matplotlib is an optional extra (``pip install -e '.[analysis]'``); it is
imported lazily by :func:`pyplot`, with the Agg backend.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mpigc import results
from mpigc.errors import InputError

#: log-axis floor for exact zeros (e.g. coef_error of rounds that decoded exactly)
LOG_FLOOR = 1e-18
#: colours per role, so the same scheme looks the same in every figure
COLORS = {"partial": "C0", "ablation": "C1", "crc": "C3", "poly": "C2", "optimal": "C0", "random": "C1",
          "nested": "C0", "frc": "C7", "m-sgc": "C0", "sr-sgc": "C2", "gc-seq": "C3", "uncoded": "C7",
          "mpi": "C0", "sim": "C1"}


class FigureDataError(Exception):
    """A result file lacks a table, run or config key a figure needs."""


# ----------------------------------------------------------------------------- loading

@dataclass
class Run:
    """One run read from a result file, with its config parsed.

    Attributes
    ----------
    file, name, attrs, tables : as read by :func:`mpigc.results.read_runs`.
    config : dict
        The resolved config (``attrs["config"]`` parsed with tomllib).
    code : dict
        This run's ``[code]`` entry: the base table with its scheme entry's
        inline overrides applied (``scheme`` is the entry's scheme name).
    """

    file: str
    name: str
    attrs: dict
    tables: dict[str, np.ndarray]
    config: dict = field(repr=False)
    code: dict = field(repr=False)

    @property
    def scheme(self) -> str:
        """Scheme name (``attrs["scheme"]``)."""
        return str(self.attrs.get("scheme", self.code.get("scheme", "?")))

    @property
    def entry(self) -> str:
        """Entry label: the entry's ``name`` or its scheme."""
        return str(self.attrs.get("entry") or self.code.get("name") or self.scheme)

    @property
    def backend(self) -> str:
        """``"sim"`` or ``"mpi"``."""
        return str(self.attrs.get("backend", "?"))

    def key(self, dotted: str, default: Any = None) -> Any:
        """Config value ``table.key``; ``code.*`` keys are this run's entry's."""
        table, _, name = dotted.partition(".")
        source = self.code if table == "code" else self.config.get(table, {})
        return source.get(name, default)

    def table(self, name: str) -> np.ndarray:
        """The table ``name``; :class:`FigureDataError` naming file and run if missing."""
        if name not in self.tables:
            raise FigureDataError(f"{self.file}: run {self.name!r} has no {name!r} table "
                                  f"(tables: {', '.join(self.tables) or 'none'})")
        return self.tables[name]


def entry_code(config: dict, entry: str | None) -> dict:
    """Resolve the ``[code]`` entry labelled ``entry`` of a parsed config."""
    code = dict(config.get("code", {}))
    schemes = code.pop("scheme", "partial")
    if not isinstance(schemes, list):
        return {**code, "scheme": schemes}
    items = [{"scheme": s} if isinstance(s, str) else dict(s) for s in schemes]
    for item in items:
        if entry is not None and (item.get("name") or item["scheme"]) == entry:
            return {**code, **item}
    return {**code, **items[0]}


def load_runs(files: Iterable[str | os.PathLike], warn: TextIO | None = None) -> list[Run]:
    """Read every healthy run of every file (in order) and parse its config.

    A damaged run (see :func:`mpigc.results.scan_runs`: a mistyped or
    foreign table, unreadable attributes, a foreign group under ``/runs``,
    a corrupt chunk) or one whose stored config is not TOML is skipped with
    one ``warning: FILE: run NAME is damaged (reason); skipped`` line on
    ``warn`` (default stderr): it never hides the healthy runs. A run
    without a table is not damaged here (F4's Lagrange runs hold attributes
    only); :meth:`Run.table` names it if a figure needs the table.

    Raises
    ------
    FigureDataError
        If a file is missing, unreadable as a whole or not an mpigc result file.
    """
    out: list[Run] = []
    warn = sys.stderr if warn is None else warn
    for path in files:
        try:
            scan = results.scan_runs(path, require=())   # Lagrange runs (F4) hold attributes only
        except InputError as error:
            raise FigureDataError(str(error)) from None
        skipped = list(scan.damaged)
        for run in scan.runs:
            text = run.attrs.get("config")
            config: dict = {}
            if isinstance(text, str) and text:
                try:
                    config = tomllib.loads(text)
                except tomllib.TOMLDecodeError as error:
                    skipped.append(results.DamagedRun(run.name, f"config is not valid TOML: {error}"))
                    continue
            code = entry_code(config, run.attrs.get("entry")) if config else {}
            out.append(Run(os.fspath(path), run.name, run.attrs, run.tables, config, code))
        for damaged in skipped:
            print(f"warning: {os.fspath(path)}: run {damaged.name!r} is damaged ({damaged.reason}); skipped",
                  file=warn, flush=True)
    return out


def select(runs: Sequence[Run], what: str, files: Sequence[str] = (), **where: Any) -> list[Run]:
    """Runs whose config keys (``code__parts=2`` means ``code.parts``) or attrs match ``where``.

    Raises :class:`FigureDataError` (naming ``what`` and the files) if none match.
    """
    def ok(run: Run) -> bool:
        for k, v in where.items():
            got = run.key(k.replace("__", ".")) if "__" in k else run.attrs.get(k, getattr(run, k, None))
            if callable(v) and not isinstance(v, type):
                if not v(got):
                    return False
            elif got != v:
                return False
        return True

    found = [r for r in runs if ok(r)]
    if not found:
        where_text = ", ".join(f"{k.replace('__', '.')}={v!r}" for k, v in where.items() if not callable(v))
        raise FigureDataError(f"{', '.join(map(str, files)) or 'the result files'}: no run for {what}"
                              + (f" ({where_text})" if where_text else ""))
    return found


def group_by(runs: Iterable[Run], *keys: str | Callable[[Run], Any]) -> dict[tuple, list[Run]]:
    """Group runs by config keys (``"code.parts"``), attrs (``"scheme"``) or callables, in first-seen order."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        k = tuple(key(run) if callable(key)
                  else (run.key(key) if "." in key else run.attrs.get(key, getattr(run, key, None)))
                  for key in keys)
        groups.setdefault(k, []).append(run)
    return groups


def common_exact(runs: Sequence[Run]) -> np.ndarray:
    """Bool mask of the rounds every run decoded exactly (status 0); runs must have equal lengths."""
    tables = [r.table("rounds") for r in runs]
    n = min(t.size for t in tables)
    if any(t.size != n for t in tables):
        raise FigureDataError("runs compared pathwise have different round counts: "
                              + ", ".join(f"{r.name} ({t.size})" for r, t in zip(runs, tables)))
    return np.logical_and.reduce([t["status"][:n] == 0 for t in tables])


# ----------------------------------------------------------------------------- statistics

def mean_std(values: Iterable[float] | np.ndarray) -> tuple[float, float, int]:
    """Mean, standard deviation (ddof 0) and count of the finite values; NaNs if none."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if not x.size:
        return math.nan, math.nan, 0
    return float(x.mean()), float(x.std()), int(x.size)


def floor_zeros(values: np.ndarray | float, floor: float = LOG_FLOOR) -> np.ndarray:
    """Replace values below ``floor`` (exact zeros, round-off noise) by ``floor`` for a log axis."""
    return np.maximum(np.asarray(values, dtype=float), floor)


def log_band(mean: float, std: float, floor: float = LOG_FLOOR) -> tuple[float, float]:
    """Lower and upper error-bar lengths of mean ± std on a log axis, clipped at ``floor``."""
    m = max(mean, floor)
    return m - max(mean - std, floor), max(mean + std, floor) - m


# ----------------------------------------------------------------------------- captions

def describe_delays(delays: dict) -> str:
    """One-line description of a ``[delays]`` table."""
    model = delays.get("model", "?")
    keys = {"constant": ("slow", "factor"), "shifted-exponential": ("shift", "scale", "per"),
            "pareto": ("alpha", "per"), "bimodal": ("p", "factor"), "gilbert-elliott": ("p_bad", "p_good", "factor"),
            "bursty": ("B", "W", "lambda", "factor", "violate"), "trace": ("trace", "slope")}.get(model, ())
    params = ", ".join(f"{k} {Path(str(delays[k])).name if k == 'trace' else delays[k]}" for k in keys if k in delays)
    text = f"{model}({params})" if params else str(model)
    text += f", chunk_time {delays.get('chunk_time', '?')} s"
    if delays.get("fail_count"):
        text += f", fail_count {delays['fail_count']}"
    elif delays.get("failures"):
        text += f", failures {delays['failures']}"
    return text


def _span(values: Iterable[Any]) -> str:
    vals = sorted(set(values), key=lambda v: (str(type(v)), v))
    if len(vals) <= 3:
        return "/".join(str(v) for v in vals)
    return f"{vals[0]}–{vals[-1]}"


def caption(runs: Sequence[Run], extra: str = "") -> str:
    """Caption line: backend(s), rounds per run, straggler model(s) of ``runs``."""
    backends = _span(r.backend for r in runs)
    rounds = _span(int(r.tables["rounds"].size) for r in runs if "rounds" in r.tables) or "?"
    counts = {r.key("delays.fail_count", 0) for r in runs if r.config}
    swept = len(counts) > 1
    models = sorted({describe_delays({**r.config.get("delays", {}), **({"fail_count": 0} if swept else {})})
                     for r in runs if r.config})
    if swept:
        models = [f"{m}, fail_count {_span(counts)}" for m in models]
    model = "; ".join(models[:2]) + (f" (+{len(models) - 2} more)" if len(models) > 2 else "")
    text = f"backend: {backends} · rounds per run: {rounds} · straggler model: {model or 'n/a'}"
    return f"{text} · {extra}" if extra else text


# ----------------------------------------------------------------------------- plotting

def pyplot():
    """Import matplotlib.pyplot with the Agg backend and the suite's style.

    Raises
    ------
    FigureDataError
        With an install hint if matplotlib is missing.
    """
    try:
        import matplotlib
    except ImportError:
        raise FigureDataError("matplotlib is required for the figures: pip install -e '.[analysis]' "
                              "(or pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 110, "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9,
        "legend.fontsize": 7.5, "axes.grid": True, "grid.alpha": 0.3, "lines.linewidth": 1.4,
        "lines.markersize": 4.5, "errorbar.capsize": 2.5, "savefig.bbox": "tight",
    })
    return plt


def add_caption(fig, text: str) -> None:
    """Write the caption line under the axes."""
    fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=7, wrap=True, color="0.25")


def save(fig, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/stem.png`` and ``.pdf``; close it; return the paths."""
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------- command line

def figure_cli(main: Callable[[Sequence[str], str], dict], doc: str, argv: Sequence[str] | None = None) -> int:
    """Run ``main(files, out_dir)`` from ``FILE.h5 ... --out DIR``; print files, key numbers and claims.

    Returns 0, or 2 with one ``error:`` line on a :class:`FigureDataError`.
    """
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE.h5", help="HDF5 result files (sim and/or mpi runs)")
    parser.add_argument("--out", default="figures", metavar="DIR", help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    prog = Path(sys.argv[0]).name if argv is None else "figure"
    try:
        result = main(args.files, args.out)
    except FigureDataError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    print(report_lines(result))
    return 0


def errorbars(ax, xs: Sequence[float], stats: Sequence[tuple[float, float, int]], *, log: bool = False,
              floor: float = LOG_FLOOR, **kwargs: Any):
    """Plot mean ± std (``mean_std`` tuples) at ``xs``; on a log axis means are floored, bars clipped."""
    xs = np.asarray(xs, dtype=float)
    means = np.array([s[0] for s in stats], dtype=float)
    stds = np.array([s[1] for s in stats], dtype=float)
    keep = np.isfinite(means)
    if log:
        bands = np.array([log_band(m, s, floor) for m, s in zip(means[keep], stds[keep])]).reshape(-1, 2).T
        return ax.errorbar(xs[keep], floor_zeros(means[keep], floor), yerr=bands, **kwargs)
    return ax.errorbar(xs[keep], means[keep], yerr=stds[keep], **kwargs)


def claim(text: str, value: float, ok: bool) -> dict[str, Any]:
    """A checked claim: printed by the figure CLI and by make_figures."""
    return {"claim": text, "value": float(value), "ok": bool(ok)}


def report_lines(result: dict) -> str:
    """Text of a figure's result: written files, key numbers, checked claims."""
    lines = [f"wrote {p}" for p in result.get("files", [])]
    for key, value in result.get("numbers", {}).items():
        lines.append(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    for c in result.get("claims", []):
        lines.append(f"  claim {'ok' if c['ok'] else 'NOT MET'}: {c['claim']} (measured {c['value']:.4g})")
    return "\n".join(lines)


def role(run: Run) -> str:
    """Scheme role for legends: ``ablation`` for partial with ``use_partial = false``, else the scheme."""
    if run.scheme == "partial" and run.key("code.use_partial", True) is False:
        return "ablation"
    return run.scheme


ASSIGNMENTS = ("cyclic", "graph:circulant", "graph:random-regular")
ASSIGNMENT_LABEL = {"cyclic": "cyclic", "graph:circulant": "G1 = graph:circulant",
                    "graph:random-regular": "G2 = graph:random-regular"}
