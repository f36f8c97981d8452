"""A straggler model defined outside the package, registered at import (tests/test_new_model*.py).

``slow-first-worker``: worker 0 is ``SLOWDOWN`` times slower in every round and
position, everyone else takes exactly ``chunk_time`` per chunk; and the model
is stateful (it counts the rounds it has drawn), to show that state lives in
the model object. A scheme that tolerates one straggler therefore never
needs worker 0.
"""
from __future__ import annotations

import numpy as np

from mpigc.delays import MODELS, StragglerModel

NAME = "slow-first-worker"
SLOWDOWN = 50.0


@MODELS.register(NAME)
class SlowFirstWorker(StragglerModel):
    """Worker 0 is 50 times slower than everyone else, in every round."""

    config_keys = ()

    def __init__(self, cfg, seed: int, workers: int, reader=None) -> None:
        super().__init__(cfg, seed, workers, reader)
        self.drawn: set[int] = set()

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        self.drawn.add(int(rnd))
        out = np.ones((positions, self.workers))
        out[:, 0] = SLOWDOWN
        return out
