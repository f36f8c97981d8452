"""Checks of everything a run can get wrong before it starts: ``run`` and ``simulate`` alike.

A bad name in the third entry of a scheme list, or too few samples for the
second entry's chunks, must not be found after the first entry has run
(and written half a file, or, under MPI, aborted every rank with a
traceback). :func:`check_run` builds what the run will build, entry by
entry, with exactly the sizes it will use, and raises :class:`InputError`
on the first problem. No MPI and no output here: the MPI launcher calls it
on rank 0 and broadcasts the verdict.

Limits that need no scheme (non-finite or endless timeouts and deadlines,
seeds of 2^64 and more, sizes whose plans or data cannot fit in memory) are
checked earlier still, by :func:`mpigc.config.load_config` (see
:mod:`mpigc.config.limits`): nothing of size m x N exists before they pass.
"""
from __future__ import annotations

import os

from mpigc import results
from mpigc.config import Config
from mpigc.core.entries import SEQUENTIAL, RunPlan, plan_run
from mpigc.core.inputs import build_workload, workload_dim


def check_run(config: Config, *, backend: str, name: str | None = None,
              out: str | os.PathLike | None = None) -> RunPlan:
    """Check a resolved config for ``run`` (``backend="mpi"``) or ``simulate`` (``"sim"``); return its plan.

    Builds every scheme entry, checks the straggler model covers the rounds,
    builds each entry's workload for the chunks it will use (the plan's
    chunks, or a sequential scheme's units) where the backend builds one
    (always under MPI; with ``run.verify`` in the simulator), checks every
    run name and that ``out`` can be written.

    Returns
    -------
    RunPlan
        The plan the run goes on with (:mod:`mpigc.core.lifecycle`): it is not built again.

    Raises
    ------
    InputError
        Naming the key (or ``--name``, ``--out``) and the problem.
    """
    plan = plan_run(config, name)
    entries = plan.entries
    if name is not None:
        results.check_run_name(name, "--name")
    for entry in entries:
        key = "--name" if (name and len(entries) == 1) else ("code.name" if entry.code.name else "code.scheme")
        results.check_run_name(plan.label(entry), key)
    if backend == "mpi" or config.run.verify:
        built: set[int] = set()
        for entry in entries:
            chunks = int(entry.scheme.units if plan.regime == SEQUENTIAL else entry.scheme.plan.chunks)
            if chunks not in built:
                # a user dataset is scanned for non-finite values once, by the first build
                build_workload(config, chunks, check=not built)
                built.add(chunks)
    else:
        workload_dim(config)  # opens a user dataset: a missing file is bad input now
    if out is not None:
        results.check_writable(out)
    return plan
