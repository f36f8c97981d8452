"""Seeded random streams: one independent stream per (purpose, index...).

Every random draw in mpigc comes from ``stream(seed, purpose, *index)``, so
the simulator and every MPI rank reproduce the same realisation from
``run.seed`` alone, and adding a draw for one purpose never shifts another.
"""
from __future__ import annotations

import numpy as np

# Purposes are fixed integers: changing one changes every realisation.
PURPOSES = {
    "delays": 1,
    "failures": 2,
    "data": 3,
    "model": 4,
    "assignment": 5,
    "ordering": 6,
    "code": 7,
    "init": 8,
    "eval": 20,  # held-out rows of synthetic workloads (time to accuracy); far from the next free numbers
    "bcc": 9,  # batched coupon's collector: each round's batch draws (mpigc.codes.bcc)
    "speed": 10,  # fitted straggler model: each worker's persistent speed factor (mpigc.delays.fitted)
}


def stream(seed: int, purpose: str, *index: int) -> np.random.Generator:
    """Return the generator for ``purpose`` at ``index`` (e.g. a round or a chunk)."""
    key = (PURPOSES[purpose], *(int(i) for i in index))
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))
