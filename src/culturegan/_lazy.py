"""Lazy package attributes (PEP 562): a package's public names import their module on first use.

``culturegan --help`` imports every command's argument definitions, and with them the packages
they live in (``culturegan.culture``, ``culturegan.metrics``); a package ``__init__`` that
imported its modules eagerly would pull in torch and scipy before a single argument is parsed.

Usage (in a package ``__init__``)::

    exports = {"analyze_cultures": "culturegan.culture.analysis"}  # name -> its module
    __getattr__, __dir__ = lazy_exports(__name__, exports)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str,  # the package's __name__
    exports: Mapping[str, str],  # public name -> the module that defines it
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names load on first use."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module), name)
        # Cache it in the package, so the next access is an ordinary attribute lookup.
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *exports})

    return __getattr__, __dir__
