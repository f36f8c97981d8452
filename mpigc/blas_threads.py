"""BLAS threads: one per process under ``run``, ``simulate`` and ``tune``, unless the user chose.

An idle OpenBLAS thread spins after each threaded call. With MPI ranks
sharing the cores this made rounds ~15× slower; in ``simulate`` a 256-worker
sequential run took 7.7 s wall / 15 s CPU with OpenBLAS's default two threads
on an idle 2-core machine and 205 s wall while other jobs ran, against
6.4 s with one thread. The matrices here are small (at most a few hundred
rows), so one thread loses nothing.
"""
from __future__ import annotations

import os

#: thread-count variables of the BLAS libraries numpy may use; any of them set means the user chose
THREAD_COUNT_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_limiter = None  # the active threadpoolctl limiter, kept for the process's lifetime


def user_set_thread_count() -> bool:
    """Whether the user set any BLAS thread-count variable (then mpigc leaves threads alone)."""
    return any(var in os.environ for var in THREAD_COUNT_VARIABLES)


def pin_blas() -> bool:
    """Limit BLAS to one thread in this process unless the user set a thread count; return whether it did.

    The variables are set first, which is all a BLAS library loaded later
    (and every child process) needs; ``threadpoolctl`` then limits any BLAS
    already loaded, e.g. by numpy imported before the command ran.
    """
    global _limiter
    if user_set_thread_count():
        return False
    for var in THREAD_COUNT_VARIABLES:
        os.environ[var] = "1"
    import numpy  # noqa: F401  (loads the BLAS library so threadpoolctl can find it)
    from threadpoolctl import threadpool_limits

    _limiter = threadpool_limits(limits=1, user_api="blas")
    return True


def thread_counts() -> list[int]:
    """Thread counts of every BLAS library loaded in this process (for tests and benchmarks)."""
    from threadpoolctl import threadpool_info

    return [int(lib["num_threads"]) for lib in threadpool_info() if lib.get("user_api") == "blas"]
