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


def _failed(workload, what: str, exc: Exception) -> PluginFailure:
    text = " ".join(str(exc).split())[:200]
    return PluginFailure(f"workload plug-in {label(workload)} failed computing {what}: {type(exc).__name__}: {text}")


def _check_shape(workload, grad, what: str) -> None:
    shape = np.shape(grad)
    if shape != (workload.dim,):
        raise PluginFailure(f"workload plug-in {label(workload)} returned a gradient of shape {shape} for {what}; "
                            f"expected ({workload.dim},) (its dimension)")


def full_gradient(workload, model: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``workload.full_gradient(model)``, checked as :func:`chunk_gradient` checks a chunk's."""
    if not is_plugin(workload):
        return workload.full_gradient(model)
    try:
        grad, loss = workload.full_gradient(model)
    except Exception as exc:   # noqa: BLE001 - whatever a plug-in raises is reported by name
        raise _failed(workload, "the full gradient", exc) from exc
    _check_shape(workload, grad, "the full gradient")
    return grad, loss


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
    try:
        out = workload.chunk_gradient_blocks(model, chunk, block_rows, should_stop)
    except Exception as exc:   # noqa: BLE001 - whatever a plug-in raises is reported by name
        raise _failed(workload, f"chunk {chunk}", exc) from exc
    if out is not None:
        _check_shape(workload, out[0], f"chunk {chunk}")
    return out


def chunk_gradient_into(workload, model: np.ndarray, chunk: int, out: np.ndarray, block_rows: int | None = None,
                        should_stop: Callable[[], bool] | None = None) -> float | None:
    """Return ``workload.chunk_gradient_into(...)`` (the gradient written into ``out``), checked as above.

    A built-in workload computes in place; a plug-in's gradient comes from
    :func:`chunk_gradient` (its failures named, its shape checked) and is copied in.
    """
    if not is_plugin(workload):
        return workload.chunk_gradient_into(model, chunk, out, block_rows, should_stop)
    got = chunk_gradient(workload, model, chunk, block_rows, should_stop)
    if got is None:
        return None
    out[...] = got[0]
    return got[1]
