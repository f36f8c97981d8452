"""F4 (P1 appendix): numerical instability of polynomial codes.

(a) Relative error of Lagrange interpolation (integer points, Python's
``decimal``) vs the number of significant decimal digits, degrees 20, 25, 30,
mean ± std over the trials (runs written by ``analysis/lagrange_sweep.py``).
(b) ``grad_error`` = ‖ĝ − g‖/‖g‖ of exact decodes in float64 vs m, ``poly``
(Ye–Abbe, Chebyshev points) against ``partial``, mean ± std over rounds
(``mpigc simulate jobs/configs/f4-poly.toml`` with ``run.verify = true``).

    python analysis/fig4_poly_instability.py results/f4-lagrange.h5 results/f4-poly.h5 --out figures
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

if not __package__:  # run by path (python analysis/NAME.py): the repo root makes the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import common as c  # noqa: E402

STEM = "f4_poly_instability"
FLOOR = 1e-20


def main(files: Sequence[str], out_dir: str) -> dict:
    """Draw F4 from ``files`` into ``out_dir``; return files, key numbers and claims."""
    runs = c.load_runs(files)
    lagrange = sorted((r for r in runs if "lagrange_degree" in r.attrs), key=lambda r: r.attrs["lagrange_degree"])
    if not lagrange:
        raise c.FigureDataError(f"{', '.join(files)}: F4 needs the Lagrange runs of analysis/lagrange_sweep.py "
                                "(attributes lagrange_degree, precisions, errors)")
    verified = [r for r in runs if r.scheme in ("poly", "partial") and "rounds" in r.tables
                and np.isfinite(r.tables["rounds"]["grad_error"]).any()]
    if not {r.scheme for r in verified} >= {"poly", "partial"}:
        raise c.FigureDataError(f"{', '.join(files)}: F4 needs poly and partial runs with run.verify = true "
                                "(finite grad_error), e.g. from jobs/configs/f4-poly.toml")
    plt = c.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    numbers: dict = {}
    for i, run in enumerate(lagrange):
        for key in ("precisions", "errors"):
            if key not in run.attrs:
                raise c.FigureDataError(f"{run.file}: run {run.name!r} lacks the attribute {key!r}")
        n = int(run.attrs["lagrange_degree"])
        digits = list(run.attrs["precisions"])
        stats = [c.mean_std(e) for e in run.attrs["errors"]]
        c.errorbars(ax1, digits, stats, log=True, floor=FLOOR, marker="o", color=f"C{i}",
                    label=f"degree {n} ({run.attrs.get('trials', '?')} trials)")
        ok = [d for d, s in zip(digits, stats) if s[0] < 1e-6]
        numbers[f"Lagrange degree {n}: digits for error < 1e-6"] = ok[0] if ok else "none tried"
        if 16 in digits:
            numbers[f"Lagrange degree {n}: mean error at 16 digits"] = stats[digits.index(16)][0]
    ax1.set_yscale("log")
    ax1.axhline(1.0, color="0.3", lw=0.8, ls="--", label="error 1 (useless)")
    ax1.axhline(FLOOR, color="0.5", lw=0.8, ls=":", label=f"floor {FLOOR:g} (error 0)")
    ax1.axvline(16, color="0.6", lw=0.8, ls="-.", label="≈ float64 (16 digits)")
    ax1.set_xlabel("decimal places of precision (significant digits)")
    ax1.set_ylabel("relative coefficient error ‖ĉ−c‖/‖c‖ (mean ± std)")
    ax1.set_title("(a) Lagrange interpolation on points 1..n+1")
    ax1.legend(loc="upper right", fontsize=6.5)
    curves: dict = {}
    for (scheme, l, m), group in c.group_by(verified, "scheme", "code.parts", "code.workers").items():
        rows = np.concatenate([r.table("rounds") for r in group])
        err = rows["grad_error"][(rows["status"] == 0) & np.isfinite(rows["grad_error"])]
        curves.setdefault((scheme, int(l)), {})[int(m)] = c.mean_std(err)
    for (scheme, l), series in sorted(curves.items()):
        ms = sorted(series)
        c.errorbars(ax2, ms, [series[m] for m in ms], log=True, floor=FLOOR, color=c.COLORS[scheme],
                    marker="D" if scheme == "poly" else "o", ls="-" if l == 1 else "--", label=f"{scheme}, l = {l}")
        numbers[f"{scheme} l={l} grad_error at m={ms[-1]}"] = series[ms[-1]][0]
    ax2.set_yscale("log")
    ax2.axhline(1.0, color="0.3", lw=0.8, ls="--")
    ax2.set_xlabel("m (workers = chunks)")
    ax2.set_ylabel("grad_error ‖ĝ−g‖/‖g‖ (mean ± std)")
    ax2.set_title("(b) exact decodes in float64: poly vs partial")
    ax2.legend(loc="upper left")
    fig.suptitle("F4 · numerical instability of polynomial (Lagrange / Vandermonde) decoding", fontsize=9.5)
    fig.tight_layout()
    c.add_caption(fig, c.caption(verified, "(b) only; (a) is exact arithmetic in Python's decimal, no stragglers"))
    paths = c.save(fig, out_dir, STEM)
    poly_max = max(s[0] for (sch, _), ser in curves.items() if sch == "poly" for s in ser.values())
    part_max = max(s[0] for (sch, _), ser in curves.items() if sch == "partial" for s in ser.values())
    numbers["poly worst mean grad_error"] = poly_max
    numbers["partial worst mean grad_error"] = part_max
    claims = [c.claim("poly's decode error explodes (worst mean > 1e-3)", poly_max, poly_max > 1e-3),
              c.claim("partial stays at round-off (worst mean < 1e-12)", part_max, part_max < 1e-12)]
    return {"files": [str(x) for x in paths], "numbers": numbers, "claims": claims}


if __name__ == "__main__":
    sys.exit(c.figure_cli(main, __doc__))
