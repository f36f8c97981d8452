"""The example plug-in package (examples/mpigc-example), pip-installed into a temporary directory.

``pip install --no-deps --no-build-isolation --target DIR`` installs the
package and its dist-info (with the ``mpigc.schemes`` entry point) into DIR;
the commands below run with DIR on ``PYTHONPATH``, so the environment running
the tests is never modified. Checked: the kit passes ``example-stochastic``
(including its run under mpiexec when mpiexec is on PATH: the entry point
resolved on every rank); ``simulate`` with the entry-point name and with the
module path gives exactly the built-in ``stochastic``'s rounds on the same
seed; provenance names the distribution and its version.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import MPIEXEC_GROUP, ROOT

from mpigc.results import read_runs

EXAMPLE = ROOT / "examples" / "mpigc-example"


def _can_build() -> bool:
    """setuptools builds wheels by itself from 70.1 on; before that it needs the wheel package."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    try:
        major, minor = (int(x) for x in importlib.metadata.version("setuptools").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (70, 1)


#: one worker builds the example once (a module fixture) and runs the kit, which starts mpiexec when on PATH
pytestmark = [MPIEXEC_GROUP,
              pytest.mark.skipif(not _can_build(), reason="no wheel builder (setuptools < 70.1 without wheel)")]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    """A directory holding the installed example (a copy is built: the checkout stays clean)."""
    work = tmp_path_factory.mktemp("example")
    source = shutil.copytree(EXAMPLE, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True,
                   text=True, timeout=300)
    assert (target / "mpigc_example" / "stochastic.py").exists()
    return target


def mpigc(site: pathlib.Path, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mpigc", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_the_environment_running_the_tests_is_untouched(site):
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("mpigc-example")
    assert importlib.util.find_spec("mpigc_example") is None


def test_schemes_lists_the_entry_point_with_its_distribution(site, tmp_path):
    proc = mpigc(site, "schemes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("example-stochastic "))
    assert any("from: entry point of mpigc-example 0.1.0 (mpigc_example.stochastic:Stochastic)" in line
               for line in lines[at:at + 3])


def test_registry_items_hold_the_installed_entry_point(site, tmp_path):
    """``items()`` loads entry points: with one installed, every listed name has its entry (no KeyError)."""
    code = ("from mpigc.codes import SCHEMES\n"
            "items = SCHEMES.items()\n"
            "assert [n for n, _ in items] == list(SCHEMES.names())\n"
            "assert all(entry is SCHEMES.lookup(n) for n, entry in items)\n"
            "name = 'example-stochastic'\n"
            "print(len(items), dict(items)[name].__module__, SCHEMES.origin(name).source)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, module, source = proc.stdout.split(maxsplit=2)
    assert int(count) >= 10 and module == "mpigc_example.stochastic" and source.strip() == "entry point"


def test_the_kit_passes_the_example(site, tmp_path):
    proc = mpigc(site, "check", "example-stochastic", "--seeds", "1", "--set", "code.p=0.5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("\nPASS ") == 7, proc.stdout


def test_entry_point_and_module_path_give_exactly_the_built_in(site, tmp_path):
    out = tmp_path / "r.h5"
    proc = mpigc(site, "simulate", "--out", str(out), "--set",
                 'code.scheme=["stochastic", "example-stochastic", "mpigc_example.stochastic:Stochastic"]',
                 "--set", "code.wait_for=6", "--set", "run.rounds=40", "--set", "run.verify=true",
                 "--set", "workload.features=20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    built_in, by_entry_point, by_path = read_runs(str(out))
    r = built_in.tables["rounds"]
    assert len(r) == 40 and np.all(r["status"] == 1)       # stochastic with p = 1 - 6/8 is never exact
    for run in (by_entry_point, by_path):
        other = run.tables["rounds"]
        assert all(np.array_equal(r[f], other[f], equal_nan=True) for f in r.dtype.names), run.name
    assert built_in.attrs["plugins"] == []
    (entry,) = by_entry_point.attrs["plugins"]
    assert (entry["source"], entry["distribution"], entry["version"]) == ("entry point", "mpigc-example", "0.1.0")
    (path,) = by_path.attrs["plugins"]
    assert (path["source"], path["module"], path["version"]) == ("module path", "mpigc_example.stochastic", "0.1.0")


def test_a_broken_entry_point_is_bad_input_only_when_used(site, tmp_path):
    """An entry point whose class vanished: listed as not loading; naming it is one line, exit 2."""
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    (broken / "mpigc_example" / "stochastic.py").write_text("raise ImportError('gone')\n")
    listing = mpigc(broken, "schemes", cwd=tmp_path)
    assert listing.returncode == 0 and "does not load" in listing.stdout
    proc = mpigc(broken, "validate", "--set", 'code.scheme="example-stochastic"', cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("mpigc: error: code.scheme: plug-in 'example-stochastic'"), proc.stderr
