"""Public-domain artworks from museum open-access APIs, with a manifest of where each came from.

Three sources, each read as its documentation describes it:

* ``met``: The Metropolitan Museum of Art Collection API (metmuseum.github.io).
  ``GET {base}/search?q=..&hasImages=true[&artistOrCulture=true]`` answers
  ``{"total", "objectIDs"}`` (all ids at once), then ``GET {base}/objects/{id}`` one object:
  ``isPublicDomain``, ``primaryImageSmall`` (web size), ``title``, ``artistDisplayName``,
  ``culture``, ``objectDate``, ``medium``, ``classification``. The Met asks for at most 80
  requests a second.
* ``aic``: the Art Institute of Chicago API (api.artic.edu/docs).
  ``GET {base}/artworks/search?q=..&query[term][is_public_domain]=true&fields=..&limit=&page=``
  answers ``{"pagination": {"total_pages"}, "data": [...], "config": {"iiif_url"}}``; the image
  is IIIF: ``{iiif_url}/{image_id}/full/843,/0/default.jpg`` (the width it recommends). Search
  results stop at 1,000; anonymous clients get 60 requests a minute.
* ``cleveland``: the Cleveland Museum of Art Open Access API (openaccess-api.clevelandart.org).
  ``GET {base}/artworks/?q=..&cc0=1&has_image=1&limit=&skip=`` answers ``{"info": {"total"},
  "data": [...]}``; ``share_license_status`` is ``"CC0"`` for open-access works and
  ``images.web.url`` is the web-size JPEG.

Whatever the query asked for, each record's own licence field is checked again: only public
domain / CC0 works are saved. ``--culture`` is matched (case-insensitive substring) against the
record's culture (Met, Cleveland) or place of origin (AIC). Images land flat in ``OUT`` as
``SOURCE-ID.jpg``, so ``OUT`` can be one domain folder of a training set; ``OUT/manifest.csv``
has one row per image. A re-run skips what the manifest already lists; near-duplicates (by
:func:`dhash`) and images that do not decode are refused and named in the report.

Usage::

    result = fetch_museum("met", "data/japan", culture="Japan", max_images=200)
    print(result.report())
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturegan.data.fetch.http import FetchError, HttpClient, OfflineError
from culturegan.data.fetch.manifest import (
    DUPLICATE_DISTANCE,
    MANIFEST_NAME,
    DuplicateIndex,
    ImageRejected,
    Manifest,
    save_checked_image,
)

MUSEUM_FIELDS = (
    "source", "object_id", "title", "artist", "culture", "date", "medium", "classification",
    "image_url", "licence", "file", "sha256", "dhash",
)  # fmt: skip
BASE_URLS = {
    "met": "https://collectionapi.metmuseum.org/public/collection/v1",
    "aic": "https://api.artic.edu/api/v1",
    "cleveland": "https://openaccess-api.clevelandart.org/api",
}
BASE_URL_ENVS = {name: f"CULTUREGAN_{name.upper()}_URL" for name in BASE_URLS}
# Seconds between requests, within what each museum asks of anonymous clients.
DEFAULT_DELAYS = {"met": 0.1, "aic": 1.0, "cleveland": 0.25}
AIC_FIELDS = (
    "id,title,artist_display,place_of_origin,date_display,medium_display,classification_title,"
    "is_public_domain,image_id"
)
AIC_MAX_RESULTS = 1000  # the search endpoint pages no further
SAVE_EVERY = 10  # manifest rewrites: every this many new images, and at the end


@dataclass
class Artwork:
    """One museum record, reduced to the manifest's columns."""

    source: str
    object_id: str
    title: str = ""
    artist: str = ""
    culture: str = ""  # culture, or place of origin where the museum has no culture field
    date: str = ""
    medium: str = ""
    classification: str = ""
    image_url: str = ""
    licence: str | None = None  # "CC0" when the museum says public domain / CC0; else None

    @property
    def label(self) -> str:
        return f"{self.source} {self.object_id} '{self.title}'"


@dataclass
class Candidate:
    """An object id from a search, and how to get its record (one more request for the Met)."""

    object_id: str
    load: Callable[[], Artwork]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


# Manifest column -> the record's field, per museum (as named in its API documentation).
MET_COLUMNS = {
    "title": "title", "artist": "artistDisplayName", "culture": "culture", "date": "objectDate",
    "medium": "medium", "classification": "classification",
}  # fmt: skip
AIC_COLUMNS = {
    "object_id": "id", "title": "title", "artist": "artist_display", "culture": "place_of_origin",
    "date": "date_display", "medium": "medium_display", "classification": "classification_title",
}  # fmt: skip
CLEVELAND_COLUMNS = {
    "object_id": "id", "title": "title", "date": "creation_date", "medium": "technique",
    "classification": "type",
}  # fmt: skip


def _artwork(
    source: str, rec: Mapping[str, Any], columns: Mapping[str, str], **given: Any
) -> Artwork:
    """An Artwork of ``source`` with the ``columns`` read from ``rec`` and the ``given`` rest."""
    return Artwork(
        source=source, **{col: _text(rec.get(key)) for col, key in columns.items()}, **given
    )


# ----------------------------------------------------------------------------- sources


def _met(
    client: HttpClient, base: str, terms: str, by_culture: bool, page_size: int
) -> Iterator[Candidate]:
    params = {"q": terms, "hasImages": "true"}
    if by_culture:
        params["artistOrCulture"] = "true"
    found = client.get_json(f"{base}/search", params)
    for object_id in found.get("objectIDs") or []:

        def load(object_id: int = object_id) -> Artwork:
            obj = client.get_json(f"{base}/objects/{object_id}")
            return _artwork(
                "met", obj, MET_COLUMNS, object_id=_text(object_id),
                image_url=_text(obj.get("primaryImageSmall") or obj.get("primaryImage")),
                licence="CC0" if obj.get("isPublicDomain") is True else None,
            )  # fmt: skip

        yield Candidate(_text(object_id), load)


def _aic(
    client: HttpClient, base: str, terms: str, by_culture: bool, page_size: int
) -> Iterator[Candidate]:
    page, pages = 1, 1
    while page <= pages and (page - 1) * page_size < AIC_MAX_RESULTS:
        params = {
            "q": terms, "query[term][is_public_domain]": "true", "fields": AIC_FIELDS,
            "limit": page_size, "page": page,
        }  # fmt: skip
        found = client.get_json(f"{base}/artworks/search", params)
        pages = int((found.get("pagination") or {}).get("total_pages") or 0)
        iiif = _text((found.get("config") or {}).get("iiif_url")).rstrip("/")
        for rec in found.get("data") or []:
            image_id = _text(rec.get("image_id"))
            art = _artwork(
                "aic", rec, AIC_COLUMNS,
                image_url=f"{iiif}/{image_id}/full/843,/0/default.jpg" if image_id and iiif else "",
                licence="CC0" if rec.get("is_public_domain") is True else None,
            )  # fmt: skip
            yield Candidate(art.object_id, lambda art=art: art)
        page += 1


def _cleveland(
    client: HttpClient, base: str, terms: str, by_culture: bool, page_size: int
) -> Iterator[Candidate]:
    skip, total = 0, 1
    while skip < total:
        params = {"q": terms, "cc0": 1, "has_image": 1, "limit": page_size, "skip": skip}
        found = client.get_json(f"{base}/artworks/", params)
        total = int((found.get("info") or {}).get("total") or 0)
        data = found.get("data") or []
        for rec in data:
            creators = rec.get("creators") or [{}]
            cultures = rec.get("culture") or []  # a list of strings in the API
            if not isinstance(cultures, list):
                cultures = [cultures]
            art = _artwork(
                "cleveland", rec, CLEVELAND_COLUMNS,
                artist=_text(creators[0].get("description")),
                culture="; ".join(map(_text, cultures)),
                image_url=_text(((rec.get("images") or {}).get("web") or {}).get("url")),
                licence="CC0" if rec.get("share_license_status") == "CC0" else None,
            )  # fmt: skip
            yield Candidate(art.object_id, lambda art=art: art)
        if not data:
            break
        skip += len(data)


SOURCES = {"met": _met, "aic": _aic, "cleveland": _cleveland}


# ----------------------------------------------------------------------------- the fetch


@dataclass
class MuseumFetch:
    """What :func:`fetch_museum` did; every object that was not saved is counted or named."""

    source: str
    out: Path
    saved: int = 0
    in_manifest: int = 0  # rows of this source after the run
    already_there: int = 0
    not_public_domain: int = 0
    no_image: int = 0
    other_culture: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (label, kept twin)
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (label, error)

    def report(self) -> str:
        counts = [
            (self.already_there, "already there"),
            (self.not_public_domain, "not public domain / CC0"),
            (self.no_image, "without an image"),
            (self.other_culture, "of another culture"),
            (len(self.duplicates), "near-duplicates"),
            (len(self.corrupt), "corrupt images"),
            (len(self.failed), "failed downloads"),
        ]
        skipped = ", ".join(f"{n} {what}" for n, what in counts if n)
        lines = [
            f"{self.source}: saved {self.saved} new images in '{self.out}' ({MANIFEST_NAME} "
            f"lists {self.in_manifest} from {self.source})"
            + (f"; skipped {skipped}" if skipped else "")
        ]
        lines += [f"  corrupt: {label}: {why}" for label, why in self.corrupt]
        lines += [f"  near-duplicate: {label} of {twin}" for label, twin in self.duplicates]
        lines += [f"  failed: {label}: {why}" for label, why in self.failed]
        return "\n".join(lines)


def _matches_culture(art: Artwork, culture: str | None) -> bool:
    return not culture or culture.casefold() in art.culture.casefold()


def fetch_museum(
    source: str,
    out: str | Path,
    *,
    culture: str | None = None,  # keep records whose culture / place of origin contains this
    query: str | None = None,  # search words (default: the culture)
    max_images: int = 100,  # images of this source in OUT after the run
    base_url: str | None = None,  # default: $CULTUREGAN_{SOURCE}_URL, else the museum's API
    delay: float | None = None,  # seconds between requests (default: DEFAULT_DELAYS[source])
    client: HttpClient | None = None,  # overrides delay
    page_size: int = 100,
    max_distance: int = DUPLICATE_DISTANCE,  # dHash bits within which images are duplicates
    progress: bool = True,
) -> MuseumFetch:
    """Fetch up to ``max_images`` public-domain images of ``source`` into ``out``."""
    if source not in SOURCES:
        raise ValueError(f"unknown museum '{source}' (known: {', '.join(SOURCES)})")
    if not (culture or query):
        raise ValueError("give --culture, --query or both: the museums are searched by words")
    if max_images < 1 or page_size < 1:
        raise ValueError(f"max_images and page_size must be >= 1, got {max_images}, {page_size}")
    out = Path(out)
    base = (base_url or os.environ.get(BASE_URL_ENVS[source]) or BASE_URLS[source]).rstrip("/")
    if client is None:
        extra = {"AIC-User-Agent": "culturegan dataset fetcher"} if source == "aic" else {}
        client = HttpClient(delay=DEFAULT_DELAYS[source] if delay is None else delay, headers=extra)
    manifest = Manifest(out / MANIFEST_NAME, MUSEUM_FIELDS, key_fields=("source", "object_id"))
    index = DuplicateIndex.from_rows(manifest.rows, max_distance)
    result = MuseumFetch(source, out, in_manifest=manifest.count(source=source))
    if result.in_manifest >= max_images:
        return result
    client.check_reachable(base)  # offline: fail here, in seconds, with the host's name
    out.mkdir(parents=True, exist_ok=True)
    terms = " ".join(t for t in (query, culture) if t)
    candidates: Iterator[Candidate] = SOURCES[source](client, base, terms, query is None, page_size)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=max_images, initial=result.in_manifest, desc=source, unit="img", disable=not progress
    )
    unsaved = 0
    try:
        for candidate in candidates:
            if manifest.has_file((source, candidate.object_id)):
                result.already_there += 1
                continue
            try:
                art = candidate.load()
            except OfflineError:
                raise
            except FetchError as exc:
                result.failed.append((f"{source} {candidate.object_id}", str(exc)))
                continue
            if art.licence is None:
                result.not_public_domain += 1
            elif not art.image_url:
                result.no_image += 1
            elif not _matches_culture(art, culture):
                result.other_culture += 1
            elif _save(art, out, client, index, manifest, result):
                unsaved += 1
                result.in_manifest += 1
                bar.update(1)
                if unsaved >= SAVE_EVERY:
                    manifest.save()
                    unsaved = 0
                if result.in_manifest >= max_images:
                    break
    finally:
        bar.close()
        if result.saved:
            manifest.save()
    return result


def _save(
    art: Artwork,
    out: Path,
    client: HttpClient,
    index: DuplicateIndex,
    manifest: Manifest,
    result: MuseumFetch,
) -> bool:
    """Download, check and record one artwork's image; False (counted) when it is not kept."""
    try:
        data = client.get_bytes(art.image_url)
    except OfflineError:
        raise
    except FetchError as exc:
        result.failed.append((art.label, str(exc)))
        return False
    stem = out / f"{art.source}-{re.sub(r'[^A-Za-z0-9_.-]', '_', art.object_id)}"
    try:
        saved = save_checked_image(data, stem, duplicates=index, root=out)
    except ImageRejected as exc:
        if exc.duplicate_of is not None:
            result.duplicates.append((art.label, exc.duplicate_of))
        else:
            result.corrupt.append((f"{art.label} ({art.image_url})", exc.reason))
        return False
    row = {**vars(art), "file": saved.path.name, "sha256": saved.sha256, "dhash": saved.dhash}
    manifest.add(row)
    result.saved += 1
    return True
