"""Everything that reads images and folders: the image loader, dataset splits, demo data.

Usage::

    from culturegan.data import load_image, load_splits, build_demo_dataset
"""

from culturegan.data.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageLoadError,
    ScanResult,
    load_image,
    pil_to_tensor,
    scan_images,
    tensor_to_pil,
    to_rgb,
)
from culturegan.data.splits import (
    DatasetSplits,
    DomainSplit,
    detect_layout,
    load_splits,
)
from culturegan.data.synthetic import (
    ART_STYLES,
    build_demo_dataset,
    list_styles,
    make_art_image,
    make_photo_crops,
    photo_sources,
)

__all__ = [
    "ART_STYLES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "DatasetSplits",
    "DomainSplit",
    "ImageLoadError",
    "ScanResult",
    "build_demo_dataset",
    "detect_layout",
    "list_styles",
    "load_image",
    "load_splits",
    "make_art_image",
    "make_photo_crops",
    "photo_sources",
    "pil_to_tensor",
    "scan_images",
    "tensor_to_pil",
    "to_rgb",
]
