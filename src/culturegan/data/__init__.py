"""Everything that reads images and folders: the image loader, dataset splits, demo data.

Usage::

    from culturegan.data import load_image, load_splits, build_demo_dataset
"""

from typing import TYPE_CHECKING

from culturegan._lazy import lazy_exports

if TYPE_CHECKING:  # the same names, for type checkers; at run time they load on first use
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

# Lazy, so that importing a light submodule (the CLI's, culturegan.data.fetch) imports no
# torch through this package.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DEFAULT_MAX_PIXELS": "culturegan.data.images",
        "IMAGE_EXTENSIONS": "culturegan.data.images",
        "ImageLoadError": "culturegan.data.images",
        "ScanResult": "culturegan.data.images",
        "load_image": "culturegan.data.images",
        "pil_to_tensor": "culturegan.data.images",
        "scan_images": "culturegan.data.images",
        "tensor_to_pil": "culturegan.data.images",
        "to_rgb": "culturegan.data.images",
        "DatasetSplits": "culturegan.data.splits",
        "DomainSplit": "culturegan.data.splits",
        "detect_layout": "culturegan.data.splits",
        "load_splits": "culturegan.data.splits",
        "ART_STYLES": "culturegan.data.synthetic",
        "build_demo_dataset": "culturegan.data.synthetic",
        "list_styles": "culturegan.data.synthetic",
        "make_art_image": "culturegan.data.synthetic",
        "make_photo_crops": "culturegan.data.synthetic",
        "photo_sources": "culturegan.data.synthetic",
    },
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
