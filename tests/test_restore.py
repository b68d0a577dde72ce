"""Old-photo restoration: the degradation model, the U-Net, recipe pix2pix, the classical
baseline and ``culturegan restore``."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import flat_state
from culturegan.cli import main
from culturegan.config import load_config
from culturegan.data.degrade import (
    STAGE_FUNCTIONS,
    STAGES,
    apply_record,
    degrade,
    derive_seed,
    draw_record,
)
from culturegan.inference import Stylizer
from culturegan.models import build_generator
from culturegan.models.generators import generator_from_config
from culturegan.restore import classical_restore, defect_mask, estimate_noise
from culturegan.training import train
from culturegan.training.loop import CHECKPOINT_NAME, load_training_state
from culturegan.training.pix2pix import Pix2PixRecipe, degrade_batch

F32 = float(np.finfo(np.float32).eps)


def smooth_photo(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    """A colourful, smooth uint8 image with some edges (a stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 226, (h // 16, w // 16, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img[h // 3 : h // 2, w // 4 : w // 2] = rng.integers(30, 226, 3)  # a flat block: edges
    return img


def flat(value: float, h: int = 64, w: int = 64) -> np.ndarray:
    return np.full((h, w, 3), value, np.float32)


def hf_energy(x: np.ndarray) -> float:
    """Mean squared Laplacian: the high-frequency energy of an image."""
    return float(np.mean(cv2.Laplacian(x.astype(np.float32), cv2.CV_32F) ** 2))


# ----------------------------------------------------------------------------- degradation


def test_same_seed_same_image_and_record_other_seeds_differ():
    photo = smooth_photo()
    a, rec_a = degrade(photo, 11)
    b, rec_b = degrade(photo, 11)
    assert np.array_equal(a, b) and rec_a == rec_b and rec_a["seed"] == 11
    assert a.dtype == np.uint8 and a.shape == photo.shape
    others = [degrade(photo, s) for s in (12, 13)]
    for image, record in others:
        assert record != rec_a and not np.array_equal(image, a)
    # PIL in, PIL out, the same pixels.
    pil, rec_pil = degrade(Image.fromarray(photo), 11)
    assert isinstance(pil, Image.Image) and rec_pil == rec_a
    assert np.array_equal(np.asarray(pil), a)


def test_a_record_is_json_and_replays_exactly():
    photo = smooth_photo(seed=1)
    for seed in range(6):
        image, record = degrade(photo, seed)
        replayed = apply_record(photo, json.loads(json.dumps(record)))
        assert np.array_equal(replayed, image)
    with pytest.raises(ValueError, match="unknown degradation stages"):
        apply_record(photo, {"seed": 0, "sunburn": {}})


def test_stages_are_drawn_with_the_documented_probabilities():
    n = 400
    records = [draw_record(seed) for seed in range(n)]
    assert list(STAGES) == list(STAGE_FUNCTIONS)
    for stage, p in STAGES.items():
        hits = sum(r[stage] is not None for r in records)
        # Binomial(n, p): 4.5 standard deviations (the seeds are fixed, so this is exact
        # for this draw; the bound says the table and the code agree).
        assert abs(hits - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)), (stage, hits)


def test_derive_seed_is_a_pure_function_of_its_keys():
    assert derive_seed(0, 1, 2, 3) == derive_seed(0, 1, 2, 3)
    seeds = {derive_seed(0, 5, step, j) for step in range(50) for j in range(4)}
    assert len(seeds) == 200 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(2, 5, 0) not in seeds  # another stream
    with pytest.raises(ValueError, match=">= 0"):
        derive_seed(0, -1)
    with pytest.raises(ValueError, match="seed must be"):
        degrade(smooth_photo(), -3)


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match="RGB image"):
        degrade(np.zeros((8, 8), np.uint8), 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        degrade(np.full((8, 8, 3), 2.0, np.float32), 0)


def test_fade_and_yellowing_follow_their_formulas():
    x = smooth_photo().astype(np.float32) / 255
    p = {"contrast": 0.6, "fog": 0.8}
    assert np.allclose(STAGE_FUNCTIONS["fade"](x, p), x * 0.6 + 0.8 * 0.4, atol=4 * F32)
    faded = STAGE_FUNCTIONS["fade"](x, p)
    assert faded.std() == pytest.approx(0.6 * x.std(), rel=1e-5)  # contrast scales the spread
    yellow = STAGE_FUNCTIONS["tone"](x, {"kind": "yellow", "amount": 0.3})
    assert np.allclose(yellow, x * np.array([1.0, 0.9, 0.7], np.float32), atol=2 * F32)


@pytest.mark.parametrize("kind", ["sepia", "yellow"])
def test_toning_raises_red_against_blue(kind):
    grey = np.repeat(np.linspace(0.1, 0.9, 64, dtype=np.float32)[None, :, None], 3, axis=2)
    grey = np.repeat(grey, 16, axis=0)  # (16, 64, 3), R = G = B
    toned = STAGE_FUNCTIONS["tone"](grey, {"kind": kind, "amount": 0.3})
    r, g, b = (toned[..., c].mean() for c in range(3))
    assert r > g > b and r - b > 0.05


@pytest.mark.parametrize("stage,params", [("blur", {"sigma": 1.2}), ("low_res", {"factor": 2.5})])
def test_blur_and_low_resolution_remove_high_frequencies(stage, params):
    rng = np.random.default_rng(0)
    x = np.clip(smooth_photo() / 255 + rng.normal(0, 0.05, (64, 80, 3)), 0, 1).astype(np.float32)
    out = STAGE_FUNCTIONS[stage](x, params)
    assert out.shape == x.shape
    assert hf_energy(out) < 0.3 * hf_energy(x)
    assert abs(out.mean() - x.mean()) < 0.01  # both keep the mean (up to the borders)


def test_grain_has_the_drawn_strength_and_colour_correlation():
    x = flat(0.5, 128, 128)
    p = {"sigma": 0.05, "size": 0.0, "mono": 0.8, "noise_seed": 3}
    noise = STAGE_FUNCTIONS["grain"](x, p) - x  # (128, 128, 3)
    # 49,152 Gaussian samples: the sample std is within 1% of sigma with overwhelming odds.
    assert noise.std() == pytest.approx(0.05, rel=0.03)
    # Correlation of two channels = the mono share; its sampling error is ~1/sqrt(16384).
    corr = np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]
    assert corr == pytest.approx(0.8, abs=0.04)
    clumped = STAGE_FUNCTIONS["grain"](x, {**p, "size": 1.0}) - x
    assert clumped.std() == pytest.approx(0.05, rel=0.03)  # rescaled to the same strength
    assert hf_energy(clumped) < 0.5 * hf_energy(noise)


def test_scratches_dust_and_creases_mark_where_drawn():
    x = flat(0.4)
    line = {"start": [0.5, 0.0], "end": [0.5, 1.0], "length": 1.0, "offset": 0.0, "width": 1}
    pale = STAGE_FUNCTIONS["scratch"](x, [{**line, "pale": True, "opacity": 1.0}])
    # The antialiased line at x = 31.5 covers at least half of column 31 or 32 on every row
    # but the end caps: at least halfway from 0.4 to the scratch's 0.97 (or its dark 0.05).
    column = pale[1:-1, 31:33].max(axis=1)
    assert (column[:, 0] > 0.4 + 0.5 * (0.97 - 0.4) - 1e-3).all()
    assert (pale != x).any(axis=2).mean() < 0.06  # a thin line: a few columns out of 64
    dark = STAGE_FUNCTIONS["scratch"](x, [{**line, "pale": False, "opacity": 1.0}])
    assert (dark[1:-1, 31:33].min(axis=1)[:, 0] < 0.4 - 0.5 * (0.4 - 0.05) + 1e-3).all()

    specks = [{"at": [0.25, 0.25], "radius": 2.0, "pale": True, "opacity": 1.0},
              {"at": [0.75, 0.75], "radius": 2.0, "pale": False, "opacity": 1.0}]  # fmt: skip
    dusty = STAGE_FUNCTIONS["dust"](x, specks)
    centre_pale, centre_dark = (round(0.25 * 63), round(0.25 * 63)), (round(0.75 * 63),) * 2
    assert dusty[centre_pale][0] > 0.9 and dusty[centre_dark][0] < 0.1
    # Two discs of radius 2 plus a pixel of antialiasing touch at most two 7 x 7 squares.
    assert (dusty != x).any(axis=2).sum() <= 2 * 7 * 7

    crease = {"start": [0.0, 0.5], "end": [1.0, 0.5], "bend": 0.0, "width": 2.0, "strength": 0.5}
    folded = STAGE_FUNCTIONS["crease"](x, [crease])
    row = folded[:, 32, 0]  # down the middle column; the line is at y = 31.5
    assert row[31] > 0.55 and row[0] == pytest.approx(0.4, abs=1e-4)  # pale core, far: as is
    # The shadow lies on one side only: 1.5 widths along the normal (0, 1), y = 34.5.
    assert min(row[34:38]) < 0.4 - 0.05 and min(row[26:30]) >= 0.4 - 1e-4


def test_lower_jpeg_quality_loses_more():
    x = smooth_photo().astype(np.float32) / 255
    errors = [np.abs(STAGE_FUNCTIONS["jpeg"](x, {"quality": q}) - x).mean() for q in (85, 30)]
    assert 0 < errors[0] < errors[1]


# ----------------------------------------------------------------------------- U-Net


def test_unet_rebuilds_from_its_config_and_a_zero_residual_is_the_identity():
    torch.manual_seed(0)
    g = build_generator("unet_32", ngf=8, max_channels=16, residual=True).eval()
    x = torch.rand(1, 3, 40, 56) * 2 - 1  # not a multiple of 32: padded inside
    twin = generator_from_config(json.loads(json.dumps(g.config)))
    twin.load_state_dict(g.state_dict())
    assert g(x).shape == x.shape and torch.equal(g(x), twin(x))
    last = g.up[-1][1]  # the outermost transposed convolution
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    # tanh(atanh(clamp(x))) = clamp(x): at most 1e-3 from x, plus float32 rounding.
    assert (g(x) - x).abs().max() <= 1e-3 + 8 * F32
    with pytest.raises(ValueError, match="5 downsamplings"):
        build_generator("unet_32", n_down=4)


# ----------------------------------------------------------------------------- pix2pix


@pytest.fixture
def p2p_cfg(tiny_data, tmp_path):
    return load_config(
        "pix2pix_tiny",
        {
            "data.root": str(tiny_data),
            "data.domains": "photo",
            "train.runs_dir": str(tmp_path / "runs"),
        },
    )


def test_a_few_steps_change_g_and_d_and_pairs_come_from_seed_step_index(p2p_cfg):
    torch.manual_seed(p2p_cfg.train.seed)
    recipe = Pix2PixRecipe(p2p_cfg, device=torch.device("cpu"), domains=("photo",))
    initial = flat_state(recipe.state_dict())
    assert recipe.pair_seeds(5, 2) == [derive_seed(0, 0, 5, 0), derive_seed(0, 0, 5, 1)]
    assert recipe.pair_seeds(5, 2) != recipe.pair_seeds(6, 2)
    clean = torch.rand(2, 3, 32, 32).mul(255).round().div(127.5).sub(1)  # on the 8-bit grid
    old = degrade_batch(clean, recipe.pair_seeds(5, 2))
    assert torch.equal(old, degrade_batch(clean, recipe.pair_seeds(5, 2)))
    pixels = ((clean[0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    expected, _ = degrade(pixels, derive_seed(0, 0, 5, 0))
    assert torch.equal(old[0], torch.from_numpy(expected).permute(2, 0, 1).float() / 127.5 - 1)

    result = train(p2p_cfg, progress=False)
    assert result.finished and result.step == 6
    final = flat_state(load_training_state(result.run_dir / CHECKPOINT_NAME)["recipe"])
    for key in ("g.down.0.0.weight", "g.up.4.1.weight", "d.model.0.weight"):
        assert not torch.equal(initial[key], final[key]), f"{key} did not change"
    records = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss/l1"]) and math.isfinite(r["loss/d"]) for r in records)


def test_resume_is_bit_exact(p2p_cfg):
    straight = train(p2p_cfg, progress=False)
    interrupted = train(p2p_cfg, until_step=3, progress=False)
    assert interrupted.step == 3 and not interrupted.finished
    resumed = train(resume_dir=interrupted.run_dir, progress=False)
    assert resumed.finished
    a = flat_state(load_training_state(straight.run_dir / CHECKPOINT_NAME))
    b = flat_state(load_training_state(resumed.run_dir / CHECKPOINT_NAME))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"


def test_bad_pix2pix_configs_are_refused(p2p_cfg):
    p2p_cfg.loss.lambda_gan = p2p_cfg.loss.lambda_l1 = 0.0
    with pytest.raises(ValueError, match="nothing trains the generator"):
        p2p_cfg.validate()
    p2p_cfg.loss.lambda_l1 = 100.0
    p2p_cfg.model.discriminator = "projected_lite0"
    with pytest.raises(ValueError, match="conditional patchgan"):
        Pix2PixRecipe(p2p_cfg, device=torch.device("cpu"), domains=("photo",))


def test_export_opens_in_the_stylizer_and_restore_writes_outputs(p2p_cfg, tmp_path, capsys):
    run = train(p2p_cfg, progress=False).run_dir
    stylizer = Stylizer.from_pretrained(run / "model")
    assert stylizer.domains == ["degraded", "restored"]
    assert stylizer.directions == {"degraded->restored": "g_ab"}
    scans = tmp_path / "scans"
    scans.mkdir()
    for i, size in enumerate([(40, 30), (50, 64)]):
        Image.fromarray(smooth_photo(size[1], size[0], seed=i)).save(scans / f"old{i}.jpg")
    (scans / "broken.png").write_bytes(b"not an image")
    for how, flags in (("model", ["--model", str(run / "model")]), ("classical", ["--classical"])):
        out = tmp_path / f"out_{how}"
        assert main(["restore", str(scans), "--out", str(out), *flags]) == 0
        report = capsys.readouterr().out
        assert "restored 2 images" in report and "skipped 1 unreadable" in report
        for i, size in enumerate([(40, 30), (50, 64)]):
            assert Image.open(out / f"old{i}.png").size == size
    assert main(["restore", str(scans), "--out", str(tmp_path / "x")]) == 2
    assert "--model M" in capsys.readouterr().err
    # A culture model has no "restored" domain: refused by name.
    culture = tmp_path / "culture"
    from conftest import save_tiny_model

    save_tiny_model(culture)
    assert main(["restore", str(scans), "--model", str(culture), "--out", str(tmp_path / "y")]) == 2
    assert "restored" in capsys.readouterr().err


# ----------------------------------------------------------------------------- classical


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_noise_estimate_and_defect_mask():
    rng = np.random.default_rng(0)
    noisy = np.clip(np.rint(128 + rng.normal(0, 10, (128, 128, 3))), 0, 255).astype(np.uint8)
    # 4,096 Haar coefficients per channel: the median's relative error is ~2%.
    assert estimate_noise(noisy) == pytest.approx(10.0, rel=0.08)
    photo = smooth_photo(96, 96)
    line = {"start": [0.3, 0.0], "end": [0.35, 1.0], "length": 1.0, "offset": 0.0, "width": 1}
    x = photo.astype(np.float32) / 255
    scratched = STAGE_FUNCTIONS["scratch"](x, [{**line, "pale": True, "opacity": 1.0}])
    scratched = np.rint(scratched * 255).astype(np.uint8)
    truth = np.abs(scratched.astype(int) - photo).max(axis=2) > 40
    mask = defect_mask(scratched, defect_k=6.0) > 0
    assert mask[truth].mean() > 0.9  # the scratch is found ...
    assert mask[~truth].mean() < 0.1  # ... and little else (the mask is grown by a pixel)


def test_classical_baseline_improves_psnr_on_a_degraded_image():
    clean = smooth_photo(96, 128, seed=4)
    record = {
        "seed": 0,
        "fade": {"contrast": 0.6, "fog": 0.75},
        "tone": {"kind": "yellow", "amount": 0.25},
        "grain": {"sigma": 0.05, "size": 0.0, "mono": 0.8, "noise_seed": 1},
        "scratch": [
            {
                "start": [0.6, 0.0],
                "end": [0.62, 1.0],
                "length": 1.0,
                "offset": 0.0,
                "width": 1,
                "pale": True,
                "opacity": 0.9,
            }
        ],
        "dust": [
            {"at": [0.2, 0.3], "radius": 1.5, "pale": True, "opacity": 1.0},
            {"at": [0.7, 0.6], "radius": 1.5, "pale": False, "opacity": 1.0},
        ],
    }
    old = apply_record(clean, record)
    restored = classical_restore(old)
    assert restored.shape == clean.shape and restored.dtype == np.uint8
    assert psnr(restored, clean) > psnr(old, clean) + 2.0
    pil = classical_restore(Image.fromarray(old))
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), restored)
