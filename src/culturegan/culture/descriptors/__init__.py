"""Interpretable descriptors of a picture, one pure function each, in one registry.

Families (one module each): colour, blank space and composition, line and edge, texture and
tone, complexity. Every descriptor's docstring gives its definition and units; the report and
``docs/culture.md`` print them.

Usage::

    from culturegan.culture.descriptors import compute_descriptors, list_descriptors
    values = compute_descriptors(load_image("scroll.jpg"), size=256)
"""

from culturegan.culture.descriptors import colour, complexity, composition, lines, texture
from culturegan.culture.descriptors.base import (
    DEFAULT_SIZE,
    DESCRIPTOR_VERSION,
    DESCRIPTORS,
    FAMILIES,
    Descriptor,
    ImageView,
    compute_descriptors,
    get_descriptor,
    list_descriptors,
    register_descriptor,
    working_size,
)
from culturegan.culture.descriptors.colour import dominant_palette

del colour, complexity, composition, lines, texture  # imported to fill the registry

__all__ = [
    "DEFAULT_SIZE",
    "DESCRIPTORS",
    "DESCRIPTOR_VERSION",
    "FAMILIES",
    "Descriptor",
    "ImageView",
    "compute_descriptors",
    "dominant_palette",
    "get_descriptor",
    "list_descriptors",
    "register_descriptor",
    "working_size",
]
