"""Named extension points: one :class:`Registry` per kind of thing a config names.

Schemes (``code.scheme``), assignments (``code.assignment``), orderings
(``code.ordering``), straggler models (``delays.model``) and workloads
(``workload.model``) each have one registry. A module adds to it with the
:meth:`Registry.register` decorator; the config's allowed values, ``mpigc
validate --keys``, ``mpigc schemes`` and every "did you mean" suggestion are
read from it, so a new scheme, model or workload is one module that registers
itself (plus its tests) and nothing else changes.

A registry given a ``package`` imports every module of that package the first
time it is asked a question, so registering modules need not be imported by
hand. Lookups go through :meth:`Registry.lookup`, the one place a name is
resolved: that is where names of plug-ins (``package.module:Name``, entry
points) would be resolved too.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mpigc.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names → objects (classes or functions) of one extension point.

    Parameters
    ----------
    kind : str
        What an entry is, for messages (``"scheme"``, ``"straggler model"``).
    key : str
        The config key that names an entry (``"code.scheme"``); errors are keyed by it.
    package : str, optional
        Dotted package whose modules register entries; all of them are
        imported on first use.
    """

    def __init__(self, kind: str, key: str, package: str | None = None) -> None:
        self.kind = kind
        self.key = key
        self.package = package
        self.entries: dict[str, T] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self._loaded = package is None

    # -- filling -----------------------------------------------------------
    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Return a decorator that adds its argument under ``name`` (``meta``: facts kept beside it)."""

        def decorate(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return decorate

    def add(self, name: str, obj: T, **meta: Any) -> None:
        """Add ``obj`` under ``name``.

        Raises
        ------
        ValueError
            If ``name`` already holds a different object (re-importing the same
            definition, e.g. a reloaded module, replaces it).
        """
        old = self.entries.get(name)
        if old is not None and _origin(old) != _origin(obj):
            raise ValueError(f"{self.kind} {name!r} is already registered by {_origin(old)}")
        self.entries[name] = obj
        self.meta[name] = dict(meta)

    def load(self) -> None:
        """Import every module of :attr:`package` once, so that they register their entries."""
        if self._loaded:
            return
        self._loaded = True     # before importing: modules that look names up while loading do not recurse
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")

    # -- asking ------------------------------------------------------------
    def lookup(self, name: str, key: str | None = None) -> T:
        """Return the entry named ``name``.

        Parameters
        ----------
        name : str
            The configured value.
        key : str, optional
            The dotted key to blame (default :attr:`key`), e.g. ``code.scheme[1]``.

        Raises
        ------
        InputError
            Naming the key, the unknown value, the closest known name and all of them.
        """
        self.load()
        found = self.entries.get(name) if isinstance(name, str) else None
        if found is None:
            raise self.unknown(name, key)
        return found

    def unknown(self, name: Any, key: str | None = None) -> InputError:
        """Return the :class:`InputError` for a name that is not registered."""
        names = self.names()
        hint = difflib.get_close_matches(name, names, n=1) if isinstance(name, str) else []
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        return InputError(key or self.key, f"unknown {self.kind} {name!r}{tip} (known: {', '.join(names)})")

    def names(self) -> tuple[str, ...]:
        """Return every registered name, sorted."""
        self.load()
        return tuple(sorted(self.entries))

    def items(self) -> list[tuple[str, T]]:
        """Return ``(name, entry)`` pairs sorted by name."""
        return [(name, self.entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.lookup(name)


def _origin(obj: Any) -> str:
    """Where an entry was defined: ``module:qualname`` (its identity across re-imports)."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
