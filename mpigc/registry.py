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
the same way, when the config is loaded.

Plug-ins (docs/extending.md): a registry given an entry-point ``group`` also
resolves

* ``"package.module:Name"``: the module is imported, its attribute taken and
  checked against the registry's interface (:meth:`Registry.require`);
* names that installed distributions register under the group
  (``[project.entry-points."mpigc.schemes"]`` in their ``pyproject.toml``),
  found with :mod:`importlib.metadata` and loaded on first use.

A plug-in that does not import, names nothing, or names something without the
interface is bad input (:class:`~mpigc.errors.InputError` naming the key).
:meth:`Registry.origin` says where any entry came from (built-in, entry point
of a distribution, module path, registered by an outside module) and its
version, for ``mpigc schemes`` and the run attribute ``plugins``.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mpigc.errors import InputError

T = TypeVar("T")

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
        (added with :meth:`Registry.register` by a module outside mpigc).
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
    """

    def __init__(self, kind: str, key: str, package: str | None = None, group: str | None = None) -> None:
        self.kind = kind
        self.key = key
        self.package = package
        self.group = group
        self.entries: dict[str, T] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self._loaded = package is None
        self._interface: tuple[type, tuple[str, ...], tuple[type, ...]] | None = None
        self._plugins: dict[str, T] = {}          # resolved module paths and entry points
        self._origins: dict[str, Origin] = {}
        self._points: dict[str, list[importlib.metadata.EntryPoint]] | None = None

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

    def require(self, base: type, *methods: str, skeletons: tuple[type, ...] = ()) -> None:
        """Set the interface a plug-in must have.

        Parameters
        ----------
        base : type
            Plug-ins are subclasses of it with no abstract method left.
        *methods : str
            Methods a plug-in must define itself (not inherit from ``base`` or
            ``skeletons``); ``"a|b"`` asks for either.
        skeletons : tuple of type
            Partial bases whose methods do not count as defined (``Memoryless``).
        """
        self._interface = (base, methods, (base, *skeletons))

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
        found = self.entries.get(name) if isinstance(name, str) else None
        if found is not None:
            return found
        if self.group is None or not isinstance(name, str):
            raise self.unknown(name, key)
        if name in self._plugins:
            return self._plugins[name]
        if ":" in name:
            return self._resolve_path(name, key or self.key)
        if name in self.entry_points():
            return self._resolve_entry_point(name, key or self.key)
        raise self.unknown(name, key)

    def origin(self, name: str, key: str | None = None) -> Origin:
        """Return where the entry ``name`` came from (resolving it first; InputError as :meth:`lookup`)."""
        obj = self.lookup(name, key)
        if name in self._origins:
            return self._origins[name]
        module = getattr(obj, "__module__", "") or ""
        attr = getattr(obj, "__qualname__", repr(obj))
        if module == HOME or module.startswith(HOME + "."):
            return Origin("built-in", module, attr, _home_version())
        return Origin("registered", module, attr, *_version_of(module))

    def entry_points(self) -> dict[str, list[importlib.metadata.EntryPoint]]:
        """Return this registry's entry points by name (read once; loading waits for a lookup)."""
        if self._points is None:
            self._points = {}
            if self.group is not None:
                for point in importlib.metadata.entry_points(group=self.group):
                    self._points.setdefault(point.name, []).append(point)
        return self._points

    def problem(self, obj: Any) -> str | None:
        """Return why ``obj`` lacks this registry's interface (None if it has it, or no interface is set)."""
        if self._interface is None:
            return None
        base, methods, skeletons = self._interface
        if not isinstance(obj, type):
            return f"it is a {type(obj).__name__}, not a subclass of {_public(base)}"
        if not issubclass(obj, base):
            return f"{obj.__qualname__} is not a subclass of {_public(base)}"
        if inspect.isabstract(obj):
            return f"{obj.__qualname__} does not define {', '.join(sorted(obj.__abstractmethods__))}"
        for method in methods:
            options = method.split("|")
            if not any(_defines(obj, m, skeletons) for m in options):
                return f"{obj.__qualname__} does not define {' or '.join(options)}"
        return None

    def _resolve_path(self, name: str, key: str) -> T:
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
        self._accept(name, key, obj, Origin("module path", module_name, attr, *_version_of(module_name)))
        return obj

    def _resolve_entry_point(self, name: str, key: str) -> T:
        """Load the entry point ``name`` of :attr:`group`, check it, cache it."""
        points = self._points[name]
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
        self._accept(name, key, obj, Origin("entry point", module.strip(), attr.strip(), version, dists[0]))
        return obj

    def _accept(self, name: str, key: str, obj: Any, origin: Origin) -> None:
        problem = self.problem(obj)
        if problem is not None:
            raise InputError(key, f"plug-in {name!r} is not a {self.kind}: {problem}")
        self._plugins[name] = obj
        self._origins[name] = origin

    def unknown(self, name: Any, key: str | None = None) -> InputError:
        """Return the :class:`InputError` for a name that is not registered."""
        names = self.names()
        hint = difflib.get_close_matches(name, names, n=1) if isinstance(name, str) else []
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        return InputError(key or self.key, f"unknown {self.kind} {name!r}{tip} (known: {', '.join(names)})")

    def names(self) -> tuple[str, ...]:
        """Return every registered name and every entry-point name of :attr:`group`, sorted."""
        self.load()
        return tuple(sorted(set(self.entries) | set(self.entry_points())))

    def items(self) -> list[tuple[str, T]]:
        """Return ``(name, entry)`` pairs sorted by name."""
        return [(name, self.entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.lookup(name)


def _origin(obj: Any) -> str:
    """Where an entry was defined: ``module:qualname`` (its identity across re-imports)."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


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


def _home_version() -> str:
    return str(getattr(sys.modules.get(HOME), "__version__", "unknown"))


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
