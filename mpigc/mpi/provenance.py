"""Provenance attributes of an MPI run (shared by the single-round and sequential runtimes)."""
from __future__ import annotations

import mpi4py
from mpi4py import MPI

from mpigc.config import Config
from mpigc.core import provenance


def run_attrs(config: Config, code, label: str, comm: MPI.Comm, hosts) -> dict:
    """Provenance of an MPI run: library, hosts, world size, the resolved config.

    ``mpi_library`` is the first non-empty line of ``MPI.Get_library_version()``
    with NULs removed: Open MPI's string ends in a NUL, which HDF5 variable-length
    string attributes reject, and an implementation may return an empty string.
    """
    lines = (line.strip() for line in MPI.Get_library_version().replace("\0", "").splitlines())
    library = next((line for line in lines if line), "unknown")
    return provenance.run_attrs("mpi", config, code, label, code.workers, world_size=comm.size,
                                mpi_library=library, hosts=sorted(set(hosts)), mpi4py=mpi4py.__version__)
