"""TOML values written for the resolved config (tomli-w underneath) read back by tomllib unchanged."""
from __future__ import annotations

import math
import tomllib

import pytest

from mpigc.config.toml import format_key, format_value

VALUES = ['quote " backslash \\ tab \t newline \n control \x01 \x7f é', "C:\\traces\\x.csv", "", 0, -7, 1.5,
          -1.5e-3, 1e300, 1e-300, -0.0, 1e6, math.inf, -math.inf, True, False, [1, 11], (0, 1, 3), [],
          {"scheme": "partial", "name": 'approx "T" é', "deadline": 0.03},
          ["partial", {"scheme": "m-sgc", "B": 2, "lambda": 1}]]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_value_reads_back_the_same(value):
    text = format_value(value)
    assert "\n" not in text  # one line per key in the resolved config
    back = tomllib.loads(f"v = {text}")["v"]
    assert back == (list(value) if isinstance(value, tuple) else value)
    assert type(back) is (list if isinstance(value, tuple) else type(value))


def test_nan_and_keys():
    assert math.isnan(tomllib.loads(f"v = {format_value(math.nan)}")["v"])
    assert format_key("use_partial") == "use_partial" and format_key("lambda") == "lambda"
    for key in ("a b", "é", "x.y", ""):
        assert tomllib.loads(f"{format_key(key)} = 1") == {key: 1}


@pytest.mark.parametrize("value", [None, object(), {1, 2}])
def test_what_toml_cannot_hold_is_a_type_error(value):
    with pytest.raises(TypeError, match="cannot write"):
        format_value(value)
