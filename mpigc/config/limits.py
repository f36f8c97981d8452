"""Memory limits checked before anything is allocated: estimate a run's peak, compare it to the machine.

``validate --set code.workers=1000000000`` used to grow until the kernel
killed it, and a huge ``workload.features`` failed deep inside numpy with a
traceback. :func:`check_memory` runs inside :func:`mpigc.config.load_config`,
so ``validate``, ``plan``, ``simulate`` and ``run`` all refuse such a config
(exit 2, one line naming the key, the estimate and the budget) before the
first O(m²) or O(m·N) array exists.

The estimate (:func:`estimate`) adds up the big arrays one process of the
job holds at its peak, from the config alone (no scheme is built):

* **plan**: per scheme entry, the m × N assignment (1 byte a cell) and one
  m × N table of 8-byte numbers every scheme keeps (positions, the code
  matrix); all entries are planned before the first runs. Measured: 9.0
  bytes per cell for partial and crc at m = 4000.
* **rounds**: the ``rounds`` rows a run collects for its summary (``run.rounds``).
* **data** (under ``run``, or with ``run.verify``): synthetic samples × (features + 1)
  float64 for a process that verifies (it builds every chunk), a worker's
  load × rows per chunk otherwise. User datasets are read a chunk at a time
  and are not counted.
* **vectors**: under ``run``, rank 0 holds up to one coded vector of d / l
  numbers per worker (the master's accumulator) plus the model and gradient;
  a verifying process holds the model and gradients (d numbers each).

It is a lower bound of the real peak (Python objects, the MPI library and
temporary copies come on top), so a refused config would not have fitted.
Under MPI it is one process's estimate: ranks sharing a host share its
memory, which this check does not add up.
"""
from __future__ import annotations

import math
import os
import resource
from typing import Any

from mpigc.codes.registry import scheme_class
from mpigc.errors import InputError
from mpigc.workloads.base import WORKLOADS

#: environment variable that overrides the memory budget (bytes, or with a K/M/G/T suffix)
BUDGET_ENV = "MPIGC_MEMORY_BUDGET"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
PLAN_BYTES_PER_CELL = 9          # bool assignment + one 8-byte m × N table (module docstring)
ROUND_ROW_BYTES = 80             # mpigc.results.ROUNDS_DTYPE's itemsize, without importing h5py


def fmt_bytes(n: float) -> str:
    """``n`` bytes as a short binary-prefixed size, e.g. ``7.3 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def _parse_size(text: str) -> int:
    """Parse ``64G``, ``1.5T``, ``2048`` (bytes); InputError keyed by the variable otherwise."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _UNITS and raw[-1:] else ""
    try:
        value = float(raw[: len(raw) - len(unit)]) * _UNITS[unit]
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(BUDGET_ENV, f"must be a positive size such as 64G or 2048M, got {text!r}")
    return int(value)


def _cgroup_limit() -> int | None:
    """Return the memory limit of this process's cgroup (v2 or v1), or None if unlimited/unknown."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:      # v1 writes a huge number for "no limit"
            return int(text)
    return None


def memory_budget() -> tuple[int, str]:
    """Return the memory one process may plan to use, and where that number comes from.

    ``$MPIGC_MEMORY_BUDGET`` if set; otherwise the smallest of the machine's
    physical memory, the cgroup's memory limit and ``RLIMIT_AS``.

    Raises
    ------
    InputError
        If ``$MPIGC_MEMORY_BUDGET`` is not a positive size.
    """
    text = os.environ.get(BUDGET_ENV)
    if text:
        return _parse_size(text), f"${BUDGET_ENV}"
    found: list[tuple[int, str]] = []
    try:
        found.append((os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical memory"))
    except (ValueError, OSError, AttributeError):
        pass
    cgroup = _cgroup_limit()
    if cgroup is not None:
        found.append((cgroup, "cgroup memory limit"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
        found.append((soft, "RLIMIT_AS"))
    return min(found) if found else (2**63, "unknown")


def _held_chunks(code: Any, chunks: int) -> int:
    """Return how many chunks' data one worker of ``code`` holds: its load, or all N (``bcc`` draws per round)."""
    if (code.assignment or scheme_class(code.scheme).default_assignment) == "all":
        return chunks
    return min(int(code.load), chunks)


def _dimension(workload: Any) -> int | None:
    """Gradient length d of a synthetic workload (None for a user dataset: not opened here)."""
    if workload.dataset != "synthetic":
        return None
    return int(WORKLOADS.lookup(workload.model).dimension(workload.features, workload.hidden))


def estimate(config: Any) -> dict[str, list[tuple[str, str, int]]]:
    """Return the big arrays of each kind of process of a resolved config, before anything is built.

    Parameters
    ----------
    config : mpigc.config.Config

    Returns
    -------
    dict
        Process label (``"simulator"``; ``"rank 0"`` and ``"worker"`` under
        MPI) to a list of ``(key, what, bytes)``: the config key that sets
        the term's size, a short description, and its size.
    """
    codes = config.codes
    m = int(codes[0].workers)
    mpi = config.backend == "mpi"
    wl = config.workload
    verify = bool(config.run.verify)
    chunks = [int(c.chunks or m) for c in codes]
    plan_key = "code.chunks" if any(c.chunks for c in codes) else "code.workers"
    common = [(plan_key, f"{len(codes)} plan(s) of {m} workers x {max(chunks)} chunks",
               sum(PLAN_BYTES_PER_CELL * m * n for n in chunks))]
    master = common + [("run.rounds", f"{config.run.rounds} rounds rows", ROUND_ROW_BYTES * config.run.rounds)]
    d = _dimension(wl)
    synthetic = d is not None
    data_key = "workload.features" if wl.features >= wl.samples else "workload.samples"
    row_bytes = 8 * (wl.features + 1)
    if synthetic and verify:
        master.append((data_key, f"{wl.samples} x {wl.features + 1} samples (verification)", wl.samples * row_bytes))
    if synthetic and (mpi or verify):
        master.append(("workload.features", f"model and gradients ({d} numbers)", 4 * 8 * d))
    if not mpi:
        return {"simulator": master}
    parts = min(int(c.parts) for c in codes)
    if synthetic:
        master.append(("workload.features", f"accumulator: {m} vectors of {math.ceil(d / parts)} numbers",
                       8 * m * math.ceil(d / parts)))
    worker = list(common)
    if synthetic:
        rows = math.ceil(wl.samples / min(chunks))
        load = max(_held_chunks(c, n) for c, n in zip(codes, chunks))
        worker.append((data_key, f"{load} chunks of {rows} x {wl.features + 1} samples", load * rows * row_bytes))
        worker.append(("workload.features", f"model and gradients ({d} numbers)", 4 * 8 * d))
    return {"rank 0": master, "worker": worker}


def check_memory(config: Any) -> None:
    """Refuse a config whose estimated peak (:func:`estimate`) exceeds :func:`memory_budget`.

    Raises
    ------
    InputError
        Keyed by the config key of the largest term, giving the estimate,
        its largest term and the budget (with the variable that raises it).
    """
    budget, source = memory_budget()
    for process, terms in estimate(config).items():
        total = sum(b for _, _, b in terms)
        if total <= budget:
            continue
        key, what, size = max(terms, key=lambda t: t[2])
        raise InputError(key, f"needs at least {fmt_bytes(total)} of memory per {process} process "
                              f"({what}: {fmt_bytes(size)}), more than the {fmt_bytes(budget)} of {source}; "
                              f"make it smaller (or set ${BUDGET_ENV} if this machine is not the one that runs it)")
