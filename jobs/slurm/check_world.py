"""Refuse to go on unless the MPI world size equals SLURM_NTASKS.

    srun --mpi=pmix python jobs/slurm/check_world.py

A wrong ``srun --mpi=`` plugin silently starts SLURM_NTASKS separate
one-rank jobs instead of one job; every batch script of ``jobs/slurm/`` runs
this first. Exit 0 when the sizes agree, 3 (with one line from rank 0)
otherwise, 2 when SLURM_NTASKS is not set.
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    """Compare ``COMM_WORLD.size`` with ``SLURM_NTASKS``; return the exit code."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    expected = os.environ.get("SLURM_NTASKS", "")
    if not expected.isdigit():
        if comm.rank == 0:
            print("check_world: error: SLURM_NTASKS is not set; run inside a SLURM allocation", file=sys.stderr)
        return 2
    if comm.size != int(expected):
        if comm.rank == 0:
            print(f"check_world: error: MPI world size {comm.size} != SLURM_NTASKS {expected}: the launcher did not "
                  "start one MPI job over all tasks. Check srun's --mpi plugin (srun --mpi=list; try pmix or pmi2) "
                  "or launch with mpirun -n $SLURM_NTASKS", file=sys.stderr)
        return 3
    if comm.rank == 0:
        print(f"check_world: MPI world size {comm.size} == SLURM_NTASKS ({MPI.Get_library_version().splitlines()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
