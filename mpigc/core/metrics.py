"""How far a decoded gradient is from the true one (PROTOCOLS §5)."""
from __future__ import annotations

import numpy as np


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """||ĝ − g|| / ||g|| (PROTOCOLS §5)."""
    norm = float(np.linalg.norm(truth))
    return float(np.linalg.norm(estimate - truth)) / norm if norm > 0 else float(np.linalg.norm(estimate))
