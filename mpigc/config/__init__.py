"""TOML config → validated, frozen dataclasses (docs/config.md).

``load_config`` reads a file (or the embedded ``default.toml``), applies
``--set key=value`` overrides, checks every key's type and range and raises
:class:`~mpigc.errors.InputError` naming the dotted key on the first problem.
``to_toml`` writes a resolved config back (re-loadable); ``describe_keys``
prints the table of every key.
"""
from mpigc.config.emit import describe_keys, to_toml
from mpigc.config.keys import BACKENDS, CodeConfig, Config, DelaysConfig, NetworkConfig, RunConfig, WorkloadConfig
from mpigc.config.load import MAX_SECONDS, SEED_LIMIT, load_config

__all__ = ["BACKENDS", "MAX_SECONDS", "SEED_LIMIT", "CodeConfig", "Config", "DelaysConfig", "NetworkConfig",
           "RunConfig", "WorkloadConfig", "describe_keys", "load_config", "to_toml"]
