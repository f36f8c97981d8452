"""The package's module graph: no import cycles (lazy imports included), backends independent.

import-linter (``lint-imports`` in CI) holds the layers; this test holds what
its contracts cannot say: that no two modules of ``mpigc`` import each other
through any chain, and that importing the math, models and workloads loads
neither h5py nor mpi4py.
"""
from __future__ import annotations

import subprocess
import sys

import grimp  # import-linter's graph builder: the test extra installs it
import networkx as nx
import pytest


def _graph():
    graph = grimp.build_graph("mpigc", include_external_packages=False)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    return edges


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, f"import cycles in mpigc: {cycles[:5]}"


def test_graph_covers_the_package():
    graph = _graph()
    # a graph that lost its edges would pass the cycle test for nothing
    assert {"mpigc.core.entries", "mpigc.sim.driver", "mpigc.mpi.launch"} <= set(graph.nodes)
    assert graph.has_edge("mpigc.sim.driver", "mpigc.core.entries")


def test_backends_never_import_each_other():
    graph = _graph()
    sim = {m for m in graph.nodes if m.startswith("mpigc.sim")}
    mpi = {m for m in graph.nodes if m.startswith("mpigc.mpi")}
    crossing = [(a, b) for a, b in graph.edges if (a in sim and b in mpi) or (a in mpi and b in sim)]
    assert not crossing


@pytest.mark.parametrize("module", ["mpigc.codes", "mpigc.delays", "mpigc.workloads", "mpigc.config"])
def test_lower_layers_load_neither_h5py_nor_mpi4py(module):
    code = (f"import sys, {module}\n"
            "bad = sorted(m for m in ('h5py', 'mpi4py', 'mpigc.results') if m in sys.modules)\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import {module} loaded {out.stdout.strip()}"
