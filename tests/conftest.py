"""What every test shares: the ``world_sizes`` marker of the MPI suite.

``tests/run-all.sh`` runs every ``mpi``-marked test at each of ``MPI_SIZES``
(default 3, 6, 9 and 13 ranks). A test whose checks do not depend on the
world size, or that costs much and gains nothing from being repeated, says
where it runs::

    pytestmark = [pytest.mark.mpi(min_size=3), pytest.mark.world_sizes(3, 9)]

and is skipped, with that reason in the ``-ra`` summary, at the other sizes.
``tests/test_suite_rules.py`` holds every use to at least two of run-all's
default sizes, one of them odd. ``MPIGC_ALL_WORLD_SIZES=1`` runs every test
at every size. Shared helpers are modules, not fixtures: ``helpers.py``
(serial) and ``mpitools.py`` (under ``mpiexec``).
"""
from __future__ import annotations

import os

import pytest

#: set to 1 to run world_sizes-marked tests at every world size
ALL_SIZES_ENV = "MPIGC_ALL_WORLD_SIZES"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a ``world_sizes``-marked MPI test at the world sizes it does not list (every rank alike)."""
    mark = item.get_closest_marker("world_sizes")
    if mark is None or not item.config.getoption("with_mpi", default=False) or os.environ.get(ALL_SIZES_ENV) == "1":
        return
    from mpi4py import MPI  # only under --with-mpi: the serial suite never initialises MPI here

    size = MPI.COMM_WORLD.size
    if size not in mark.args:
        sizes = ", ".join(map(str, mark.args))
        pytest.skip(f"runs at world sizes {sizes} ({size} ranks here; {ALL_SIZES_ENV}=1 runs it at every size)")
