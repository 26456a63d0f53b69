"""Plain name → object registries, one per kind of component.

Every registry is filled by explicit imports of the modules that define its entries
(see :func:`mast_bench.registry.load_all`), so ``mast-bench`` never depends on
import-time side effects of modules that happen to have been imported elsewhere.

Contract: ``REGISTRY.register(name)`` decorates a factory (class or function);
``REGISTRY.get(name)`` returns it or raises :class:`UnknownNameError` listing every
valid name; ``REGISTRY.names()`` is sorted.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """Raised for a name that is not registered; the message lists the valid names."""


class Registry(Generic[T]):
    """A named collection of factories of one kind (backbones, methods, datasets, evaluators, converters)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        load_all()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        valid = self.names()
        close = difflib.get_close_matches(str(name), valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Valid {self.kind} names: {', '.join(valid)}"

    def names(self) -> list[str]:
        load_all()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        load_all()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        load_all()
        return sorted(self._entries.items())


BACKBONES: Registry[Callable[..., Any]] = Registry("backbone")
METHODS: Registry[Callable[..., Any]] = Registry("method")
DATASETS: Registry[Any] = Registry("dataset")
#: ``mast_bench.downstream.contract.Evaluator`` instances (plan cells, run them; ``execute`` skips and writes).
EVALUATORS: Registry[Any] = Registry("evaluator")
CONVERTERS: Registry[Any] = Registry("converter")

# Modules whose import fills the registries. Listed explicitly (no scanning) so the set of
# components is visible in one place; a module that fails to import is an error, not a skip.
_REGISTERING_MODULES: tuple[str, ...] = (
    "mast_bench.models.backbones",
    "mast_bench.methods",
    "mast_bench.data",
    "mast_bench.downstream",
    "mast_bench.downstream.detection.evaluator",  # imports without Detectron2; running it needs Detectron2
    "mast_bench.convert",
)
_loaded = False


def load_all() -> None:
    """Import every module that registers components (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _REGISTERING_MODULES:
        try:
            importlib.import_module(mod)
        except BaseException:
            _loaded = False
            raise
