"""Convert scikit-learn's bundled digits into an mpigc dataset for F8 (time to accuracy).

    pip install scikit-learn          # only to re-create the file; it is committed
    python jobs/convert_digits.py     # writes jobs/data/digits-5to9.npz

The task is binary, for ``workload.model = "logistic"``: digits 5–9 (y = 1)
against 0–4 (y = 0) — harder than one digit against the rest, so the
training curves of the schemes separate before they flatten. The 1797
images are shuffled with numpy's ``default_rng(SEED)`` and split: the first
25 % become the held-out ``X_eval``/``y_eval`` (mpigc's convention: held-out
rows beside ``X``/``y`` in the same file), the rest the training ``X``/``y``.
Features are the 64 pixel intensities standardised with the training rows'
mean and standard deviation (pixels constant on the training rows stay 0;
plain gradient descent converges in tens of rounds instead of thousands),
plus a constant 1 as the last column (the logistic model has no separate
bias).
The output is a compressed ``.npz`` of about 75 kB, committed under
``jobs/data/`` so F8 runs without scikit-learn.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SEED = 12
HELD_OUT = 0.25
OUT = Path(__file__).resolve().parent / "data" / "digits-5to9.npz"


def convert(out: Path = OUT) -> dict[str, tuple[int, ...]]:
    """Write the dataset to ``out``; return the shape of every array."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("convert_digits: scikit-learn is needed to re-create the file (pip install scikit-learn); "
                         f"the converted file is committed as {OUT.relative_to(OUT.parents[2])}") from None
    digits = load_digits()
    y = (digits.target >= 5).astype(float)
    order = np.random.default_rng(SEED).permutation(len(y))
    cut = int(round(HELD_OUT * len(y)))
    held, train = order[:cut], order[cut:]
    mean, std = digits.data[train].mean(axis=0), digits.data[train].std(axis=0)
    std[std == 0] = 1.0  # a pixel blank on every training image stays 0
    x = np.hstack([(digits.data - mean) / std, np.ones((len(y), 1))])
    arrays = {"X": x[train], "y": y[train], "X_eval": x[held], "y_eval": y[held]}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return {k: v.shape for k, v in arrays.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--out PATH`` (default ``jobs/data/digits-5to9.npz``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT, help="output .npz (default: %(default)s)")
    args = p.parse_args(argv)
    shapes = convert(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB): "
          + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
