"""Summary statistics of runs and their text output (tables, provenance headers, CSV).

No HDF5 here: callers read runs with ``mpigc.results`` and pass plain arrays.
Output follows the OSU benchmarks: ``#``-prefixed provenance lines, then
aligned columns whose names carry their units.
"""
from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

COLUMNS = ("run", "scheme", "rounds", "mean_ms", "median_ms", "p95_ms", "loop_ms", "exact_%",
           "coef_error", "grad_error", "speedup")
TARGET_COLUMNS = ("to_target_s", "to_target_rounds")  # with run.target_loss (time to accuracy)
_LEFT = {"run", "scheme"}          # text columns, left-aligned; numbers are right-aligned
_LABELS = {"created": "date", "mpi_library": "mpi library", "mpigc_version": "mpigc"}
_ORDER = ("mpigc_version", "created", "host", "hosts", "backend", "mpi_library",
          "python", "numpy", "h5py")


def _mean(x: np.ndarray) -> float:
    """Return the mean of ``x``, NaN (without a warning) if it is empty."""
    return float(np.mean(x)) if x.size else math.nan


def time_to_target(rounds: np.ndarray, target: float) -> tuple[float, float]:
    """Return the wall time (s) and rounds until the first evaluated round with ``eval_loss`` ≤ ``target``.

    The time is the sum of the latencies of every round up to and including
    that round (docs/protocols.md#time-to-accuracy); evaluation itself is on no round's clock.
    A run that never gets there, or whose table has no ``eval_loss`` (older
    files), gives ``(nan, nan)``.
    """
    if "eval_loss" not in (rounds.dtype.names or ()):
        return math.nan, math.nan
    hit = np.flatnonzero(np.asarray(rounds["eval_loss"], dtype=float) <= target)  # NaN compares False
    if not hit.size:
        return math.nan, math.nan
    first = int(hit[0])
    return float(np.sum(np.asarray(rounds["latency"], dtype=float)[:first + 1])), float(first + 1)


def summarize(rounds: np.ndarray, target_loss: float | None = None) -> dict[str, Any]:
    """Summarise a ``rounds`` table (ROUNDS dtype).

    Parameters
    ----------
    rounds : numpy.ndarray
        The run's rounds table.
    target_loss : float, optional
        ``run.target_loss``: adds ``target_s`` and ``target_rounds`` (:func:`time_to_target`).

    Returns
    -------
    dict
        ``rounds`` (count), ``mean``, ``median``, ``p95`` (latency, s),
        ``exact`` (share of rounds with status 0, in [0, 1]), ``coef_error``
        (mean), ``grad_error`` (mean over verified rounds; NaN if none),
        ``unsound`` and ``nonfinite`` (rounds of status 3 and 4: decoded but
        not counted exact, see ``mpigc.core.policy``); with a target,
        ``target_loss``, ``target_s`` and ``target_rounds``
        (NaN if never reached). Statistics of an empty table are NaN.
    """
    lat = np.asarray(rounds["latency"], dtype=float)
    n = int(lat.size)
    grad = np.asarray(rounds["grad_error"], dtype=float)
    grad = grad[~np.isnan(grad)]
    target = {}
    if target_loss is not None:
        seconds, count = time_to_target(rounds, float(target_loss))
        target = {"target_loss": float(target_loss), "target_s": seconds, "target_rounds": count}
    return {
        "rounds": n,
        "mean": _mean(lat),
        "median": float(np.median(lat)) if n else math.nan,
        "p95": float(np.percentile(lat, 95)) if n else math.nan,
        "exact": _mean(np.asarray(rounds["status"]) == 0),
        "unsound": int(np.count_nonzero(np.asarray(rounds["status"]) == 3)),
        "nonfinite": int(np.count_nonzero(np.asarray(rounds["status"]) == 4)),
        "coef_error": _mean(np.asarray(rounds["coef_error"], dtype=float)),
        "grad_error": _mean(grad),
        **target,
    }


def _speedups(rows: Sequence[tuple[str, str, dict]]) -> list[float]:
    """Return each row's speed-up: first row's mean latency / this row's mean."""
    if not rows:
        return []
    base = rows[0][2]["mean"]
    out = []
    for _, _, s in rows:
        mean = s["mean"]
        ok = mean > 0 and math.isfinite(mean) and math.isfinite(base)
        out.append(base / mean if ok else math.nan)
    return out


def loop_time(attrs: dict, rounds: int) -> float:
    """Loop time per round (s) of a stored run: ``master_wall_s`` / rounds; NaN without it.

    Only MPI runs record ``master_wall_s`` (rank 0's wall time of the round
    loop); the simulator's virtual time has no loop time.
    """
    wall = attrs.get("master_wall_s")
    try:
        wall = float(wall)
    except (TypeError, ValueError):
        return math.nan
    return wall / rounds if rounds > 0 and math.isfinite(wall) else math.nan


def format_table(rows: Sequence[Sequence[str]], left: Collection[int] = ()) -> str:
    """Align text cells in columns two spaces apart: the one table layout of every command.

    Parameters
    ----------
    rows : sequence of sequences of str
        The header first, then the body; every row has the same number of cells.
    left : collection of int
        Indices of the text columns, left-aligned; the others (numbers) are right-aligned.

    Returns
    -------
    str
        One line per row, trailing spaces stripped, without a trailing newline.
    """
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))] if rows else []
    return "\n".join("  ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
                     .rstrip() for r in rows)


def _cells(name: str, scheme: str, s: dict, speedup: float) -> list[str]:
    """Format one table row's cells."""
    return [
        name, scheme, str(int(s["rounds"])),
        f"{s['mean'] * 1e3:.3f}", f"{s['median'] * 1e3:.3f}", f"{s['p95'] * 1e3:.3f}",
        f"{s.get('loop', math.nan) * 1e3:.3f}",
        f"{s['exact'] * 100:.1f}", f"{s['coef_error']:.3e}", f"{s['grad_error']:.3e}",
        f"{speedup:.2f}",
    ]


def _target_cells(s: dict) -> list[str]:
    """Time to target (s) and rounds to target, "—" when not reached or not asked for."""
    seconds, count = s.get("target_s", math.nan), s.get("target_rounds", math.nan)
    if not math.isfinite(seconds):
        return ["—", "—"]
    return [f"{seconds:.4g}", str(int(count))]


def summary_table(rows: list[tuple[str, str, dict]]) -> str:
    """Format runs as an aligned table with units in the column names.

    Parameters
    ----------
    rows : list of (run name, scheme, summarize() dict)
        The first row is the baseline of the ``speedup`` column (its mean
        latency divided by each row's mean; the first row is 1.00). Optional
        keys: ``loop`` (loop time per round, s; NaN if absent) and
        ``interrupted`` (a signal's name: the run was stopped early),
        ``target_s``/``target_rounds`` (time to accuracy: then the table
        ends with ``to_target_s`` and ``to_target_rounds``, "—" for a run
        that never reached the target).

    Returns
    -------
    str
        Header line and one line per run, then one ``# NAME: interrupted by
        SIGTERM ...`` line per interrupted run and one ``# NAME: not exact:
        ...`` line per run with rounds of status 3 or 4, without a trailing newline.
        Latencies and ``loop_ms`` are in ms, ``exact_%`` in percent, errors in
        scientific notation.
    """
    body = [_cells(n, sch, s, sp) for (n, sch, s), sp in zip(rows, _speedups(rows))]
    columns = list(COLUMNS)
    if any("target_s" in s for _, _, s in rows):  # time to accuracy: only runs with a target show the columns
        columns += list(TARGET_COLUMNS)
        body = [cells + _target_cells(s) for cells, (_, _, s) in zip(body, rows)]
    lines = [format_table([columns, *body], left={j for j, col in enumerate(columns) if col in _LEFT})]
    lines += [f"# {name}: interrupted by {s['interrupted']} after {int(s['rounds'])} round(s)"
              for name, _, s in rows if s.get("interrupted")]
    lines += [_not_exact_line(name, s) for name, _, s in rows if s.get("unsound") or s.get("nonfinite")]
    return "\n".join(lines)


def _not_exact_line(name: str, s: dict) -> str:
    """Why some decoded rounds of a run are not counted in ``exact_%`` (statuses 3 and 4)."""
    why = []
    if s.get("unsound"):
        why.append(f"{s['unsound']} unsound (status 3: condition number or verified error above the limit)")
    if s.get("nonfinite"):
        why.append(f"{s['nonfinite']} with non-finite values (status 4: NaN or infinity from a worker or plug-in)")
    return f"# {name}: not exact: " + ", ".join(why)


def csv_rows(rows: list[tuple[str, str, dict]]) -> list[list[str]]:
    """Return the summary as CSV rows (header first), full precision, latencies in s.

    Parameters
    ----------
    rows : list of (run name, scheme, summarize() dict)
        As for ``summary_table``. ``loop_s`` and ``interrupted`` come last, so
        columns read by position before them keep their place; when a run
        has a target (time to accuracy) ``target_loss``, ``target_s`` and
        ``target_rounds`` follow them (NaN when not reached or not asked for).
    """
    header = ["run", "scheme", "rounds", "mean_s", "median_s", "p95_s", "exact",
              "coef_error", "grad_error", "speedup", "loop_s", "interrupted"]
    target = any("target_s" in s for _, _, s in rows)
    if target:
        header += ["target_loss", "target_s", "target_rounds"]
    out = [header]
    for (name, scheme, s), sp in zip(rows, _speedups(rows)):
        out.append([name, scheme, str(int(s["rounds"]))]
                   + [repr(float(s[k])) for k in ("mean", "median", "p95", "exact",
                                                  "coef_error", "grad_error")]
                   + [repr(float(sp)), repr(float(s.get("loop", math.nan))), str(s.get("interrupted") or "")]
                   + ([repr(float(s.get(k, math.nan))) for k in ("target_loss", "target_s", "target_rounds")]
                      if target else []))
    return out


def round_rows(runs: Sequence[tuple[str, str, str, np.ndarray]]) -> list[list[str]]:
    """Return one CSV row per round of every run (header first), full precision, latency in s.

    Parameters
    ----------
    runs : sequence of (run name, scheme, backend, rounds table)
        The ``rounds`` tables (structured arrays); their fields become columns
        after ``run``, ``scheme`` and ``backend``, in the first table's order.
    """
    fields: list[str] = []
    for *_, table in runs:
        fields += [f for f in (table.dtype.names or ()) if f not in fields]
    out = [["run", "scheme", "backend", *fields]]
    for name, scheme, backend, table in runs:
        have = set(table.dtype.names or ())
        columns = [table[f].tolist() if f in have else [""] * table.size for f in fields]
        for values in zip(*columns):
            out.append([name, scheme, backend, *(repr(v) if isinstance(v, float) else str(v) for v in values)])
    return out


def damaged_lines(damaged: Sequence[Any]) -> list[str]:
    """One ``# damaged: NAME (reason)`` line per damaged run (``mpigc.results.DamagedRun``)."""
    return [f"# damaged: {d.name} ({d.reason})" for d in damaged]


def _text(value: Any) -> str:
    """Render a provenance value on one line (lists joined, dicts as JSON)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def provenance_header(info: dict) -> str:
    """Format provenance as ``#``-prefixed ``label: value`` lines, OSU-benchmark style.

    Known keys come first in a fixed order (mpigc version, date, host, hosts,
    backend, mpi library, python, numpy, h5py), then the others in ``info``
    order (e.g. sizes: workers, chunks). Empty values are skipped; multi-line
    values (e.g. a config text) continue on indented ``#`` lines.

    Returns
    -------
    str
        The header lines, without a trailing newline.
    """
    keys = [k for k in _ORDER if k in info] + [k for k in info if k not in _ORDER]
    lines = []
    for key in keys:
        value = info[key]
        if value is None or (isinstance(value, (str, list, tuple, dict)) and not value):
            continue
        text = _text(value).rstrip("\n").splitlines() or [""]
        lines.append(f"# {_LABELS.get(key, key)}: {text[0]}")
        lines.extend(f"#   {more}" for more in text[1:])
    return "\n".join(lines)
