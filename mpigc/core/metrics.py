"""How far a decoded gradient is from the true one (docs/protocols.md#errors)."""
from __future__ import annotations

import numpy as np


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """||ĝ − g|| / ||g|| (docs/protocols.md#errors); NaN if the true gradient is not finite."""
    norm = float(np.linalg.norm(truth))
    if not np.isfinite(norm):
        return float("nan")
    return float(np.linalg.norm(estimate - truth)) / norm if norm > 0 else float(np.linalg.norm(estimate))


#: relative error ``grad_error`` of an exact decode, per ``workload.dtype``, that the tests and the
#: documentation (docs/large-gradients.md) hold every exact round to. float64: a few digits lost in
#: the decode's solves. float32 (unit roundoff 6e-8): the chunk gradients, the coded messages and
#: the decode all round to float32; the built-in schemes measured at most 2e-7 (m = 8, d = 10^2..10^5)
EXACT_RTOL = {"float64": 1e-9, "float32": 1e-5}
