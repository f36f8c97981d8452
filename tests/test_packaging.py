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
from pathlib import Path
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


def _setup(tmp_path: Path, *commands: str) -> None:
    """Run setuptools commands from the checkout with every output under ``tmp_path`` (the checkout stays clean)."""
    proc = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                           "egg_info", "-e", str(tmp_path), *commands], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_wheel_and_sdist_carry_the_license(tmp_path):
    """The wheel's dist-info and the sdist hold LICENSE as it is in the checkout; the metadata names it."""
    import tarfile
    import zipfile

    import wheel as bdist_wheel_provider  # noqa: F401 - the test extra installs it; missing is a failure

    import mpigc

    license_text = (ROOT / "LICENSE").read_bytes()
    assert license_text.startswith(b"MIT License") and b"the mpigc authors" in license_text
    _setup(tmp_path, "build", "-b", str(tmp_path / "build"), "bdist_wheel", "-b", str(tmp_path / "bdist"),
           "-d", str(tmp_path / "dist"), "sdist", "-d", str(tmp_path / "dist"))
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"mpigc-{mpigc.__version__}-py3-none-any.whl"   # the version is mpigc.__version__
    with zipfile.ZipFile(wheel) as zf:
        info = f"mpigc-{mpigc.__version__}.dist-info"
        licenses = [n for n in zf.namelist() if n.startswith(info + "/") and n.rsplit("/", 1)[-1] == "LICENSE"]
        assert len(licenses) == 1, zf.namelist()
        assert zf.read(licenses[0]) == license_text
        metadata = zf.read(f"{info}/METADATA").decode().splitlines()
    assert "License-File: LICENSE" in metadata and f"Version: {mpigc.__version__}" in metadata
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        top = f"mpigc-{mpigc.__version__}"
        for name in ("LICENSE", "CITATION.cff", "CHANGELOG.md"):
            member = tf.extractfile(f"{top}/{name}")
            assert member is not None and member.read() == (ROOT / name).read_bytes(), name


def test_the_changelog_and_citation_follow_the_one_version():
    """``mpigc.__version__`` is the only place the version is written; the changelog's newest release is it."""
    import re

    import mpigc

    releases = re.findall(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert releases and releases[0] == mpigc.__version__, releases
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert "cff-version: 1.2.0" in citation and "\nreferences:" in citation
    assert not re.search(r"^version:", citation, re.M)      # cited versions come from mpigc --version
    setup_cfg = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert "version = attr: mpigc.__version__" in setup_cfg and "license_files = LICENSE" in setup_cfg
