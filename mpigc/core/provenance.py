"""Provenance attributes every run carries, whichever backend made it."""
from __future__ import annotations

import numpy as np

from mpigc import results
from mpigc.config import Config, to_toml


def run_attrs(backend: str, config: Config, code, label: str, workers: int, **extra) -> dict:
    """Versions, host and time (``results.provenance``), the resolved config and the entry it ran.

    ``extra`` adds what only one backend knows (the MPI library, the plan).
    """
    return {**results.provenance(backend), "scheme": code.scheme, "config": to_toml(config), "entry": label,
            "seed": config.run.seed, "workers": int(workers), **extra}


def plain(value):
    """Return a numpy scalar as the Python value HDF5 attributes and JSON take."""
    return value.item() if isinstance(value, np.generic) else value
