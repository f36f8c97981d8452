"""The conformance kit (mpigc.testing, ``mpigc check``): every built-in passes, wrong decoders fail.

The decoding checks run in-process with one seed per instance shape and no
MPI run (``mpi=0``); one test runs the kit's backend check under mpiexec.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, own_mpiexec

from mpigc.codes import SCHEMES
from mpigc.errors import InputError
from mpigc.testing import FAIL, PASS, SKIP, check_scheme

CHECKS = ["plan", "exact decodes", "decode times", "final blocks", "coef_error", "wall clocks", "backends"]

#: built-ins and the config each needs to plan on the kit's instances
BUILT_INS = [("uncoded", []), ("uncoded", ["code.rescale=true"]), ("frc", []), ("crc", []), ("partial", []),
             ("partial", ['code.transport="request"']), ("partial", ["code.use_partial=false"]), ("poly", []),
             ("nested", ["code.ladder=[0, 1]"]), ("stochastic", []), ("stochastic", ["code.p=0.5"]), ("bcc", [])]


def mpigc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpigc", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_the_list_covers_every_single_round_built_in():
    sequential = {n for n in SCHEMES.names() if getattr(SCHEMES.lookup(n), "sequential", False)}
    assert set(SCHEMES.names()) - sequential == {name for name, _ in BUILT_INS}


@pytest.mark.parametrize("name, overrides", BUILT_INS, ids=[" ".join([n, *o]) for n, o in BUILT_INS])
def test_every_built_in_passes(name, overrides):
    results = check_scheme(name, overrides, seeds=1, mpi=0)
    assert [r.check for r in results] == CHECKS
    assert all(r.status == PASS for r in results), "\n".join(r.line() for r in results)


def test_exact_decodes_are_checked_where_they_happen():
    """A kit that never saw an exact decode would pass a wrong decoder: crc decodes exactly in most rounds."""
    exact = next(r for r in check_scheme("crc", seeds=1, mpi=0) if r.check == "exact decodes")
    assert int(exact.detail.split()[0]) > 20


@pytest.mark.parametrize("name", ["m-sgc", "sr-sgc", "gc-seq"])
def test_sequential_codes_are_not_applicable(name):
    (result,) = check_scheme(name, mpi=0)
    assert result.status == SKIP and "sequential" in result.detail


def test_a_decoder_off_by_one_percent_fails_and_says_what():
    results = {r.check: r for r in check_scheme("tests.plugin_schemes:PerturbedCrc", seeds=1, mpi=0)}
    assert results["exact decodes"].status == FAIL
    assert "exact decode off the true gradient by 0.01" in results["exact decodes"].detail
    assert results["coef_error"].status == FAIL and "coef_error reported" in results["coef_error"].detail
    assert results["backends"].status == FAIL and "grad_error" in results["backends"].detail
    assert results["decode times"].status == PASS  # what it gets right, it is not blamed for


def test_a_scheme_that_reads_the_clock_fails_the_clock_check():
    results = {r.check: r for r in check_scheme("tests.plugin_schemes:ClockedCrc", seeds=1, mpi=0)}
    assert results["wall clocks"].status == FAIL
    assert results["exact decodes"].status == PASS


def test_check_command_prints_one_line_per_check_and_exits_1_on_failure():
    proc = mpigc("check", "tests.plugin_schemes:PerturbedCrc", "--mpi", "0", "--seeds", "1")
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert [line.split(":")[0].split(None, 1)[1] for line in lines] == CHECKS
    assert lines[1].startswith("FAIL  exact decodes: ")
    good = mpigc("check", "tests.plugin_schemes:MyCrc", "--mpi", "0", "--seeds", "1")
    assert good.returncode == 0 and "module path tests.plugin_schemes:MyCrc" in good.stdout


@pytest.mark.parametrize("args", [["tests.no_such_module:X"], ["tests.plugin_schemes:NotAScheme"],
                                  ["crc", "--set", "code.nonsense=1"]])
def test_check_bad_input_exits_2_with_one_line(args):
    proc = mpigc("check", *args, "--mpi", "0")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("mpigc: error: ")


def test_bad_input_is_raised_before_any_check():
    with pytest.raises(InputError):
        check_scheme("crc", ["code.nonsense=1"], mpi=0)


@own_mpiexec
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpiexec not on PATH (where the kit looks)")
def test_backends_agree_under_mpiexec():
    (result,) = [r for r in check_scheme("tests.plugin_schemes:MyCrc", seeds=1, mpi=4) if r.check == "backends"]
    assert result.status == PASS and "mpiexec -n 4 agree" in result.detail, result.line()
