"""One registry per extension point: config choices, suggestions, and a model added from the test suite."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import slow_first_worker

from mpigc.codes import SCHEMES, make_scheme
from mpigc.codes.assignments import ASSIGNMENTS, make_assignment
from mpigc.codes.ordering import ORDERINGS
from mpigc.config import CodeConfig, DelaysConfig, describe_keys, load_config
from mpigc.config import keys as config_keys
from mpigc.delays import MODELS, DelayModel
from mpigc.errors import InputError
from mpigc.registry import Registry
from mpigc.results import read_runs
from mpigc.sim.driver import simulate
from mpigc.workloads import WORKLOADS, make_workload


def test_registries_hold_the_built_ins():
    assert {"partial", "crc", "frc", "uncoded", "poly", "nested", "m-sgc", "sr-sgc", "gc-seq"} <= set(SCHEMES)
    assert set(ORDERINGS.names()) == {"natural", "random", "optimal", "greedy"}
    assert {"cyclic", "frc", "uncoded", "graph:circulant", "graph:random-regular", "file:PATH",
            "random"} == set(ASSIGNMENTS)
    assert {"none", "constant", "shifted-exponential", "pareto", "bimodal", "gilbert-elliott", "bursty",
            "trace"} <= set(MODELS)
    assert set(WORKLOADS.names()) == {"least-squares", "logistic", "mlp"}


@pytest.mark.parametrize("key, registry", [("code.scheme", SCHEMES), ("code.ordering", ORDERINGS),
                                           ("code.assignment", ASSIGNMENTS), ("delays.model", MODELS),
                                           ("workload.model", WORKLOADS)])
def test_config_choices_are_the_registry_names(key, registry):
    """``--keys`` lists exactly the registry's names for the key (a new entry shows up with no config edit)."""
    assert config_keys.REGISTRY_OF[key] is registry
    row = next(line for line in describe_keys().splitlines() if line.startswith(key + " "))
    listed = {n.strip('"') for n in " ".join(_allowed_cell(key)).replace("|", " ").split()}
    assert set(registry.names()) <= listed, (row, registry.names())


def _allowed_cell(key: str) -> list[str]:
    """The allowed column of ``key``'s rows in ``describe_keys`` (it wraps over several lines)."""
    lines = describe_keys().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(key + " "))
    col = lines[0].index("allowed")
    cells = [lines[start][col:].split("  ")[0]]
    for line in lines[start + 1:]:
        if line[:col].strip():
            break
        cells.append(line[col:].split("  ")[0])
    return cells


@pytest.mark.parametrize("override, key, hint", [
    ('code.scheme="parital"', "code.scheme", "'partial'"),
    ('code.ordering="gredy"', "code.ordering", "'greedy'"),
    ('delays.model="paretto"', "delays.model", "'pareto'"),
    ('workload.model="logistc"', "workload.model", "'logistic'"),
    ('code.scheme=["crc", "uncodd"]', "code.scheme[1]", "'uncoded'"),
    ('code.scheme=["crc", {scheme = "uncodd"}]', "code.scheme[1].scheme", "'uncoded'"),
])
def test_unknown_names_suggest_the_closest(override, key, hint):
    with pytest.raises(InputError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert info.value.key == key and f"did you mean {hint}?" in message and "\n" not in message, message


def test_unknown_names_below_the_config_suggest_too():
    with pytest.raises(InputError, match="did you mean 'graph:circulant'") as info:
        make_assignment("graph:circulnt", 8, 2, seed=0)
    assert info.value.key == "code.assignment"
    with pytest.raises(InputError, match="did you mean 'bursty'") as info:
        DelayModel(dataclasses.replace(DelaysConfig(), model="burst"), 0, 4)
    assert info.value.key == "delays.model"
    with pytest.raises(InputError, match="did you mean 'mlp'") as info:
        make_workload(dataclasses.replace(config_keys.WorkloadConfig(), model="mpl"), 4, 0)
    assert info.value.key == "workload.model"
    with pytest.raises(InputError, match="known: ") as info:
        make_scheme(CodeConfig(scheme="zzz"), 4, 0)
    assert info.value.key == "code.scheme"


def test_registry_refuses_a_second_definition_of_a_name():
    reg: Registry = Registry("thing", "x.thing")
    reg.register("a")(int)
    reg.register("a")(int)          # the same definition again (a re-import) is fine
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(float)
    assert reg.names() == ("a",) and reg.lookup("a") is int


def test_slope_fit_needs_a_trace():
    with pytest.raises(InputError) as info:
        load_config(None, ['delays.slope="fit"'])
    assert info.value.key == "delays.slope" and "trace" in str(info.value)
    with pytest.raises(InputError) as info:
        load_config(None, ['delays.slope="steep"'])
    assert info.value.key == "delays.slope"


def test_a_model_from_the_test_suite_drives_the_simulator(tmp_path):
    """Worker 0 is 50x slower: crc (tolerates one straggler) never uses it, and rounds take 2 chunk times."""
    assert slow_first_worker.NAME in MODELS.names()
    out = str(tmp_path / "sim.h5")
    config = load_config(None, ["code.workers=6", "code.load=2", 'code.scheme=["crc", "uncoded"]',
                                f'delays.model="{slow_first_worker.NAME}"', "delays.chunk_time=0.01",
                                "run.rounds=8", 'run.detail="full"', "run.verify=true", "run.round_timeout=1.0",
                                "workload.features=20", "workload.samples=60"])
    simulate(config, out)
    runs = {r.name: r for r in read_runs(out)}
    crc, uncoded = runs["crc"], runs["uncoded"]
    ev = crc.tables["events"]
    assert not ev["used"][ev["worker"] == 0].any() and ev["used"][ev["worker"] != 0].any()
    assert np.allclose(crc.tables["rounds"]["latency"], 2 * 0.01)
    assert crc.tables["rounds"]["grad_error"].max() < 1e-9
    # uncoded needs everyone: every round waits for worker 0's 50 x 1 chunk
    assert np.allclose(uncoded.tables["rounds"]["latency"], slow_first_worker.SLOWDOWN * 0.01)
