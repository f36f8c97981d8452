"""Plug-ins by module path: the run is the built-in's, provenance names them, bad ones are bad input.

The plug-ins live in tests/plugin_schemes.py (and tests/plugin_broken.py,
which fails while importing); the command-line tests run from the
repository root, where ``python -m`` finds the ``tests`` directory.
"""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from mpigc.config import load_config
from mpigc.errors import InputError
from mpigc.results import read_runs
from mpigc.sim.driver import simulate

PLUGINS = "tests.plugin_schemes"


def mpigc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpigc", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def _simulate(tmp_path, overrides: list[str], file: str = "r.h5") -> list:
    path = tmp_path / file
    simulate(load_config(None, ["run.rounds=30", "run.verify=true", "workload.features=20", "code.workers=6",
                                "code.load=3", *overrides], backend="sim"), str(path), log=io.StringIO())
    return read_runs(str(path))


def _same_rounds(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and all(np.array_equal(a[f], b[f], equal_nan=True) for f in a.dtype.names)


def test_a_subclass_by_module_path_gives_exactly_the_built_ins_rounds(tmp_path):
    crc, mine = _simulate(tmp_path, [f'code.scheme=["crc", "{PLUGINS}:MyCrc"]', 'delays.model="pareto"'])
    r = crc.tables["rounds"]
    assert np.bincount(r["status"], minlength=2)[0] == 30 and np.nanmax(r["grad_error"]) < 1e-9
    assert _same_rounds(r, mine.tables["rounds"])
    assert crc.attrs["plugins"] == []
    (record,) = mine.attrs["plugins"]
    assert record == {"key": "code.scheme", "name": f"{PLUGINS}:MyCrc", "source": "module path",
                      "module": PLUGINS, "attr": "MyCrc", "version": "0.0.test", "distribution": ""}
    info = mpigc("info", str(tmp_path / "r.h5"))
    said = [line for line in info.stdout.splitlines() if "plug-in" in line]
    assert said == [f"# {mine.name}: code.scheme = {PLUGINS}:MyCrc is a plug-in ({PLUGINS} 0.0.test, module path)"]


def test_model_and_workload_plug_ins_run_and_are_recorded(tmp_path):
    (built_in,) = _simulate(tmp_path, ['code.scheme="crc"', 'delays.model="constant"', "delays.factor=1.5",
                                       "delays.slow=[0, 1, 2, 3, 4, 5]"])
    (run,) = _simulate(tmp_path, ['code.scheme="crc"', f'delays.model="{PLUGINS}:Slow"',
                                  f'workload.model="{PLUGINS}:Half"'], "plugins.h5")
    # Slow is every worker 1.5 times slower, Half is least squares: the same rounds as the built-ins
    assert _same_rounds(built_in.tables["rounds"], run.tables["rounds"])
    assert [(p["key"], p["attr"]) for p in run.attrs["plugins"]] == [("delays.model", "Slow"),
                                                                     ("workload.model", "Half")]


BAD = {
    "code.scheme": ["tests.no_such_module:X", "tests.plugin_broken:X", f"{PLUGINS}:Nope", f"{PLUGINS}:NotAScheme",
                    f"{PLUGINS}:HalfAScheme", f"{PLUGINS}:not_a_class", f"{PLUGINS}:Slow"],
    "delays.model": ["tests.no_such_module:X", "tests.plugin_broken:X", f"{PLUGINS}:Nope", f"{PLUGINS}:LazyModel",
                     f"{PLUGINS}:MyCrc"],
    "workload.model": ["tests.no_such_module:X", "tests.plugin_broken:X", f"{PLUGINS}:Nope", f"{PLUGINS}:NoEvaluate",
                       f"{PLUGINS}:Slow"],
}
WHY = {"no_such_module": "cannot import", "plugin_broken": "cannot import", "Nope": "has no",
       "NotAScheme": "not a subclass", "HalfAScheme": "does not define decode_times, message_row",
       "not_a_class": "it is a int", "Slow": "not a subclass", "LazyModel": "does not define slowdown",
       "MyCrc": "not a subclass", "NoEvaluate": "does not define evaluate"}


@pytest.mark.parametrize("key, value", [(k, v) for k, values in BAD.items() for v in values])
def test_a_bad_plug_in_is_input_error_naming_the_key(key, value):
    with pytest.raises(InputError) as caught:
        load_config(None, [f'{key}="{value}"'], backend="sim")
    assert caught.value.key == key
    why = next(text for word, text in WHY.items() if word in value)
    assert why in caught.value.problem and "\n" not in str(caught.value), str(caught.value)


@pytest.mark.parametrize("key, value", [("code.scheme", "tests.plugin_broken:X"),
                                        ("delays.model", f"{PLUGINS}:LazyModel"),
                                        ("workload.model", f"{PLUGINS}:Nope")])
@pytest.mark.parametrize("command", ["simulate", "validate"])
def test_bad_plug_ins_exit_2_with_one_line_and_no_file(tmp_path, key, value, command):
    out = tmp_path / "r.h5"
    proc = mpigc(command, "--set", f'{key}="{value}"', *(["--out", str(out)] if command == "simulate" else []))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mpigc: error: {key}: plug-in"), proc.stderr
    assert not out.exists()


def test_a_bad_plug_in_in_a_later_scheme_entry_names_that_entry():
    with pytest.raises(InputError) as caught:
        load_config(None, [f'code.scheme=["crc", "{PLUGINS}:NotAScheme"]'], backend="sim")
    assert caught.value.key == "code.scheme[1]"


def test_schemes_lists_built_ins_and_a_module_path_with_its_origin():
    proc = mpigc("schemes", f"{PLUGINS}:MyCrc")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    mine = next(i for i, line in enumerate(lines) if line.startswith(f"{PLUGINS}:MyCrc "))
    assert any(f"from: module path {PLUGINS}:MyCrc (version 0.0.test)" in line for line in lines[mine:mine + 3])
    assert any(line.startswith("crc ") for line in lines) and "from: built-in" not in proc.stdout
    bad = mpigc("schemes", f"{PLUGINS}:NotAScheme")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_a_module_path_is_resolved_once_and_cached():
    from mpigc.codes import SCHEMES

    first = SCHEMES.lookup(f"{PLUGINS}:MyCrc")
    assert SCHEMES.lookup(f"{PLUGINS}:MyCrc") is first
    assert f"{PLUGINS}:MyCrc" not in SCHEMES.names()    # names are the registered ones and entry points
    assert SCHEMES.origin("crc").source == "built-in"
