"""One chunk's gradient from a workload, with a plug-in's failures named (both backends).

A workload from outside mpigc (a plug-in, ``workload.model = "pkg.mod:Cls"``)
that raises, or returns a gradient of the wrong shape, ends the run with one
line naming the plug-in and the problem (:class:`~mpigc.errors.PluginFailure`,
exit 1) rather than a traceback deep in a worker or an MPI truncation error
on rank 0.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mpigc.errors import PluginFailure


def label(obj: object) -> str:
    """Return ``module:Class`` of an object's class, as a plug-in is named in a config."""
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def is_plugin(obj: object) -> bool:
    """Whether an object's class comes from outside the mpigc package."""
    module = type(obj).__module__
    return not (module == "mpigc" or module.startswith("mpigc."))


def chunk_gradient(workload, model: np.ndarray, chunk: int, block_rows: int | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, float] | None:
    """Return ``workload.chunk_gradient_blocks(...)``, checked: a plug-in's failure becomes a PluginFailure.

    Raises
    ------
    PluginFailure
        If a plug-in workload raises, or its gradient is not of shape ``(workload.dim,)``.
    """
    if not is_plugin(workload):
        return workload.chunk_gradient_blocks(model, chunk, block_rows, should_stop)
    name = label(workload)
    try:
        out = workload.chunk_gradient_blocks(model, chunk, block_rows, should_stop)
    except Exception as exc:   # noqa: BLE001 - whatever a plug-in raises is reported by name
        text = " ".join(str(exc).split())[:200]
        raise PluginFailure(f"workload plug-in {name} failed computing chunk {chunk}: "
                            f"{type(exc).__name__}: {text}") from exc
    if out is not None:
        shape = np.shape(out[0])
        if shape != (workload.dim,):
            raise PluginFailure(f"workload plug-in {name} returned a gradient of shape {shape} for chunk {chunk}; "
                                f"expected ({workload.dim},) (its dimension)")
    return out
