"""A registry of named plug-ins of one kind (advantage estimators, policy losses), as SkyRL's.

Each plug-in is a function in its own module, registered there by the registry's decorator; the
registry lists those modules, one line each, and imports them the first time a name is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

Plugin = TypeVar("Plugin", bound=Callable)


class Registry(Generic[Plugin]):
    def __init__(self, kind: str, package: str, modules: tuple[str, ...]) -> None:
        """``kind`` names the plug-ins in errors; ``modules`` are the package's modules that register them."""
        self.kind, self.package, self.modules = kind, package, modules
        self.plugins: dict[str, Plugin] = {}

    def register(self, name: str) -> Callable[[Plugin], Plugin]:
        """The decorator that registers a plug-in under ``name``."""

        def add(plugin: Plugin) -> Plugin:
            known = self.plugins.get(name)
            if known is not None and known.__qualname__ != plugin.__qualname__:
                raise ValueError(f"{self.kind} {name!r} is registered twice: {known.__qualname__}, {plugin.__qualname__}")
            self.plugins[name] = plugin
            return plugin

        return add

    def _load(self) -> None:
        for module in self.modules:
            importlib.import_module(f"{self.package}.{module}")

    def names(self) -> tuple[str, ...]:
        """The registered names, in the order of the modules."""
        self._load()
        return tuple(self.plugins)

    def __getitem__(self, name: str) -> Plugin:
        if name not in self.plugins:
            self._load()
        if name not in self.plugins:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.plugins)}")
        return self.plugins[name]
