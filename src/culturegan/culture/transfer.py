"""``culturegan analyze-transfer``: how far does a model move photos toward each culture?

The photos are stylized into every target culture the model knows and that has a folder of
real art; then photos, outputs and art are described the same way and compared, per target:

* share of the gap closed, in descriptor space: with P, O, A the mean standardised descriptor
  vectors of photos, outputs and art (standardised by the pooled SD of photos and that art),
  ``1 - |A - O| / |A - P|`` (1: outputs land on the art's mean; 0: no closer than the photos;
  negative: further away), and the projection ``(O - P).(A - P) / |A - P|^2``;
* the same in embedding space, with the Frechet distance on principal components
  (``1 - FD(O, A) / FD(P, A)``);
* which descriptors changed most (mean change in SDs of the photos-and-art pool) and which share
  of each descriptor's photo-to-art gap was closed;
* how often a classifier trained on the photos and the art (logistic regression on the
  descriptors) takes an output for the target culture;
* where the outputs land on the PCA map of photos and art.

Usage::

    result = analyze_transfer("runs/003/model", "photos/", "art/", "transfer_report/")
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from culturegan.culture.classify import fit_logistic, fit_pca, predict_logistic, standardise
from culturegan.culture.descriptors import DEFAULT_SIZE
from culturegan.culture.extract import describe_files
from culturegan.culture.stats import frechet_distance
from culturegan.culture.table import DescriptorTable, scan_cultures
from culturegan.data.images import iter_image_batches, scan_images
from culturegan.fileio import atomic_write, write_json

MIN_GAP_SD = 0.2  # a descriptor whose photo-art gap is smaller has no meaningful "share closed"
TOP_CHANGED = 6
PHOTOS = "photos"


@dataclass
class TransferResult:
    out_dir: Path
    summary_json: Path
    index_html: Path
    descriptors_csv: Path
    gap_closed: dict[str, float | None]  # target -> share of the descriptor gap closed
    classified_as_target: dict[str, float]  # target -> share of outputs taken for the target
    seconds: float


def _pick_domains(
    domains: Sequence[str], cultures: Sequence[str], source: str | None, targets: Sequence | None
) -> tuple[str, list[str]]:
    if targets is None:
        targets = [d for d in domains if d in cultures and d != source]
    unknown = [t for t in targets if t not in domains]
    missing = [t for t in targets if t not in cultures]
    if unknown:
        raise ValueError(f"the model has no domain {unknown} (it has: {', '.join(domains)})")
    if missing:
        raise ValueError(f"no art folder for target(s) {missing} (art folders: {cultures})")
    if not targets:
        raise ValueError(
            f"none of the model's domains ({', '.join(domains)}) has a folder of art "
            f"(found: {', '.join(cultures)}); name the art folders after the model's domains"
        )
    if source is None:
        others = [d for d in domains if d not in targets]
        if "photo" in others:
            source = "photo"
        elif len(others) == 1:
            source = others[0]
        else:
            raise ValueError(f"cannot tell the photos' domain among {others}: give --source")
    if source not in domains:
        raise ValueError(f"unknown source domain '{source}' (the model has: {', '.join(domains)})")
    return source, [t for t in targets if t != source]


def stylize_folder(
    stylizer,
    files: Sequence[Path],
    out_dir: Path,
    *,
    source: str,
    target: str,
    seed: int,
    batch_size: int = 8,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Stylize ``files`` batch by batch into ``out_dir`` (PNG, same stem); returns the written
    files and the inputs that could not be read."""
    takes_seed = "seed" in stylizer.options
    written: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    for chunk, images in iter_image_batches(files, batch_size, skipped=skipped):
        extra = {"seed": seed + start} if takes_seed else {}
        start += batch_size
        result = stylizer(images, source=source, target=target, **extra)
        for path, image in zip(chunk, result.images, strict=True):
            out = out_dir / f"{path.stem}.png"
            atomic_write(out, lambda tmp, im=image: im.save(tmp, format="PNG"))
            written.append(out)
    return written, skipped


def transfer_statistics(
    photos: DescriptorTable, outputs: DescriptorTable, art: DescriptorTable
) -> dict:
    """Descriptor-space movement of ``outputs`` from ``photos`` toward ``art`` (one target)."""
    pool = np.concatenate([photos.values, art.values])
    _, _, sd = standardise(pool)
    p, o, a = (t.values.mean(0) / sd for t in (photos, outputs, art))
    gap, moved = a - p, o - p
    before, after = float(np.linalg.norm(gap)), float(np.linalg.norm(a - o))
    per = {}
    for j, name in enumerate(photos.names):
        gap_j = float(gap[j])
        per[name] = {
            "photos": float(photos.values[:, j].mean()),
            "outputs": float(outputs.values[:, j].mean()),
            "art": float(art.values[:, j].mean()),
            "change_sd": float(moved[j]),
            "gap_sd": gap_j,
            "share_closed": float(moved[j] / gap_j) if abs(gap_j) >= MIN_GAP_SD else None,
        }
    ranked = sorted(per, key=lambda n: -abs(per[n]["change_sd"]))
    return {
        "distance_before_sd": before,
        "distance_after_sd": after,
        "gap_closed": 1.0 - after / before if before > 0 else None,
        "gap_closed_projection": float(moved @ gap / (gap @ gap)) if before > 0 else None,
        "descriptors": per,
        "most_changed": ranked[:TOP_CHANGED],
    }


def embedding_movement(p: np.ndarray, o: np.ndarray, a: np.ndarray) -> dict:
    """Frechet distances photos->art and outputs->art on shared principal components."""
    smallest = min(len(p), len(o), len(a))
    k = int(max(2, min(16, p.shape[1], smallest // 2)))
    projection = fit_pca(np.concatenate([p, o, a]), k, scale=False)
    zp, zo, za = (projection.transform(x) for x in (p, o, a))
    before, after = frechet_distance(zp, za), frechet_distance(zo, za)
    mp, mo, ma = p.mean(0), o.mean(0), a.mean(0)
    return {
        "n_components": k,
        "frechet_photos_to_art": before,
        "frechet_outputs_to_art": after,
        "gap_closed_frechet": 1.0 - after / before if before > 0 else None,
        "gap_closed_mean": 1.0 - float(np.linalg.norm(ma - mo) / np.linalg.norm(ma - mp))
        if np.linalg.norm(ma - mp) > 0
        else None,
    }


def analyze_transfer(
    model_dir: str | os.PathLike,
    photos: str | os.PathLike,
    art_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    source: str | None = None,  # the photos' domain (default: "photo" or the only other one)
    targets: Sequence[str] | None = None,  # default: every model domain with an art folder
    size: int = DEFAULT_SIZE,
    embeddings: bool = True,
    backbone: object = "lite0",
    max_photos: int | None = None,  # use only the first N photos (sorted by path)
    cache_dir: str | os.PathLike | None = "default",
    workers: int | None = None,
    seed: int = 0,  # for models that sample (multi-domain style codes)
    progress: bool = True,
) -> TransferResult:
    """Stylize ``photos`` into each target culture and measure the movement (module doc)."""
    from culturegan.inference import Stylizer

    start = time.perf_counter()
    out_dir, photos, art_root = Path(out_dir), Path(photos), Path(art_root)
    stylizer = Stylizer.from_pretrained(model_dir)
    scan = scan_cultures(art_root, min_cultures=1)
    source, targets = _pick_domains(stylizer.domains, scan.cultures, source, targets)
    photo_scan = scan_images(photos, check="header")
    photo_files = photo_scan.files[:max_photos] if max_photos else photo_scan.files
    if len(photo_files) < 2:
        raise ValueError(f"'{photos}' holds {len(photo_files)} usable photo(s); at least 2 needed")
    cache = out_dir / "cache" if cache_dir == "default" else cache_dir
    skipped = [(PHOTOS, p, r) for p, r in photo_scan.skipped] + list(scan.skipped)

    def describe(items, root):
        table, failed = describe_files(
            items, root=root, size=size, cache_dir=cache, workers=workers, progress=progress
        )
        skipped.extend(failed)
        return table

    photo_table = describe([(PHOTOS, f) for f in photo_files], photos)
    stylized_root = out_dir / "stylized"
    outputs, art = {}, {}
    for target in targets:
        written, bad = stylize_folder(
            stylizer, photo_files, stylized_root / target, source=source, target=target, seed=seed
        )
        skipped.extend((PHOTOS, p, r) for p, r in bad)
        outputs[target] = describe([(f"stylized:{target}", f) for f in written], stylized_root)
        art[target] = describe([(target, f) for f in scan.files[target]], art_root)

    from culturegan.culture.transfer_report import write_transfer_outputs

    summary = {
        "format_version": 1,
        "model": str(model_dir),
        "photos": str(photos),
        "art": str(art_root),
        "source": source,
        "targets": targets,
        "working_size": size,
        "seed": seed,
        "skipped": [{"group": g, "path": str(p), "reason": r} for g, p, r in skipped],
        "per_target": {},
    }
    classifier = _art_classifier(photo_table, art)
    vectors = {}
    if embeddings:
        from culturegan.culture.embed import embed_table

        def emb(table: DescriptorTable, root: Path) -> np.ndarray:
            found, _, _, info = embed_table(
                table, root, backbone=backbone, size=size, cache_dir=cache, progress=progress
            )
            summary["learned"] = {k: v for k, v in info.items() if k != "gram"}
            return found[info["backbone"]]

        vectors[PHOTOS] = emb(photo_table, photos)
        for target in targets:
            vectors[f"out:{target}"] = emb(outputs[target], stylized_root)
            vectors[f"art:{target}"] = emb(art[target], art_root)
    for target in targets:
        stats = transfer_statistics(photo_table, outputs[target], art[target])
        stats["n_photos"], stats["n_outputs"] = len(photo_table), len(outputs[target])
        stats["n_art"] = len(art[target])
        predicted = classifier(outputs[target].values)
        stats["classified_as"] = {c: float(np.mean(predicted == c)) for c in sorted(set(predicted))}
        stats["classified_as_target"] = float(np.mean(predicted == target))
        if vectors:
            stats["embedding"] = embedding_movement(
                vectors[PHOTOS], vectors[f"out:{target}"], vectors[f"art:{target}"]
            )
        summary["per_target"][target] = stats
    summary["seconds"] = time.perf_counter() - start
    index, csv_path = write_transfer_outputs(
        out_dir, summary, photo_table, outputs, art, photos, stylized_root, art_root
    )
    write_json(out_dir / "summary.json", summary)
    per = summary["per_target"]
    return TransferResult(
        out_dir=out_dir,
        summary_json=out_dir / "summary.json",
        index_html=index,
        descriptors_csv=csv_path,
        gap_closed={t: per[t]["gap_closed"] for t in targets},
        classified_as_target={t: per[t]["classified_as_target"] for t in targets},
        seconds=time.perf_counter() - start,
    )


def _art_classifier(photos: DescriptorTable, art: dict[str, DescriptorTable]):
    """A descriptor classifier trained on the photos and every target's art."""
    x = np.concatenate([photos.values] + [t.values for t in art.values()])
    labels = np.array([PHOTOS] * len(photos) + [c for t in art.values() for c in t.culture])
    classes, y = np.unique(labels, return_inverse=True)
    z, mean, sd = standardise(x)
    w = fit_logistic(z, y, len(classes))

    def predict(values: np.ndarray) -> np.ndarray:
        return classes[predict_logistic(w, (values - mean) / sd)]

    return predict
