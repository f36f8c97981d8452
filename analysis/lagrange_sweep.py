"""F4(a) sweep: error of Lagrange interpolation vs decimal places (Python's ``decimal``).

For each degree n and precision p (significant decimal digits): draw a
polynomial with standard normal coefficients, evaluate it at the n + 1
integer points 1..n+1 (the Ye–Abbe evaluation points) with p digits, and
recover every coefficient by Lagrange interpolation, also with p digits.
The error of a trial is ‖ĉ − c‖ / ‖c‖. Results are stored through
``mpigc.results`` as one run per degree with no tables and the attributes
``lagrange_degree``, ``trials``, ``precisions`` and ``errors`` (one list of
per-trial errors per precision)::

    python analysis/lagrange_sweep.py --out results/f4-lagrange.h5 [--degrees 20 25 30] [--trials 100]
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Context, Decimal

import numpy as np

from mpigc import results

PRECISIONS = (8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64)


def basis(n: int, ctx: Context) -> list[list[Decimal]]:
    """Coefficients (lowest first) of the n + 1 Lagrange basis polynomials on 1..n+1, in ``ctx``."""
    xs = [Decimal(i) for i in range(1, n + 2)]
    master = [Decimal(1)]                      # ∏ (x − x_j), lowest coefficient first
    for x in xs:
        shifted = [Decimal(0)] + master
        master = [ctx.subtract(shifted[k], ctx.multiply(x, master[k]) if k < len(master) else Decimal(0))
                  for k in range(len(shifted))]
    out = []
    for i, xi in enumerate(xs):
        quotient = [Decimal(0)] * (n + 1)      # master / (x − x_i) by synthetic division
        carry = Decimal(0)
        for k in range(n + 1, 0, -1):
            carry = ctx.add(master[k], ctx.multiply(xi, carry)) if k < n + 1 else master[k]
            quotient[k - 1] = carry
        denom = Decimal(1)
        for j, xj in enumerate(xs):
            if j != i:
                denom = ctx.multiply(denom, ctx.subtract(xi, xj))
        out.append([ctx.divide(q, denom) for q in quotient])
    return out


def trial_error(coefs: np.ndarray, table: list[list[Decimal]], ctx: Context) -> float:
    """Evaluate the polynomial at 1..n+1 and interpolate it back, with ``ctx``; return the relative error."""
    n = coefs.size - 1
    c = [Decimal(float(v)) for v in coefs]
    values = []
    for i in range(1, n + 2):                  # Horner with p digits
        acc, x = Decimal(0), Decimal(i)
        for k in range(n, -1, -1):
            acc = ctx.add(ctx.multiply(acc, x), c[k])
        values.append(acc)
    est = [Decimal(0)] * (n + 1)
    for y, row in zip(values, table):
        for k in range(n + 1):
            est[k] = ctx.add(est[k], ctx.multiply(y, row[k]))
    diff = np.array([float(e) for e in est]) - coefs
    return float(np.linalg.norm(diff) / np.linalg.norm(coefs))


def sweep(degree: int, trials: int, precisions: Sequence[int], seed: int) -> list[list[float]]:
    """Per-precision lists of per-trial errors for one degree."""
    rng = np.random.default_rng([seed, degree])
    polys = rng.standard_normal((trials, degree + 1))
    out = []
    for p in precisions:
        ctx = Context(prec=int(p))
        table = basis(degree, ctx)
        out.append([trial_error(c, table, ctx) for c in polys])
    return out


def run(out: str, degrees: Sequence[int] = (20, 25, 30), trials: int = 100,
        precisions: Sequence[int] = PRECISIONS, seed: int = 0, log=sys.stdout) -> None:
    """Compute every degree's curve and store one run per degree in ``out``."""
    file = results.ResultFile(out)
    for n in degrees:
        errors = sweep(n, trials, precisions, seed)
        attrs = {**results.provenance("sim"), "scheme": "lagrange", "entry": f"lagrange-deg{n}",
                 "lagrange_degree": int(n), "trials": int(trials), "points": "integers 1..n+1",
                 "seed": int(seed), "precisions": [int(p) for p in precisions], "errors": errors}
        file.new_run(f"lagrange-deg{n}", attrs, tables=()).flush()
        means = " ".join(f"{p}:{np.mean(e):.1e}" for p, e in zip(precisions, errors))
        print(f"  lagrange degree {n}: mean error by digits {means}", file=log, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="HDF5 result file (runs are added)")
    p.add_argument("--degrees", type=int, nargs="+", default=[20, 25, 30])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--precisions", type=int, nargs="+", default=list(PRECISIONS))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    run(a.out, a.degrees, a.trials, a.precisions, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
