"""A non-editable install carries the whole package; provenance takes any MPI library string.

The package check runs setuptools' ``build_py`` (the step that collects a
wheel's files) into a temporary directory: offline, about a second, and it
reads the same ``setup.cfg`` a wheel or sdist build reads, so a subpackage
without ``__init__.py`` or a data file outside ``package_data`` fails here
instead of in a user's ``pip install .``.
"""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
from helpers import ROOT

from mpigc import results

PACKAGE = ROOT / "mpigc"


def files_on_disk() -> set[str]:
    """Every file of the package in the checkout, relative to the checkout (caches left out)."""
    return {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
            and not p.name.startswith(".")}


def test_every_source_directory_is_a_package():
    dirs = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(str(d.relative_to(ROOT)) for d in dirs if not (d / "__init__.py").is_file())
    assert missing == [], f"directories with modules but no __init__.py (left out of wheels): {missing}"


def test_build_collects_every_package_file(tmp_path):
    lib = tmp_path / "lib"
    # Run from the checkout, as a wheel build does; -d keeps every output under tmp_path.
    proc = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                           "build_py", "-d", str(lib)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    built = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file() and p.suffix != ".pyc"}
    on_disk = files_on_disk()
    assert "mpigc/mpi/launch.py" in on_disk and "mpigc/default.toml" in on_disk
    assert sorted(on_disk - built) == [], "files in the checkout that a wheel would not carry"
    assert sorted(built - on_disk) == [], "files a wheel would carry that are not in the checkout"


LIBRARY_STRINGS = [
    ("Open MPI v5.0.11, package: Open MPI root Distribution, ident: 5.0.11, repo rev: v5.0.11, Oct 2025\0",
     "Open MPI v5.0.11, package: Open MPI root Distribution, ident: 5.0.11, repo rev: v5.0.11, Oct 2025"),
    ("MPICH Version:      5.0.2\nMPICH Release date: unreleased\n", "MPICH Version:      5.0.2"),
    ("\n  \0\nIntel(R) MPI Library 2021.19 for Linux* OS\n", "Intel(R) MPI Library 2021.19 for Linux* OS"),
    ("", "unknown"),
    ("\0\0", "unknown"),
]


@pytest.mark.parametrize("raw, expected", LIBRARY_STRINGS)
def test_mpi_library_provenance_takes_any_library_string(raw, expected, monkeypatch, tmp_path):
    from mpigc.mpi import provenance
    monkeypatch.setattr(provenance.MPI, "Get_library_version", lambda: raw)
    attrs = provenance.mpi_attrs(SimpleNamespace(size=5), ["node1", "node1"])
    assert attrs["mpi_library"] == expected
    assert attrs["hosts"] == ["node1"] and attrs["world_size"] == 5
    # The attribute must survive HDF5 (a NUL here aborted rank 0 under Open MPI).
    path = tmp_path / "r.h5"
    writer = results.ResultFile(path).new_run("crc", attrs)
    writer.flush()
    (run,) = results.read_runs(path)
    assert run.attrs["mpi_library"] == expected
