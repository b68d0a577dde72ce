"""The official CycleGAN datasets (Zhu et al., "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017), fetched into the layout the trainer reads.

The authors' ``datasets/download_cyclegan_dataset.sh`` downloads
``https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/NAME.zip``; each zip holds
``NAME/trainA/ NAME/trainB/ NAME/testA/ NAME/testB/`` (A: the paintings, B: the photos). This
module downloads the zip resumably (:meth:`HttpClient.download`), records its size and SHA-256
in ``OUT/download.json`` (the server publishes no checksums, so the record is what a later
download can be compared with), checks every member name before extracting anything (no
absolute paths, no ``..``, no links: a zip cannot write outside ``OUT``), and extracts the four
split folders straight into ``OUT`` (so ``--data.root OUT`` works) through a hidden staging
folder. ``OUT/README.md`` says where the data came from and that ``testA/ testB/`` are the
public test split.

Usage::

    result = fetch_cyclegan("ukiyoe2photo", "data/ukiyoe2photo"); print(result.report())
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from culturegan.data.fetch.http import HttpClient
from culturegan.fileio import atomic_write, write_json

CYCLEGAN_DATASETS = ("monet2photo", "vangogh2photo", "ukiyoe2photo", "cezanne2photo")
BASE_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
BASE_URL_ENV = "CULTUREGAN_CYCLEGAN_URL"  # tests and mirrors point this elsewhere
SPLIT_FOLDERS = ("trainA", "trainB", "testA", "testB")
RECORD_NAME = "download.json"
CHUNK = 1 << 20
MAX_EXTRACTED_BYTES = 20 << 30  # the largest of the four unpacks to about 0.4 GB
TEST_SPLIT_NOTE = (
    "testA/ and testB/ are the public test split published with the dataset: results in "
    "papers are reported on them, so evaluate there and never train on them."
)


@dataclass
class CycleGANFetch:
    """What :func:`fetch_cyclegan` did."""

    name: str
    out: Path
    url: str
    size: int
    sha256: str
    images: dict[str, int] = field(default_factory=dict)  # split folder -> files
    skipped_members: list[str] = field(default_factory=list)  # zip entries outside the splits
    resumed_from: int = 0
    already_there: bool = False

    def report(self) -> str:
        if self.already_there:
            head = f"{self.name} is already in '{self.out}' (see {RECORD_NAME}); nothing fetched"
        else:
            resumed = f", resumed at byte {self.resumed_from}" if self.resumed_from else ""
            head = f"{self.name}: {self.size} bytes from {self.url}{resumed}; sha256 {self.sha256}"
        counts = ", ".join(f"{k}/ {v}" for k, v in self.images.items())
        lines = [head, f"extracted into '{self.out}': {counts}"]
        if self.skipped_members:
            lines.append(
                f"left out {len(self.skipped_members)} zip entries outside the split folders "
                f"(e.g. {self.skipped_members[0]})"
            )
        lines.append(TEST_SPLIT_NOTE)
        return "\n".join(lines)


def _count(out: Path) -> dict[str, int]:
    return {
        split: sum(1 for p in (out / split).iterdir() if p.is_file())
        for split in SPLIT_FOLDERS
        if (out / split).is_dir()
    }


def _checked_member(info: zipfile.ZipInfo, zip_path: Path) -> PurePosixPath:
    """The member's path, or a ValueError when extracting it could write outside the folder."""
    name = info.filename
    path = PurePosixPath(name)
    mode = info.external_attr >> 16
    bad = (
        "an absolute path"
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")
        else "a backslash in its name"
        if "\\" in name
        else "a '..' component"
        if ".." in path.parts
        else "a symbolic link"
        if stat.S_ISLNK(mode)
        else None
    )
    if bad:
        raise ValueError(
            f"refusing '{zip_path}': member '{name}' has {bad}, so extracting it could write "
            "outside the output folder; nothing was extracted"
        )
    return path


def _split_relative(path: PurePosixPath) -> PurePosixPath | None:
    """``NAME/trainA/x.jpg`` or ``trainA/x.jpg`` -> ``trainA/x.jpg``; None for anything else."""
    parts = path.parts
    for start in (0, 1):
        if len(parts) > start + 1 and parts[start] in SPLIT_FOLDERS:
            rel = PurePosixPath(*parts[start:])
            return None if any(p.startswith(".") for p in rel.parts) else rel
    return None


def extract_cyclegan_zip(zip_path: str | Path, out: str | Path) -> list[str]:
    """Extract the split folders of ``zip_path`` into ``out`` (replacing them); returns the
    member names that were left out. Every member is checked before anything is written."""
    zip_path, out = Path(zip_path), Path(out)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise ValueError(
            f"'{zip_path}' is not a zip file ({exc}); delete it and fetch again"
        ) from None
    with archive:
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        skipped: list[str] = []
        for info in archive.infolist():
            path = _checked_member(info, zip_path)
            rel = None if info.is_dir() else _split_relative(path)
            if rel is not None:
                plan.append((info, rel))
            elif not info.is_dir():
                skipped.append(info.filename)
        if not any(rel.parts[0] == "trainA" for _, rel in plan) or not any(
            rel.parts[0] == "trainB" for _, rel in plan
        ):
            raise ValueError(f"'{zip_path}' has no trainA/ and trainB/ folders: not a CycleGAN zip")
        if sum(info.file_size for info, _ in plan) > MAX_EXTRACTED_BYTES:
            raise ValueError(f"'{zip_path}' unpacks to more than {MAX_EXTRACTED_BYTES} bytes")
        staging = out / f".extract-{zip_path.stem}"
        shutil.rmtree(staging, ignore_errors=True)
        for info, rel in plan:
            target = staging.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:  # zipfile stops at the header's size and checks the CRC at the end
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise ValueError(
                    f"'{zip_path}': member '{info.filename}' is damaged ({exc}); delete the zip "
                    "and fetch again"
                ) from None
    for split in SPLIT_FOLDERS:
        if (staging / split).is_dir():
            shutil.rmtree(out / split, ignore_errors=True)
            os.replace(staging / split, out / split)
    shutil.rmtree(staging, ignore_errors=True)
    return skipped


def _readme(name: str, url: str, size: int, sha256: str, counts: dict[str, int]) -> str:
    domain_a = name.split("2")[0]
    folders = "\n".join(f"- `{k}/`: {v} images" for k, v in counts.items())
    return f"""# {name} (official CycleGAN dataset)

Fetched by `culturegan fetch cyclegan {name}` from {url}
on {time.strftime("%Y-%m-%d", time.gmtime())}: {size} bytes, SHA-256 `{sha256}`
(also in `{RECORD_NAME}`).

{folders}

A is `{domain_a}`, B is `photo`: train with
`culturegan train --config cyclegan_cpu --data.root THIS_FOLDER --data.domains {domain_a},photo`.

{TEST_SPLIT_NOTE}

Licence: the CycleGAN authors (Zhu, Park, Isola, Efros) distribute these images for research.
The paintings come from WikiArt and the photos from Flickr; their copyrights stay with their
owners, so check before redistributing any of them.
"""


def fetch_cyclegan(
    name: str,
    out: str | Path,
    *,
    base_url: str | None = None,  # default: $CULTUREGAN_CYCLEGAN_URL, else the Berkeley server
    client: HttpClient | None = None,
    keep_zip: bool = False,  # keep OUT/NAME.zip after extracting it
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> CycleGANFetch:
    """Download, record, check and extract the CycleGAN dataset ``name`` into ``out``."""
    if name not in CYCLEGAN_DATASETS:
        raise ValueError(
            f"unknown CycleGAN dataset '{name}' (known: {', '.join(CYCLEGAN_DATASETS)})"
        )
    out = Path(out)
    base = (base_url or os.environ.get(BASE_URL_ENV) or BASE_URL).rstrip("/")
    url = f"{base}/{name}.zip"
    record_path = out / RECORD_NAME
    record: dict = {}
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("name") != name:
            raise ValueError(
                f"'{out}' holds the CycleGAN dataset '{record.get('name')}', not '{name}'; "
                "use another --out folder"
            )
        if record.get("extracted") and all((out / s).is_dir() for s in ("trainA", "trainB")):
            return CycleGANFetch(
                name, out, record["url"], record["size"], record["sha256"], _count(out),
                already_there=True,
            )  # fmt: skip
    elif any((out / s).exists() for s in SPLIT_FOLDERS):
        raise ValueError(
            f"'{out}' already has CycleGAN split folders that culturegan did not fetch "
            f"(no {RECORD_NAME}); use another --out folder"
        )

    client = client or HttpClient()
    zip_path = out / f"{name}.zip"
    if zip_path.is_file() and record.get("sha256"):
        size, sha256, resumed = record["size"], record["sha256"], 0  # downloaded, not extracted
    else:
        client.check_reachable(url)  # offline: fail here, before any folder is made
        say(f"downloading {url} -> {zip_path}")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc=name)

        def show(done: int, total: int | None) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        try:
            result = client.download(url, zip_path, progress=show)
        finally:
            if bar is not None:
                bar.close()
        size, sha256, resumed = result.size, result.sha256, result.resumed_from
        record = {"name": name, "url": url, "file": zip_path.name, "size": size,
                  "sha256": sha256, "extracted": False}  # fmt: skip
        write_json(record_path, record)
    skipped = extract_cyclegan_zip(zip_path, out)
    counts = _count(out)
    atomic_write(
        out / "README.md", lambda tmp: tmp.write_text(_readme(name, url, size, sha256, counts))
    )
    write_json(record_path, {**record, "extracted": True, "images": counts})
    if not keep_zip:
        zip_path.unlink()
    return CycleGANFetch(name, out, url, size, sha256, counts, skipped, resumed)
