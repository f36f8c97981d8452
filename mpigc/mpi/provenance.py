"""Provenance attributes of an MPI run (shared by the single-round and sequential runtimes)."""
from __future__ import annotations

import mpi4py
from mpi4py import MPI


def mpi_attrs(comm: MPI.Comm, hosts) -> dict:
    """Return what an MPI run adds to its provenance: library, hosts, world size, mpi4py's version.

    ``mpi_library`` is the first non-empty line of ``MPI.Get_library_version()``
    with NULs removed: Open MPI's string ends in a NUL, which HDF5 variable-length
    string attributes reject, and an implementation may return an empty string.
    """
    lines = (line.strip() for line in MPI.Get_library_version().replace("\0", "").splitlines())
    library = next((line for line in lines if line), "unknown")
    return {"world_size": comm.size, "mpi_library": library, "hosts": sorted(set(hosts)),
            "mpi4py": mpi4py.__version__}
