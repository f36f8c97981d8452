"""Provenance attributes every run carries, whichever backend made it."""
from __future__ import annotations

import numpy as np

from mpigc import results
from mpigc.codes import SCHEMES
from mpigc.config import Config, to_toml
from mpigc.delays import MODELS
from mpigc.workloads import WORKLOADS


def run_attrs(backend: str, config: Config, code, label: str, workers: int, **extra) -> dict:
    """Versions, host and time (``results.provenance``), the resolved config, the entry it ran, its plug-ins.

    ``extra`` adds what only one backend knows (the MPI library, the plan).
    """
    return {**results.provenance(backend), "scheme": code.scheme, "config": to_toml(config), "entry": label,
            "seed": config.run.seed, "workers": int(workers), "plugins": plugins(config, code), **extra}


def plugins(config: Config, code) -> list[dict[str, str]]:
    """Return one record per plug-in the entry ``code`` of ``config`` uses (empty when all are built in).

    A record holds the config key, the configured name, where it came from
    (``source``: entry point, module path, or registered by an outside
    module), its ``module`` and ``attr``, and its ``version`` (the
    distribution's, else ``__version__``, else ``"unknown"``).
    """
    out = []
    for key, registry, name in (("code.scheme", SCHEMES, code.scheme), ("delays.model", MODELS, config.delays.model),
                                ("workload.model", WORKLOADS, config.workload.model)):
        origin = registry.origin(name, key)
        if origin.plugin:
            out.append({"key": key, "name": name, **origin.record()})
    return out


def plain(value):
    """Return a numpy scalar as the Python value HDF5 attributes and JSON take."""
    return value.item() if isinstance(value, np.generic) else value
