"""Training crops: a scan's margins trimmed before the crop (data.trim)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from culturegan.config import load_config
from culturegan.data.datasets import MultiDomainDataset, UnpairedDataset, trim_margins
from culturegan.data.splits import load_splits
from culturegan.training.loop import build_loader

FRAME = (200, 20, 30)  # a crimson mount around a grey print


def framed_print(path, size=(120, 90), border=5):
    arr = np.full((size[1], size[0], 3), FRAME, np.uint8)
    arr[border:-border, border:-border] = 128
    Image.fromarray(arr).save(path)
    return path


def frame_pixels(tensor):
    rgb = np.round((tensor.numpy().transpose(1, 2, 0) + 1) * 127.5)
    return int((np.abs(rgb - FRAME).sum(axis=2) < 60).sum())


def test_trim_margins_cuts_each_side_and_keeps_a_pixel():
    img = Image.new("RGB", (200, 100))
    assert trim_margins(img, 0.05).size == (180, 90)
    assert trim_margins(img, 0.0) is img
    assert trim_margins(Image.new("RGB", (3, 2)), 0.24).size == (1, 2)  # never empty


def test_trimmed_crops_never_show_the_mount(tmp_path):
    files = [framed_print(tmp_path / f"print{i}.png") for i in range(3)]
    options = {"load_size": 40, "crop_size": 32}
    untrimmed = UnpairedDataset(files, files, **options)
    trimmed = UnpairedDataset(files, files, **options, trim=0.06)  # 5 px of 90 is 0.056
    seen = [frame_pixels(untrimmed[(i % 3, 0, i)]["a"]) for i in range(40)]
    assert sum(p > 0 for p in seen) > 20  # a 32 px crop of 40 px almost always reaches it
    assert all(frame_pixels(trimmed[(i % 3, 0, i)]["a"]) == 0 for i in range(40))
    multi = MultiDomainDataset([files, files], **options, trim=0.06)
    item = multi[(0, 1, 1, 2, 0, 7)]
    assert all(frame_pixels(item[k]) == 0 for k in ("x", "x_ref", "x_ref2"))


def test_data_trim_reaches_the_loader_and_is_checked(tmp_path):
    for domain in ("photo", "ukiyoe"):
        (tmp_path / domain).mkdir()
        for i in range(4):
            framed_print(tmp_path / domain / f"{i}.png")
    cfg = load_config(
        "multidomain_cpu",
        {
            "data.root": str(tmp_path),
            "data.trim": 0.06,
            "data.load_size": 40,
            "data.crop_size": 32,
            "train.batch_size": 2,
        },
    ).validate()
    splits = load_splits(tmp_path, ratios=(0.5, 0.25, 0.25))
    batch = next(iter(build_loader(cfg, splits, ("photo", "ukiyoe"), start_step=0)))
    assert batch["x"].shape == (2, 3, 32, 32)
    assert all(frame_pixels(t) == 0 for key in ("x", "x_ref") for t in batch[key])
    with pytest.raises(ValueError, match=r"data.trim must be in \[0, 0.25\), got 0.3"):
        load_config("multidomain_cpu", {"data.trim": 0.3}).validate()
