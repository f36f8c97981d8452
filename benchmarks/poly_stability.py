"""Numerical stability of the Ye–Abbe polynomial code (``poly``) against ``partial``.

For every m, point set and l, draw a few random instances (chunk gradients
and a set of s silent workers), decode exactly from the m − s survivors and
compare with the true gradient (docs/protocols.md#poly): expect ~1e-10 at m = 20 on
Chebyshev points, order 0.1 by m = 40, integer points far worse, while
``partial`` (same m, load, parts) stays at round-off.

Usage: ``python benchmarks/poly_stability.py [--out FILE.h5]``.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from mpigc.codes import Scheme, combine, make_scheme
from mpigc.config import CodeConfig
from mpigc.core.metrics import relative_error
from mpigc.results import ResultFile, provenance
from mpigc.seeding import stream

COLUMNS = ("m", "points", "l", "poly_relerr_median", "poly_relerr_max", "partial_relerr_max")
WIDTHS = (4, 10, 3, 19, 16, 19)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m-min", type=int, default=8, help="smallest number of workers (default 8)")
    p.add_argument("--m-max", type=int, default=48, help="largest number of workers (default 48)")
    p.add_argument("--m-step", type=int, default=4, help="step in m (default 4)")
    p.add_argument("--parts", type=int, nargs="+", default=[1, 2], help="values of l (default 1 2)")
    p.add_argument("--stragglers", type=int, default=2, help="straggler tolerance s (default 2)")
    p.add_argument("--instances", type=int, default=5, help="random instances per row (default 5)")
    p.add_argument("--dim", type=int, default=1000, help="gradient dimension d (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    p.add_argument("--out", default=None, help="also store the curve as attributes of a run in this HDF5 file")
    return p.parse_args(argv)


def decode_error(scheme: Scheme, alive: np.ndarray, grads: dict[int, np.ndarray], dim: int) -> float:
    """Deliver every message of the workers in ``alive`` (in that order); return ‖ĝ − g‖/‖g‖."""
    decoder, vectors = scheme.decoder(), {}
    for w in alive:
        for p in scheme.sends_after(int(w)):
            key = (int(w), int(p))
            vectors[key] = scheme.encode(*key, grads)
            decoder.add(*key)
    comb = decoder.combination()
    if not comb.exact:
        raise RuntimeError(f"{scheme.code.scheme}: no exact decode from {len(alive)} workers")
    truth = np.sum([grads[i] for i in range(scheme.plan.chunks)], axis=0)
    return relative_error(combine(comb, vectors, dim), truth)


def instance(seed: int, m: int, parts: int, index: int, s: int, dim: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Survivors in arrival order (m − s of them) and chunk gradients of one instance."""
    rng = stream(seed, "data", m, parts, index)
    alive = rng.permutation(m)[: m - s]
    grads = {i: rng.standard_normal(dim) for i in range(m)}
    return alive, grads


def curve(args: argparse.Namespace, emit) -> list[dict]:
    """Compute every row of the table, passing each to ``emit`` as soon as it is done."""
    rows = []
    s = args.stragglers
    for m in range(args.m_min, args.m_max + 1, args.m_step):
        for parts in args.parts:
            if s + parts > m:
                continue
            draws = [instance(args.seed, m, parts, j, s, args.dim) for j in range(args.instances)]
            partial = make_scheme(CodeConfig(scheme="partial", load=s + parts, parts=parts), m, args.seed)
            partial_err = max(decode_error(partial, a, g, args.dim) for a, g in draws)
            for points in ("chebyshev", "integers"):
                poly = make_scheme(CodeConfig(scheme="poly", load=s + parts, parts=parts, points=points), m, args.seed)
                errs = [decode_error(poly, a, g, args.dim) for a, g in draws]
                row = {"m": m, "points": points, "l": parts, "poly_relerr_median": float(np.median(errs)),
                       "poly_relerr_max": float(np.max(errs)), "partial_relerr_max": float(partial_err)}
                rows.append(row)
                emit(row)
    return rows


def format_row(row: dict) -> str:
    """One aligned line of the table."""
    cells = []
    for col, width in zip(COLUMNS, WIDTHS):
        value = row[col]
        cells.append(f"{value:>{width}.3e}" if isinstance(value, float) else f"{value!s:>{width}}")
    return " ".join(cells)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, print the table and optionally store it."""
    args = parse_args(argv)
    prov = provenance("sim")
    for key in ("created", "host", "python", "numpy", "mpigc_version"):
        print(f"# {key}: {prov[key]}")
    print(f"# d = {args.dim}, s = {args.stragglers}, instances = {args.instances}, seed = {args.seed}; "
          "relerr = ||g_hat - g|| / ||g|| of exact decodes from m - s random survivors")
    print(" ".join(f"{c:>{w}}" for c, w in zip(COLUMNS, WIDTHS)), flush=True)
    rows = curve(args, lambda row: print(format_row(row), flush=True))
    if args.out:
        params = {k: v for k, v in vars(args).items() if k != "out"}
        writer = ResultFile(args.out).new_run("poly_stability", {**prov, **params}, tables=())
        writer.set_attrs(curve=rows)
        writer.flush()
        print(f"# stored as run attributes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
