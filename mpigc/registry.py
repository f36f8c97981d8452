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
resolved, so every config key, every backend and every rank resolves a name
the same way, when the config is loaded. A registry given an entry-point
``group`` also takes plug-ins (module paths and entry points), resolved by
its :class:`~mpigc.plugins.PluginLoader`; :meth:`Registry.origin` says where
any entry came from and its version.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mpigc.errors import InputError
from mpigc.plugins import Interface, Origin, PluginLoader, registered_origin

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
    group : str, optional
        Entry-point group of plug-ins (``"mpigc.schemes"``); without it the
        registry takes registered names only.

    Attributes
    ----------
    entries : dict
        Registered name -> object.
    meta : dict
        Registered name -> the facts given to :meth:`register` beside it.
    plugins : PluginLoader or None
        Resolves module paths and entry points (None without ``group``).
    """

    def __init__(self, kind: str, key: str, package: str | None = None, group: str | None = None) -> None:
        self.kind = kind
        self.key = key
        self.package = package
        self.entries: dict[str, T] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.plugins = PluginLoader(kind, group) if group is not None else None
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
        if old is not None and _definition(old) != _definition(obj):
            raise ValueError(f"{self.kind} {name!r} is already registered by {_definition(old)}")
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

    def require(self, base: type, *methods: str, skeletons: tuple[type, ...] = ()) -> None:
        """Set the interface a plug-in must have (:class:`~mpigc.plugins.Interface`).

        Parameters
        ----------
        base : type
            Plug-ins are subclasses of it with no abstract method left.
        *methods : str
            Methods a plug-in must define itself (not inherit from ``base`` or
            ``skeletons``); ``"a|b"`` asks for either.
        skeletons : tuple of type
            Partial bases whose methods do not count as defined (``Memoryless``).

        Raises
        ------
        TypeError
            If the registry takes no plug-ins (it has no entry-point group).
        """
        if self.plugins is None:
            raise TypeError(f"the {self.kind} registry takes no plug-ins: it has no entry-point group")
        self.plugins.interface = Interface(base, methods, skeletons)

    # -- asking ------------------------------------------------------------
    def lookup(self, name: str, key: str | None = None) -> T:
        """Return the entry named ``name``: registered, ``package.module:Name``, or an entry point.

        Parameters
        ----------
        name : str
            The configured value.
        key : str, optional
            The dotted key to blame (default :attr:`key`), e.g. ``code.scheme[1]``.

        Raises
        ------
        InputError
            Naming the key, the unknown value, the closest known name and all of
            them; or, for a plug-in, why it cannot be used (one line).
        """
        self.load()
        if not isinstance(name, str):
            raise self.unknown(name, key)
        found = self.entries.get(name)
        if found is None and self.plugins is not None:
            found = self.plugins.resolve(name, key or self.key)
        if found is None:
            raise self.unknown(name, key)
        return found

    def origin(self, name: str, key: str | None = None) -> Origin:
        """Return where the entry ``name`` came from (resolving it first; InputError as :meth:`lookup`)."""
        obj = self.lookup(name, key)
        plugin = self.plugins.origin(name) if self.plugins is not None else None
        return plugin or registered_origin(obj)

    def unknown(self, name: Any, key: str | None = None) -> InputError:
        """Return the :class:`InputError` for a name that is not registered."""
        names = self.names()
        hint = difflib.get_close_matches(name, names, n=1) if isinstance(name, str) else []
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        return InputError(key or self.key, f"unknown {self.kind} {name!r}{tip} (known: {', '.join(names)})")

    def names(self) -> tuple[str, ...]:
        """Return every registered name and every entry-point name of the plug-in group, sorted."""
        self.load()
        points = self.plugins.entry_points() if self.plugins is not None else {}
        return tuple(sorted(set(self.entries) | set(points)))

    def items(self) -> list[tuple[str, T]]:
        """Return ``(name, entry)`` for every name of :meth:`names`, sorted; entry points are loaded.

        Raises
        ------
        InputError
            As :meth:`lookup`, for an installed entry point that does not load.
        """
        return [(name, self.lookup(name)) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.lookup(name)


def _definition(obj: Any) -> str:
    """Where an entry was defined: ``module:qualname`` (its identity across re-imports)."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
