"""P3's affine load slope fitted per trace set (``delays.slope = "fit"``, ``mpigc tune --slope fit``).

P3's round-time model is ``value + L·slope``: a worker's load-0 time plus
seconds per unit of normalised load L. Its authors fit the slope per profile
set and region (2.2013 s Canada, 2.262 s London for the paper's set) by
ordinary least squares of every measured invocation time against its load,
all workers and rounds of the load-0 and loaded profiles pooled. This module
does the same from CSV traces named ``...load<L>...`` that sit side by side:
``cnn-canada-load0.00-batch2048-desktop-r20.csv`` is fitted together with
``cnn-canada-load0.25-batch2048-desktop-r20.csv``, ``...load0.50...`` and so
on (the same name but for the load).
"""
from __future__ import annotations

import os
import re

import numpy as np

from mpigc.delays.trace import load_trace
from mpigc.errors import InputError

_LOAD = re.compile(r"load(\d+(?:\.\d+)?)")


def siblings(trace_path: str) -> dict[float, str]:
    """Traces of the same set as ``trace_path`` by load: same directory, same name but ``load<L>``."""
    folder, name = os.path.split(os.fspath(trace_path))
    match = _LOAD.search(name)
    if match is None:
        raise InputError("delays.slope", f"a fitted slope needs a trace named like '...load0.00...csv'; got {name!r}")
    pattern = re.compile(re.escape(name[:match.start()]) + _LOAD.pattern + re.escape(name[match.end():]) + "$")
    found = {}
    for other in sorted(os.listdir(folder or ".")):
        hit = pattern.match(other)
        if hit:
            found[float(hit.group(1))] = os.path.join(folder, other)
    return found


def fit_values(samples: dict[float, np.ndarray]) -> float:
    """Least-squares slope of every value against its load, all samples pooled (P3's authors' fit)."""
    loads = np.concatenate([np.full(v.size, load) for load, v in samples.items()])
    values = np.concatenate([np.asarray(v, dtype=float).ravel() for v in samples.values()])
    dx = loads - loads.mean()
    return float(np.dot(dx, values - values.mean()) / np.dot(dx, dx))


def fitted_slope(trace_path: str) -> float:
    """Seconds per unit of normalised load fitted on ``trace_path`` and its loaded siblings.

    Parameters
    ----------
    trace_path : str
        A CSV trace whose name holds its load, e.g. ``...-load0.00-...csv``.

    Returns
    -------
    float
        The least-squares slope over every value of every trace of the set.

    Raises
    ------
    InputError
        Keyed ``delays.slope``: the name holds no load, no trace of another
        load sits beside it, or the fit is not positive (the load-0 trace is
        slower than the loaded ones, e.g. through cold starts: give a number).
    """
    found = siblings(trace_path)
    name = os.path.basename(os.fspath(trace_path))
    if len(found) < 2 or not any(load > 0 for load in found):
        raise InputError("delays.slope", f"a fitted slope needs traces of other loads beside {name} "
                                         f"(the same name with load0.25, load0.50, ...); found none")
    slope = fit_values({load: load_trace(path) for load, path in found.items()})
    if not slope > 0:
        raise InputError("delays.slope", f"the fit over {len(found)} loads of {name} gives {slope:.4g} s per unit "
                                         "load (the unloaded trace is the slower one); give a number instead")
    return slope
