"""Decorator registries of networks, so configs and the CLI can name them.

Usage::

    @register_generator("resnet_9blocks")
    def resnet_9blocks(**kwargs) -> nn.Module: ...

    g = build_generator("resnet_9blocks", ngf=8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

GENERATORS: dict[str, Callable[..., nn.Module]] = {}
DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {}


def _register(table: dict[str, Callable[..., nn.Module]], kind: str, name: str):
    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in table:
            raise ValueError(f"{kind} '{name}' is registered twice")
        table[name] = fn
        return fn

    return decorator


def register_generator(name: str):
    return _register(GENERATORS, "generator", name)


def register_discriminator(name: str):
    return _register(DISCRIMINATORS, "discriminator", name)


def _build(table: dict[str, Callable[..., nn.Module]], kind: str, name: str, **kwargs: Any):
    if name not in table:
        raise ValueError(f"unknown {kind} '{name}' (known: {', '.join(sorted(table))})")
    return table[name](**kwargs)


def build_generator(name: str, **kwargs: Any) -> nn.Module:
    return _build(GENERATORS, "generator", name, **kwargs)


def build_discriminator(name: str, **kwargs: Any) -> nn.Module:
    return _build(DISCRIMINATORS, "discriminator", name, **kwargs)


def list_generators() -> list[str]:
    return sorted(GENERATORS)


def list_discriminators() -> list[str]:
    return sorted(DISCRIMINATORS)
