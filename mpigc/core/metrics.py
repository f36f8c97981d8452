"""How far a decoded gradient is from the true one (docs/protocols.md#errors)."""
from __future__ import annotations

import numpy as np


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """||ĝ − g|| / ||g|| (docs/protocols.md#errors)."""
    norm = float(np.linalg.norm(truth))
    return float(np.linalg.norm(estimate - truth)) / norm if norm > 0 else float(np.linalg.norm(estimate))
