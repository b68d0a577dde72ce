"""Real datasets for training and measuring: the CycleGAN zips, WikiArt by style, and
public-domain works from museum open-access APIs (The Met, Art Institute of Chicago, Cleveland).

Everything goes through :mod:`culturegan.data.fetch.http` (polite, retried, resumable, fails in
seconds when offline) and lands through :func:`culturegan.data.fetch.manifest.save_checked_image`
(decoded by the one image loader, near-duplicates refused) with a ``manifest.csv`` of sources
and licences. ``docs/data.md`` describes each command and what it writes.

Usage::

    from culturegan.data.fetch import fetch_cyclegan, fetch_museum, fetch_wikiart
"""

from culturegan.data.fetch.cyclegan import CYCLEGAN_DATASETS, extract_cyclegan_zip, fetch_cyclegan
from culturegan.data.fetch.http import FetchError, HttpClient, OfflineError
from culturegan.data.fetch.manifest import DuplicateIndex, ImageRejected, Manifest, dhash
from culturegan.data.fetch.museums import SOURCES as MUSEUMS
from culturegan.data.fetch.museums import fetch_museum
from culturegan.data.fetch.wikiart import (
    MissingExtraError,
    WikiArtSource,
    fetch_wikiart,
    huggingface_source,
)

__all__ = [
    "CYCLEGAN_DATASETS",
    "MUSEUMS",
    "DuplicateIndex",
    "FetchError",
    "HttpClient",
    "ImageRejected",
    "Manifest",
    "MissingExtraError",
    "OfflineError",
    "WikiArtSource",
    "dhash",
    "extract_cyclegan_zip",
    "fetch_cyclegan",
    "fetch_museum",
    "fetch_wikiart",
    "huggingface_source",
]
