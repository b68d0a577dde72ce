"""The one Stylizer interface: every kind through from_pretrained, one signature, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import save_tiny_model, save_tiny_multidomain_model
from culturegan.checkpoint import CheckpointError
from culturegan.data.images import iter_image_batches
from culturegan.inference import (
    STYLIZERS,
    MultiDomainStylizer,
    Stylizer,
    TwoDomainStylizer,
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "two_domain": save_tiny_model(root / "two"),
        "multi_domain": save_tiny_multidomain_model(root / "multi"),
    }


@pytest.fixture()
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8))


def test_every_kind_opens_as_its_class(folders):
    assert set(STYLIZERS) == set(folders)
    for kind, folder in folders.items():
        stylizer = Stylizer.from_pretrained(folder)
        assert type(stylizer) is STYLIZERS[kind] and stylizer.kind == kind
    assert Stylizer.from_pretrained(folders["two_domain"]).options == frozenset()
    assert MultiDomainStylizer.options == {"seed", "reference", "mix", "strength"}
    # A class asked for by name opens only its own kind, and says what the folder holds.
    assert isinstance(TwoDomainStylizer.from_pretrained(folders["two_domain"]), TwoDomainStylizer)
    with pytest.raises(CheckpointError, match="holds a multi_domain model, not a TwoDomain"):
        TwoDomainStylizer.from_pretrained(folders["multi_domain"])


def test_onnx_file_opens_as_onnx_stylizer_with_the_same_pictures(folders, tmp_path, photo):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from culturegan.onnx_export import OnnxStylizer, export_onnx

    path = export_onnx(folders["two_domain"], tmp_path / "m.onnx", check=False)
    onnx = Stylizer.from_pretrained(path)
    assert isinstance(onnx, OnnxStylizer) and onnx.kind == "onnx"
    assert onnx.domains == ["photo", "art"] and onnx.options == frozenset()
    torch_out = np.asarray(Stylizer.from_pretrained(folders["two_domain"])(photo).images[0])
    onnx_out = np.asarray(onnx(photo, target="art").images[0])
    # Two float32 runtimes: a few values may round to the neighbouring 8-bit level.
    assert np.abs(torch_out.astype(int) - onnx_out).max() <= 1
    with pytest.raises(ValueError, match="seed: this onnx model"):
        onnx(photo, seed=3)
    with pytest.raises(ValueError, match="ONNX models run on the CPU"):
        Stylizer.from_pretrained(path, device="cuda")


@pytest.mark.parametrize(
    ("option", "value"),
    [("seed", 1), ("reference", "REF"), ("mix", {"art": 1.0}), ("strength", 0.5)],
)
def test_a_two_domain_model_refuses_style_options_by_name(folders, photo, option, value):
    stylizer = Stylizer.from_pretrained(folders["two_domain"])
    value = photo if value == "REF" else value
    with pytest.raises(ValueError, match=f"^{option}: this two_domain model gives one rendering"):
        stylizer(photo, **{option: value})
    with pytest.raises(ValueError, match=f"^{option}:"):
        stylizer.check_inputs(**{option: value})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch size must be >= 1"),
        ({"strength": 1.5}, r"strength must be in \[0, 1\]"),
        ({"strength": float("nan")}, r"strength must be in \[0, 1\]"),
        ({"seed": -1}, "seed must be in"),
        ({"mix": "ukiyoe:inf"}, "must be finite"),
        ({"mix": "ukiyoe:-1,ink:2"}, "must be finite and >= 0"),
        ({"mix": "ukiyoe:0"}, "positive sum"),
        ({"mix": "nope:1"}, "unknown mix domain 'nope'"),
        ({"target": "nope"}, "unknown target domain 'nope'"),
        ({"source": "nope", "target": "ink"}, "unknown source domain 'nope'"),
        ({}, "needs a target"),
        ({"target": "ink", "tile": 7}, "tile must be at least"),
        ({"target": "ink", "tile": 64, "tileable": True}, "tileable texture is made in one pass"),
        ({"mix": "ink:1", "reference": "REF"}, "either a reference image or a mix"),
    ],
)
def test_multi_domain_checks_refuse_bad_options(folders, photo, options, message):
    stylizer = Stylizer.from_pretrained(folders["multi_domain"])
    options = {k: (photo if v == "REF" else v) for k, v in options.items()}
    with pytest.raises(ValueError, match=message):
        stylizer.check_inputs(**options)


def test_one_signature_for_every_kind(folders, photo):
    two = Stylizer.from_pretrained(folders["two_domain"])
    multi = Stylizer.from_pretrained(folders["multi_domain"])
    out = two([photo, photo], source="photo", target="art", batch_size=1)
    assert out.direction == "photo->art" and [im.size for im in out.images] == [(44, 36)] * 2
    assert np.array_equal(np.asarray(out.images[0]), np.asarray(out.images[1]))
    a = multi(photo, target="ink", seed=1).images[0]
    b = multi(photo, target="ink", seed=2).images[0]
    c = multi(photo, target="ink", seed=1).images[0]
    assert np.array_equal(np.asarray(a), np.asarray(c))  # reproducible
    assert not np.array_equal(np.asarray(a), np.asarray(b))  # seeds differ
    mixed = multi(photo, mix="ink:1,ukiyoe:1")
    assert mixed.direction.endswith("->ink") or mixed.direction.endswith("->ukiyoe")
    ref = multi(photo, reference=photo)
    assert ref.direction.split("->")[1] in multi.domains
    # strength 0 of a residual generator: the input itself.
    same = multi(photo, target="ink", strength=0.0).images[0]
    assert np.abs(np.asarray(same, int) - np.asarray(photo, int)).max() <= 1


def test_the_batch_iterator_names_and_skips_unreadable_files(tmp_path):
    files = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        if i in (1, 2):
            path.write_bytes(b"not a png")
        else:
            Image.new("RGB", (8, 8), (i, i, i)).save(path)
        files.append(path)
    skipped = []
    batches = list(iter_image_batches(files, 2, skipped=skipped))
    # Batches follow the input slices: [0, 1], [2, 3], [4], minus the unreadable.
    assert [[p.name for p in paths] for paths, _ in batches] == [["0.png"], ["3.png"], ["4.png"]]
    assert [p.name for p, _ in skipped] == ["1.png", "2.png"]
    assert all("not a recognised image" in reason for _, reason in skipped)
