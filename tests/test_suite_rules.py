"""The test suite's own rules, read from its source: helpers come from modules, skips say why, sizes are real.

- No module under ``tests/`` imports a ``test_*`` module: shared code lives in
  ``helpers.py`` (serial), ``mpitools.py`` (under ``mpiexec``) or ``conftest.py``.
- No ``except ImportError``: a missing prerequisite fails, or skips with its
  reason shown (``pytest.importorskip`` only for the optional ``analysis`` extra).
- Every ``skipif`` gives its reason.
- Every ``world_sizes`` mark lists at least two of ``tests/run-all.sh``'s
  default world sizes, one of them odd, so each MPI test still runs at two
  sizes, one odd, in the project's test command.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers import ROOT

TESTS = ROOT / "tests"
SOURCES = sorted(TESTS.glob("*.py"))
#: modules a test may skip on when missing: the optional extras (setup.cfg), not the test extra
OPTIONAL = {"matplotlib"}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls whose callee ends in ``name`` (``pytest.mark.skipif(...)``, ``pytest.importorskip(...)``)."""
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == name]


def _default_sizes() -> list[int]:
    script = (TESTS / "run-all.sh").read_text()
    found = re.search(r"SIZES=\$\{MPI_SIZES:-([\d ]+)\}", script)
    assert found, "tests/run-all.sh: no SIZES=${MPI_SIZES:-...} line"
    return [int(n) for n in found.group(1).split()]


def test_the_rules_see_every_test_module():
    names = {p.name for p in SOURCES}
    assert {"helpers.py", "mpitools.py", "conftest.py", "test_suite_rules.py", "test_mpi_launch.py"} <= names
    assert sum(name.startswith("test_") for name in names) >= 50


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_module_imports_a_test_module(path):
    imported = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    tests = [name for name in imported if re.match(r"(tests\.)?test_", name)]
    assert tests == [], f"{path.name} imports {tests}: move what it shares to helpers.py, mpitools.py or conftest.py"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_silent_skip(path):
    tree = _parse(path)
    caught = [ast.unparse(handler.type) for handler in ast.walk(tree)
              if isinstance(handler, ast.ExceptHandler) and handler.type is not None
              and re.search(r"\b(ImportError|ModuleNotFoundError)\b", ast.unparse(handler.type))]
    assert caught == [], f"{path.name} catches {caught}: a missing prerequisite must fail or skip with its reason"
    optional = [ast.literal_eval(call.args[0]) for call in _calls(tree, "importorskip")]
    assert set(optional) <= OPTIONAL, f"{path.name} skips without {set(optional) - OPTIONAL}, which it requires"
    unexplained = [call.lineno for call in _calls(tree, "skipif") if not any(k.arg == "reason" for k in call.keywords)]
    assert unexplained == [], f"{path.name}: skipif without a reason at lines {unexplained}"


def _world_sizes_marks() -> list[tuple[str, int, tuple[int, ...]]]:
    marks = []
    for path in SOURCES:
        for call in _calls(_parse(path), "world_sizes"):
            if ast.unparse(call.func).startswith("pytest.mark."):
                marks.append((path.name, call.lineno, tuple(ast.literal_eval(arg) for arg in call.args)))
    return marks


def test_world_sizes_keep_two_default_sizes_one_odd():
    defaults = _default_sizes()
    assert len(defaults) >= 2 and any(n % 2 for n in defaults), defaults
    marks = _world_sizes_marks()
    assert marks, "no world_sizes mark found: is the marker still used?"
    for name, line, sizes in marks:
        runs_at = [n for n in sizes if n in defaults]
        assert len(runs_at) >= 2 and any(n % 2 for n in runs_at), \
            f"{name}:{line}: world_sizes{sizes} runs at {runs_at} of run-all's {defaults}: needs two, one odd"
