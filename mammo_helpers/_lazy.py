"""Lazy submodules for the package and its subpackages (``mh.data``, ``mh.models``,
``mh.xai``): a submodule is imported on first attribute access, so ``import mammo_helpers``
stays cheap and has no side effects."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def lazy_attributes(
    package: str, submodules: Iterable[str], exported: dict[str, str] | None = None
) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, names)`` for ``package``: each name of ``submodules`` loads
    that submodule, each name of ``exported`` is taken from the submodule it maps to."""
    submodules = frozenset(submodules)
    exported = dict(exported or {})
    names = sorted(submodules | set(exported))

    def __getattr__(name: str):
        if name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in exported:
            value = getattr(importlib.import_module(f"{package}.{exported[name]}"), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return names

    return __getattr__, __dir__, names
