"""Plug-ins of a registry: ``package.module:Name`` paths and entry points, checked and recorded.

A :class:`~mpigc.registry.Registry` given an entry-point group asks its
:class:`PluginLoader` for any name it does not hold itself (docs/extending.md):

* ``"package.module:Name"``: the module is imported, its attribute taken and
  checked against the registry's :class:`Interface`;
* names that installed distributions register under the group
  (``[project.entry-points."mpigc.schemes"]`` in their ``pyproject.toml``),
  found with :mod:`importlib.metadata` and loaded on first use.

A plug-in that does not import, names nothing, or names something without the
interface is bad input (:class:`~mpigc.errors.InputError` naming the key).
Each resolved plug-in is cached with its :class:`Origin` (where it came from
and its version), for ``mpigc schemes`` and the run attribute ``plugins``.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import sys
from dataclasses import dataclass
from typing import Any

from mpigc.errors import InputError

#: ``package.module:Name`` (dotted names on both sides of one colon)
PLUGIN_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
#: the package whose modules are built in
HOME = "mpigc"


@dataclass(frozen=True)
class Origin:
    """Where a registry entry came from.

    Attributes
    ----------
    source : str
        ``"built-in"``, ``"entry point"``, ``"module path"`` or ``"registered"``
        (added with :meth:`Registry.register <mpigc.registry.Registry.register>`
        by a module outside mpigc).
    module : str
        The module defining the entry.
    attr : str
        Its qualified name in that module.
    version : str
        The distribution's version, else the module's (or its top package's)
        ``__version__``, else ``"unknown"``.
    distribution : str
        The distribution that provides it ("" if none is known).
    """

    source: str
    module: str
    attr: str
    version: str
    distribution: str = ""

    @property
    def plugin(self) -> bool:
        """Whether the entry comes from outside mpigc."""
        return self.source != "built-in"

    def describe(self) -> str:
        """Return one phrase for listings: ``entry point of mpigc-example 0.1 (mod:Cls)``."""
        where = f"{self.module}:{self.attr}"
        if self.source == "built-in":
            return "built-in"
        if self.source == "entry point":
            return f"entry point of {self.distribution} {self.version} ({where})"
        return f"{self.source} {where} (version {self.version})"

    def record(self) -> dict[str, str]:
        """Return the provenance record of a plug-in: source, module, attr, version, distribution."""
        return {"source": self.source, "module": self.module, "attr": self.attr, "version": self.version,
                "distribution": self.distribution}


def registered_origin(obj: Any) -> Origin:
    """Return the origin of an entry added with ``register``: built-in if mpigc defines it."""
    module = getattr(obj, "__module__", "") or ""
    attr = getattr(obj, "__qualname__", repr(obj))
    if module == HOME or module.startswith(HOME + "."):
        return Origin("built-in", module, attr, str(getattr(sys.modules.get(HOME), "__version__", "unknown")))
    return Origin("registered", module, attr, *_version_of(module))


@dataclass(frozen=True)
class Interface:
    """What a plug-in must be: a concrete subclass of ``base`` defining ``methods`` itself.

    Attributes
    ----------
    base : type
        Plug-ins are subclasses of it with no abstract method left.
    methods : tuple of str
        Methods a plug-in must define itself (not inherit from ``base`` or
        ``skeletons``); ``"a|b"`` asks for either.
    skeletons : tuple of type
        Partial bases whose methods do not count as defined (``Memoryless``).
    """

    base: type
    methods: tuple[str, ...] = ()
    skeletons: tuple[type, ...] = ()

    def problem(self, obj: Any) -> str | None:
        """Return why ``obj`` lacks this interface (None if it has it)."""
        if not isinstance(obj, type):
            return f"it is a {type(obj).__name__}, not a subclass of {_public(self.base)}"
        if not issubclass(obj, self.base):
            return f"{obj.__qualname__} is not a subclass of {_public(self.base)}"
        if inspect.isabstract(obj):
            return f"{obj.__qualname__} does not define {', '.join(sorted(obj.__abstractmethods__))}"
        for method in self.methods:
            options = method.split("|")
            if not any(_defines(obj, m, (self.base, *self.skeletons)) for m in options):
                return f"{obj.__qualname__} does not define {' or '.join(options)}"
        return None


class PluginLoader:
    """Resolves the plug-ins of one registry: module paths and the entry points of one group.

    Parameters
    ----------
    kind : str
        What an entry is, for messages (``"scheme"``).
    group : str
        Entry-point group (``"mpigc.schemes"``).
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self.interface: Interface | None = None
        self._resolved: dict[str, Any] = {}          # name -> checked object (module paths and entry points)
        self._origins: dict[str, Origin] = {}
        self._entry_points: dict[str, list[importlib.metadata.EntryPoint]] | None = None

    def entry_points(self) -> dict[str, list[importlib.metadata.EntryPoint]]:
        """Return the group's entry points by name (read once; loading waits for :meth:`resolve`)."""
        if self._entry_points is None:
            self._entry_points = {}
            for point in importlib.metadata.entry_points(group=self.group):
                self._entry_points.setdefault(point.name, []).append(point)
        return self._entry_points

    def resolve(self, name: str, key: str) -> Any | None:
        """Return the plug-in ``name`` (a module path or an entry point), or None if it names neither.

        Raises
        ------
        InputError
            Keyed by ``key``, if ``name`` looks like a plug-in but cannot be used (one line).
        """
        if name in self._resolved:
            return self._resolved[name]
        if ":" in name:
            return self._resolve_path(name, key)
        if name in self.entry_points():
            return self._resolve_entry_point(name, key)
        return None

    def origin(self, name: str) -> Origin | None:
        """Return the origin of the resolved plug-in ``name`` (None if it is not one)."""
        return self._origins.get(name)

    def _resolve_path(self, name: str, key: str) -> Any:
        """Import ``package.module:Name``, check it, cache it under ``name``."""
        if not PLUGIN_PATH.match(name):
            raise InputError(key, f"{name!r} is neither a {self.kind} name nor a plug-in path package.module:Name")
        module_name, attr = name.split(":")
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as error:  # any failure while importing user code is bad input
            raise InputError(key, f"plug-in {name!r}: cannot import {module_name!r} ({_one_line(error)})") from None
        obj: Any = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise InputError(key, f"plug-in {name!r}: module {module_name!r} has no {attr!r}")
            obj = getattr(obj, part)
        return self._accept(name, key, obj, Origin("module path", module_name, attr, *_version_of(module_name)))

    def _resolve_entry_point(self, name: str, key: str) -> Any:
        """Load the entry point ``name`` of :attr:`group`, check it, cache it."""
        points = self.entry_points()[name]
        dists = [_dist_name(p) for p in points]
        if len(points) > 1:
            raise InputError(key, f"{self.kind} {name!r} is an entry point of several distributions "
                                  f"({', '.join(dists)}); uninstall all but one")
        point = points[0]
        try:
            obj = point.load()
        except (Exception, SystemExit) as error:
            raise InputError(key, f"plug-in {name!r} (entry point {point.value} of {dists[0]}) does not load "
                                  f"({_one_line(error)})") from None
        version = point.dist.version if point.dist is not None else "unknown"
        module, _, attr = point.value.partition(":")
        return self._accept(name, key, obj, Origin("entry point", module.strip(), attr.strip(), version, dists[0]))

    def _accept(self, name: str, key: str, obj: Any, origin: Origin) -> Any:
        problem = self.interface.problem(obj) if self.interface is not None else None
        if problem is not None:
            raise InputError(key, f"plug-in {name!r} is not a {self.kind}: {problem}")
        self._resolved[name] = obj
        self._origins[name] = origin
        return obj


def _defines(cls: type, method: str, skeletons: tuple[type, ...]) -> bool:
    """Whether ``cls`` has ``method`` from somewhere other than the interface's own (skeleton) classes."""
    found = getattr(cls, method, None)
    return found is not None and all(found is not getattr(s, method, None) for s in skeletons)


def _public(cls: type) -> str:
    """``package.Name`` if the parent package exports the class (``mpigc.codes.Scheme``), else its own module's."""
    parent = cls.__module__.rpartition(".")[0]
    home = parent if parent and getattr(sys.modules.get(parent), cls.__name__, None) is cls else cls.__module__
    return f"{home}.{cls.__qualname__}"


def _one_line(error: BaseException) -> str:
    """``Type: message``, first line only (bad input is reported on one line)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _dist_name(point: importlib.metadata.EntryPoint) -> str:
    return point.dist.name if point.dist is not None else "an unknown distribution"


def _version_of(module: str) -> tuple[str, str]:
    """Return (version, distribution) of ``module``: its distribution's, else ``__version__``, else unknown."""
    top = module.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist), dist
        except importlib.metadata.PackageNotFoundError:
            continue
    for name in (module, top):
        version = getattr(sys.modules.get(name), "__version__", None)
        if version is not None:
            return str(version), ""
    return "unknown", ""
