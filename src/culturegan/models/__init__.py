"""Pure tensor-in / tensor-out networks and their registries."""

from culturegan.models import (  # noqa: F401  (fill registries)
    discriminators,
    fast,
    generators,
    projected,
    unet,
)
from culturegan.models.registry import (
    DISCRIMINATORS,
    GENERATORS,
    build_discriminator,
    build_generator,
    list_discriminators,
    list_generators,
    register_discriminator,
    register_generator,
)

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "build_discriminator",
    "build_generator",
    "list_discriminators",
    "list_generators",
    "register_discriminator",
    "register_generator",
]
