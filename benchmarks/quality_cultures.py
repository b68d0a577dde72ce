"""Quality on real cultures: candidates trained for equal time, scored by an independent judge.

Data: cultures-dev (real photos, ukiyo-e, Chinese ink, Monet, Cezanne; research use, never copied
into the repository). Each file goes to a part by a stable hash of (seed, domain, file name)
(``culturegan.data.splits.hash_split``): every art folder 70% training art / 30% judging art,
photos 60% training / 20% judge / 20% test. The training parts are linked (symlinks) into one
folder per domain under ``--work``, and the trainer uses all of them (``data.split_ratios
1,0,0``: the judging and test images are not in that folder at all).

The judge (``culturegan.metrics.judge``, on EfficientNet-Lite1 features) is fitted on the judging
art of all four cultures plus the judge photos (class ``photo``), never on training art or test
photos; its cross-validated accuracy is reported. Every candidate in :data:`CANDIDATES` trains
for the same wall-clock budget (``train.max_minutes``) at ``--size`` px: two-domain candidates
one model per direction (photo + that culture), multi-domain candidates one model on photo and
every target culture of the run, scored per direction with ``target=``.

Scores per direction, on the test photos stylized at their native size (the dataset's shorter
side, at most 256 px): the judge's hit rate (share of outputs whose most probable class is the
target) and mean target probability (higher is better), grey-level SSIM to the input (content
kept, higher is better) and ``kd_lite0`` to the judging art of the target culture (lower is
better). Two reference rows per direction: the test photos unchanged (floor) and training art of
the target culture, which the judge never saw (ceiling).

The command that fills docs/quality.md (each candidate trains --minutes per direction; with
``--work`` kept, an interrupted run resumes and reuses the models already trained, as long as
their data, settings and culturegan's source code are the same)::

    python benchmarks/quality_cultures.py --minutes 30 --work runs/quality_cultures \\
        --out benchmarks/results/quality_cultures.json --docs docs/quality.md

A check that the script works (under a minute; quote the arrow, the shell reads ">"; the
multi-domain candidate needs ``--size 64`` or more)::

    OMP_NUM_THREADS=1 python benchmarks/quality_cultures.py --minutes 0.05 --size 32 \\
        --directions 'photo->ukiyoe' --candidates cyclegan_mobile --test-photos 4 \\
        --judge-max 8 --work /tmp/qc --out /tmp/qc.json

``--steps N`` gives every model N steps instead of a time budget (the results record the time
they took): for a model whose step count was chosen from ``quality_steps.py``'s curves.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from culturegan.config import RunConfig, load_config
from culturegan.data.images import load_image, pil_to_tensor, scan_images
from culturegan.data.splits import hash_split
from culturegan.fileio import atomic_write, write_json
from culturegan.inference import Stylizer
from culturegan.metrics.content import added_band, grid_peaks, ssim
from culturegan.metrics.judge import (
    ARTIFACT_CLASS,
    Judge,
    artifact_images,
    fit_judge,
    scores_from_proba,
)
from culturegan.metrics.registry import compute_metric
from culturegan.training import train

# The multi-domain preset's per-culture weights, read once: the ablations below edit them.
MULTIDOMAIN_CPU_WEIGHTS = load_config("multidomain_cpu").loss.domain_weights

# label -> preset, overrides (applied after the shared budget settings, so they win),
# multi_domain (one model for every direction), directions (only these; default all) and what
# the candidate tests.
# the shipped ukiyo-e settings with session 39's matched style target (its bank size apart)
MATCHED = {"loss.style_blur": 1.0, "loss.lambda_shift": 10.0, "loss.style_target": "matched"}

CANDIDATES: dict[str, dict[str, Any]] = {
    "cyclegan_mobile": {
        # The issue's "today's cyclegan_fast" (named so until session 16): the paper's losses.
        "preset": "cyclegan_mobile",
        "overrides": {},
        "multi_domain": False,
        "ablation": "baseline: CycleGAN, mobile ResNet generator ngf 32, PatchGAN ndf 32",
    },
    "cyclegan_fast": {
        # The losses `culturegan tune` chose on the U-Net mobile generator (docs/quality.md,
        # "Sessions 16 and 17"; their results call it "cyclegan_fast tuned" and
        # "cyclegan_fast unet", the settings before the preset took them).
        "preset": "cyclegan_fast",
        "overrides": {},
        "multi_domain": False,
        "ablation": "tuned: U-Net mobile G, clean edges, DiffAugment and the perceptual terms",
    },
    "cyclegan_fast outline3": {
        "preset": "cyclegan_fast",
        "overrides": {"loss.lambda_outline": 3.0},
        "multi_domain": False,
        "directions": ["photo->ukiyoe", "photo->chinese_ink"],
        "ablation": "sessions 18-19: cyclegan_fast with dark lines along the photo's contours "
        "(loss.lambda_outline 3: as dark as the art's 5 % grey quantile, in its hue)",
    },
    "cyclegan_fast photo->ukiyoe outline3": {
        "preset": "cyclegan_fast",
        "overrides": {"loss.domain_weights": ["ukiyoe?:outline=3"]},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 18: cyclegan_fast with the outline term in photo -> ukiyo-e only "
        "(loss.domain_weights ukiyoe?:outline=3)",
    },
    "fastcut": {
        "preset": "fastcut",
        # FastCUT's published networks (resnet_9blocks, ngf/ndf 64) train a few steps a minute
        # on a CPU; the CPU generator and widths of cyclegan_mobile keep it comparable.
        "overrides": {"model.generator": "mobile_resnet_6blocks", "model.ngf": 32, "model.ndf": 32},
        "multi_domain": False,
        "ablation": "baseline: FastCUT (PatchNCE, one generator) with the CPU networks",
    },
    "multidomain_stargan_cpu": {
        # The issue's "multidomain_cpu" baseline (named so until session 17).
        "preset": "multidomain_stargan_cpu",
        "overrides": {},
        "multi_domain": True,
        "ablation": "baseline: one multi-domain model for every culture (StarGAN v2-style)",
    },
    "multidomain_cpu": {
        # multidomain_cultures's settings with its per-culture weights for the folders a dataset
        # has (docs/quality.md, "Session 17") and outlines for ukiyo-e and ink ("Session 18").
        "preset": "multidomain_cpu",
        "overrides": {},
        "multi_domain": True,
        "ablation": "new: mobile style U-Net, per-culture decoders and weights, outlines, no "
        "discriminator",
    },
    "multidomain_cpu -outline": {
        "preset": "multidomain_cpu",
        "overrides": {
            "loss.domain_weights": [w for w in MULTIDOMAIN_CPU_WEIGHTS if ":outline=" not in w]
        },
        "multi_domain": True,
        "ablation": "ablation: multidomain_cpu without its outlines for ukiyo-e and Chinese ink "
        "(the preset of session 17; session 18's run of the preset is 'multidomain_cpu outline3')",
    },
    "multidomain_cpu monet1.5": {
        "preset": "multidomain_cpu",
        "overrides": {"data.target_weights": ["ukiyoe?=2", "impressionism_monet?=1.5"]},
        "multi_domain": True,
        "ablation": "session 20: multidomain_cpu with Monet the target of a third of the items "
        "instead of a quarter (data.target_weights ukiyoe?=2 impressionism_monet?=1.5)",
    },
    "multidomain_cpu ukiyoe structure1.5": {
        "preset": "multidomain_cpu",
        "overrides": {"loss.domain_weights": [*MULTIDOMAIN_CPU_WEIGHTS, "ukiyoe?:structure=1.5"]},
        "multi_domain": True,
        "ablation": "session 20: multidomain_cpu with ukiyo-e's grey structure weighing 1.5 "
        "(loss.domain_weights ukiyoe?:structure=1.5; ink has 2, Monet 1.5)",
    },
    "multidomain_cpu reflect": {
        "preset": "multidomain_cpu",
        "overrides": {"model.pad_mode": "reflect"},
        "multi_domain": True,
        "ablation": "session 21: multidomain_cpu with reflection padding instead of zeros (the "
        "zero padding of the stride-2 convolutions marks the left edge, where the preset paints "
        "the prints' frames as a band)",
    },
    "multidomain_cpu trim": {
        "preset": "multidomain_cpu",
        "overrides": {"data.trim": 0.05},
        "multi_domain": True,
        "ablation": "session 21: multidomain_cpu trained on images without their outer 5 % "
        "(data.trim 0.05): the ukiyo-e scans' margins, which the preset paints as a band",
    },
    "fewshot_cpu": {
        "preset": "fewshot_cpu",
        "overrides": {},
        "multi_domain": False,
        "ablation": "new: U-Net mobile G, projected Lite0 D, DiffAugment, content + style stats",
    },
    "fewshot_cpu content 2": {
        "preset": "fewshot_cpu",
        "overrides": {"loss.lambda_content": 2.0},
        "multi_domain": False,
        "directions": ["photo->ukiyoe", "photo->chinese_ink"],
        "ablation": "tuning: half the content weight (the ablations showed content 4 too strong)",
    },
    "fewshot_cpu -projected": {
        "preset": "fewshot_cpu",
        "overrides": {"model.discriminator": "patchgan", "model.d_layers": 3},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "ablation: PatchGAN (ndf 32) instead of the projected discriminator",
    },
    "fewshot_cpu -adversarial": {
        "preset": "fewshot_cpu",
        "overrides": {"loss.lambda_gan": 0.0, "loss.lambda_content": 1.0},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "ablation: no adversarial term (content 1 + style statistics only)",
    },
    "fewshot_cpu -style_stats": {
        "preset": "fewshot_cpu",
        "overrides": {"loss.lambda_style_stats": 0.0},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "ablation: no style-statistics term",
    },
    "fewshot_cpu -unet": {
        "preset": "fewshot_cpu",
        "overrides": {"model.generator": "mobile_resnet_6blocks"},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "ablation: the plain mobile ResNet generator (no U-Net skips)",
    },
    "fewshot_cpu -diffaugment": {
        "preset": "fewshot_cpu",
        "overrides": {"loss.diffaugment": ""},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "ablation: no DiffAugment",
    },
    "fewshot_cpu +reference_G": {
        "preset": "fewshot_cpu",
        "overrides": {"model.generator": "resnet_9blocks", "model.ngf": 64},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "speed vs quality: the reference resnet_9blocks ngf 64 generator instead",
    },
    "fewshot_nogan": {
        "preset": "fewshot_cpu",
        "overrides": {
            "loss.lambda_gan": 0.0,
            "loss.lambda_content": 1.0,
            "loss.lambda_style_stats": 1.0,
            "loss.lambda_palette": 5.0,
        },
        "multi_domain": False,
        "ablation": "new: fewshot_cpu without the adversarial term (no discriminator at all), "
        "content 1 + style statistics + palette 5",
    },
    "fewshot_structure": {
        "preset": "fewshot_cpu",
        "overrides": {
            "loss.lambda_gan": 0.0,
            "loss.lambda_content": 1.0,
            "loss.lambda_style_stats": 3.0,
            "loss.lambda_palette": 5.0,
            "loss.lambda_structure": 1.0,
        },
        "multi_domain": False,
        "ablation": "new: fewshot_nogan + the grey-SSIM structure term 1, style statistics 3",
    },
    "fewshot_structure_clean": {
        "preset": "fewshot_structure",
        "overrides": {},
        "multi_domain": False,
        "ablation": "new (session 7): the fewshot_structure preset: fewshot_structure + reflection "
        "padding, ICNR, output tent filter, content 0.5",
    },
    "fewshot_structure_clean +content1": {
        "preset": "fewshot_structure",
        "overrides": {"loss.lambda_content": 1.0},
        "multi_domain": False,
        "ablation": "session 8: the fewshot_structure preset with content 1 (session 6's weight) "
        "for long budgets",
    },
    "fewshot_structure_clean batch6": {
        "preset": "fewshot_structure",
        "overrides": {"train.batch_size": 6},
        "multi_domain": False,
        "ablation": "session 9: the fewshot_structure preset with 6 photos a step: a 30-minute "
        "budget spent on about as many updates as its 4-minute default, each on more images",
    },
    "fewshot_structure_long": {
        "preset": "fewshot_structure_long",
        "overrides": {},
        "multi_domain": False,
        "ablation": "session 25: the preset as it is (fewshot_structure_clean batch6 under its "
        "own name), for --steps runs: photo -> ukiyo-e peaks at about 1600 steps",
    },
    "fewshot_structure_long styleblur1": {
        "preset": "fewshot_structure_long",
        "overrides": {"loss.style_blur": 1.0},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 26: fewshot_structure_long with the art seen through a Gaussian "
        "blur (sigma 1 px) by the style statistics: the judge holds the fine relief texture "
        "against ukiyo-e models, and a blur of their outputs lifts it to 0.97-1.00",
    },
    "fewshot_structure_long shift10": {
        "preset": "fewshot_structure_long",
        "overrides": {"loss.lambda_shift": 10.0},
        "multi_domain": False,
        "ablation": "session 29: fewshot_structure_long with the shift term at 10 (the output "
        "of the photo moved by 1-7 px must be the output moved): against the lattice fixed to "
        "the generator's 8-pixel grid",
    },
    "fewshot_structure_long styleblur1 shift10": {
        "preset": "fewshot_structure_long",
        "overrides": {"loss.style_blur": 1.0, "loss.lambda_shift": 10.0},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 29: the shipped ukiyo-e model's settings with the shift term at 10",
    },
    "fewshot_structure_long styleblur1 shift10 palette15": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.style_blur": 1.0,
            "loss.lambda_shift": 10.0,
            "loss.lambda_palette": 15.0,
        },
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 33: the shipped ukiyo-e settings with the RGB palette term at 15 "
        "(was 5): the shipped model's most saturated tenth of pixels reaches chroma 0.12, the "
        "prints' 0.17-0.19",
    },
    "fewshot_structure_long styleblur1 shift10 hueguide10": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.style_blur": 1.0,
            "loss.lambda_shift": 10.0,
            "loss.lambda_guide": 10.0,
            "loss.guide_mode": "hue",
        },
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 33: the shipped ukiyo-e settings with the colour guide at 10 in "
        "its hue mode (each photo colour takes the prints' colours of its own hue, the "
        "photo's light and dark kept): the shipped model places pale lavender and cream "
        "without regard to the photo's sky, water or foliage",
    },
    "fewshot_structure_long styleblur1 shift10 hueguide30": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.style_blur": 1.0,
            "loss.lambda_shift": 10.0,
            "loss.lambda_guide": 30.0,
            "loss.guide_mode": "hue",
        },
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 33: the hue guide at 30: at 10 the skies and the sea kept the "
        "shipped model's pale lavender and cream",
    },
    "fewshot_structure_long shift10 hueguide10": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.lambda_shift": 10.0,
            "loss.lambda_guide": 10.0,
            "loss.guide_mode": "hue",
        },
        "multi_domain": False,
        "directions": ["photo->chinese_ink"],
        "ablation": "session 38: the shipped Chinese ink settings with the colour guide at 10 "
        "in its hue mode (the photo's luma takes the paintings' by rank, its colours the "
        "paintings' of each hue, grey included): the shipped model's tones are compressed "
        "(luma q10 / q90 0.44 / 0.72 against the paintings' 0.35 / 0.79) and none of its "
        "pixels is grey (the paintings' 10%)",
    },
    "fewshot_structure_long styleblur1 shift10 taps247": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.style_blur": 1.0,
            "loss.lambda_shift": 10.0,
            "loss.style_taps": [2, 4, 7],
        },
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 35: the shipped ukiyo-e settings without Lite0 block 0 in the style "
        "statistics: photos optimised against that block alone take the shipped model's pale "
        "lavender and cream skies (benchmarks/style_probe.py)",
    },
    "fewshot_structure_long nearest": {
        "preset": "fewshot_structure_long",
        "overrides": {"loss.style_target": "nearest"},
        "multi_domain": False,
        "ablation": "session 35: the shipped Chinese ink, Monet and Cezanne settings with each "
        "output's style statistics against the nearest artwork of the batch instead of the "
        "batch's average: the shipped ink model's tones are compressed (its darkest tenth "
        "lighter than the paintings', its lightest darker) and it has no neutral ink",
    },
    "fewshot_structure_long styleblur1 shift10 nearest": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.style_blur": 1.0,
            "loss.lambda_shift": 10.0,
            "loss.style_target": "nearest",
        },
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 35: the shipped ukiyo-e settings with each output's style "
        "statistics against the nearest print of the batch instead of the batch's average: the "
        "shipped model paints every photo with the collection's whole mix of cream, lavender, "
        "pale blue and brown, in patches that do not follow the photo",
    },
    "fewshot_structure_long styleblur1 shift10 nearest bank120": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.style_blur": 1.0,
            "loss.lambda_shift": 10.0,
            "loss.style_target": "nearest",
            "loss.style_bank": 120,
        },
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 39: the nearest print chosen among the batch's six and the 120 "
        "drawn before them (about 80 distinct prints of the 145), so that a night photo's "
        "output can keep to a night print instead of the batch's daylight ones; the shipped "
        "model turns night skies and seas to cream with slate-blue patches",
    },
    "fewshot_structure_long styleblur1 shift10 matched bank120": {
        "preset": "fewshot_structure_long",
        "overrides": {**MATCHED, "loss.style_bank": 120},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 39: each output's style statistics against the six prints, of the "
        "batch and the 120 before it, whose light and dark lie where the photo's do (luma on a "
        "4 x 4 grid), instead of six at random: a night photo against night prints; the "
        "nearest print by the output's own statistics (bank120) settles on the faded prints",
    },
    "fewshot_structure_long styleblur1 shift10 matched bank30": {
        "preset": "fewshot_structure_long",
        "overrides": {**MATCHED, "loss.style_bank": 30},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 39: the matched target choosing among 36 draws instead of 126 (the "
        "six laid out most like the photo): between the batch's average and bank120's choice",
    },
    "fewshot_structure_long styleblur1 shift10 matched bank120 palette15": {
        "preset": "fewshot_structure_long",
        "overrides": {**MATCHED, "loss.style_bank": 120, "loss.lambda_palette": 15.0},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 39: the matched target with the palette term at 15 (the prints' "
        "colours asked of every output three times as strongly), against matched bank120's "
        "pink and grey-beige",
    },
    "fewshot_structure_long structure1.5": {
        "preset": "fewshot_structure_long",
        "overrides": {"loss.lambda_structure": 1.5},
        "multi_domain": False,
        "ablation": "session 12: fewshot_structure_long with the grey-SSIM structure term at 1.5 "
        "(was 1): ukiyo-e's 30-minute SSIM was 0.005 under the target",
    },
    "fewshot_structure_long flat5": {
        "preset": "fewshot_structure_long",
        "overrides": {"loss.lambda_flat": 5.0, "loss.flat_segments": 32},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 14: fewshot_structure_long with flat colour inside the photo's 32 "
        "superpixels (loss.lambda_flat 5): at 1600 steps it lifted ukiyo-e's hit rate and SSIM",
    },
    "fewshot_structure_long palette12 inks": {
        "preset": "fewshot_structure_long",
        "overrides": {"model.palette": 12, "model.palette_hard": 5},
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 31: fewshot_structure_long drawing with 12 colours that start at the "
        "prints' inks, each pixel painted in one of them (the demo's woodblock went from 0.88 "
        "to 0.98 in its inks)",
    },
    "fewshot_structure_long guide10 blocks0-10": {
        "preset": "fewshot_structure_long",
        "overrides": {
            "loss.lambda_flat": 5.0,
            "loss.flat_segments": 32,
            "loss.lambda_guide": 10.0,
            "loss.style_taps": [0, 2, 4, 7, 10],
        },
        "multi_domain": False,
        "directions": ["photo->ukiyoe"],
        "ablation": "session 15: fewshot_structure_long with flat 5, the colour-transfer guide "
        "10 and the style statistics on Lite0 blocks 0-10: at 1600 steps the most of the photo "
        "(SSIM 0.410) on cream paper",
    },
    "multidomain_fewshot": {
        "preset": "multidomain_fewshot",
        "overrides": {},
        "multi_domain": True,
        "ablation": "new: multidomain_cpu with projected D, DiffAugment, content + style stats",
    },
    "multidomain_structure": {
        "preset": "multidomain_structure",
        "overrides": {},
        "multi_domain": True,
        "ablation": "new: one model, fewshot_structure's losses, style-modulated mobile U-Net G "
        "with the way up to RGB once per culture",
    },
    "multidomain_cultures": {
        "preset": "multidomain_cultures",
        "overrides": {},
        "multi_domain": True,
        "ablation": "sessions 10-11: multidomain_structure with each culture's own loss "
        "weights (loss.domain_weights; ukiyo-e's palette 10)",
    },
    "multidomain_cultures style64": {
        "preset": "multidomain_cultures",
        "overrides": {"model.style_read_size": 64},
        "multi_domain": True,
        "ablation": "session 13: multidomain_cultures with the style encoder reading each image "
        "at 64 px (a third less time a step: more photos per culture in the budget)",
    },
    "multidomain_structure -decoder_branch": {
        "preset": "multidomain_structure",
        "overrides": {"model.domain_branch": "none"},
        "multi_domain": True,
        "ablation": "ablation: one decoder shared by every culture (the preset before session 9)",
    },
    "multidomain_structure +blocks_branch": {
        "preset": "multidomain_structure",
        "overrides": {"model.domain_branch": "blocks"},
        "multi_domain": True,
        "ablation": "session 9: the style blocks and the way up once per culture",
    },
}

CULTURES = ("ukiyoe", "chinese_ink", "impressionism_monet", "postimpressionism_cezanne")
PHOTO = "photo"
DEFAULT_DIRECTIONS = ("photo->ukiyoe", "photo->chinese_ink", "photo->impressionism_monet")
# part name -> share; hash_split's three slots (train, val, test) carry them in this order.
ART_PARTS = {"train": 0.7, "judge": 0.3}
PHOTO_PARTS = {"train": 0.6, "judge": 0.2, "test": 0.2}
SPLIT_SEED = 0
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(
    os.environ.get("CULTURES_DEV", REPO.parent / "shared" / "datasets" / "cultures-dev")
)
CELL = 128  # grid cell side in pixels
MARK_BEGIN = "<!-- quality_cultures:begin -->"
MARK_END = "<!-- quality_cultures:end -->"


# ----------------------------------------------------------------------------- data


def split_dataset(root: Path, seed: int) -> dict[str, dict[str, list[Path]]]:
    """domain -> part -> sorted files, by the stable hash of (seed, domain, file name)."""
    split = {}
    for domain in (PHOTO, *CULTURES):
        scan = scan_images(root / domain, check="header")
        if scan.skipped:
            print(scan.report(), file=sys.stderr)
        parts = PHOTO_PARTS if domain == PHOTO else ART_PARTS
        ratios = [*parts.values(), 0.0][:3]
        split[domain] = {name: [] for name in parts}
        for path in scan.files:
            slot = hash_split(seed, domain, path.name, ratios)  # "train", "val" or "test"
            split[domain][list(parts)[("train", "val", "test").index(slot)]].append(path)
    return split


def link_training_root(split: dict[str, dict[str, list[Path]]], root: Path) -> Path:
    """One folder of symlinks per domain holding exactly its training part."""
    for domain, parts in split.items():
        folder = root / domain
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {path.name: path.resolve() for path in parts["train"]}
        for entry in folder.iterdir():
            if not entry.is_symlink():
                raise ValueError(f"'{entry}' is not a link this script made; use another --work")
            if entry.name not in wanted or entry.resolve() != wanted[entry.name]:
                entry.unlink()
        for name, target in wanted.items():
            if not (folder / name).is_symlink():
                (folder / name).symlink_to(target)
    return root


def files_digest(files: list[Path]) -> str:
    """A short hash of file names, to tell whether a stored model saw the same data."""
    names = "\n".join(sorted(f"{p.parent.name}/{p.name}" for p in files))
    return hashlib.sha256(names.encode()).hexdigest()[:16]


@functools.cache
def code_digest() -> str:
    """A short hash of culturegan's Python sources: a model trained before a change to a loss
    or a network is trained again, though its settings read the same. Read once per run."""
    import culturegan

    root = Path(culturegan.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- judge


def get_judge(split: dict, work: Path, judge_max: int, backbone: str = "lite1") -> Judge:
    """The judge on ``backbone`` in ``work/judge`` (lite1, the benchmark's judge; another
    backbone in ``work/judge-<name>``) if it was fitted on these files, else a new one."""
    wanted: dict[str, Any] = {c: split[c]["judge"][:judge_max] for c in CULTURES}
    wanted[PHOTO] = split[PHOTO]["judge"][:judge_max]
    # A reject class of generated noise, flat colour, blobs and stripes: without it the judge
    # files noise under chinese_ink and a broken model scores hits.
    wanted[ARTIFACT_CLASS] = artifact_images(min(judge_max or 60, 60), seed=SPLIT_SEED)
    folder = work / ("judge" if backbone == "lite1" else f"judge-{backbone}")
    if (folder / "config.json").is_file():
        judge = Judge.load(folder)
        known = {c: [str(p) for p in files] for c, files in wanted.items() if c != ARTIFACT_CLASS}
        known[ARTIFACT_CLASS] = []  # generated, stored as no files
        if judge.config["training_files"] == known and judge.config["backbone"]["name"] == backbone:
            print(f"[reuse] judge from {folder}", flush=True)
            return judge
    t0 = time.perf_counter()
    judge = fit_judge(wanted, backbone=backbone, seed=SPLIT_SEED)
    judge.save(folder)
    print(f"[fit] judge in {time.perf_counter() - t0:.0f} s: {judge.summary()}", flush=True)
    return judge


# ----------------------------------------------------------------------------- training


def same_config(stored: dict | None, cfg: RunConfig) -> bool:
    """Whether a marker's resolved config is ``cfg``'s. A field added to culturegan after the
    marker was written matches when ``cfg`` holds its default (the behaviour before it)."""
    if not isinstance(stored, dict):
        return False
    current = json.loads(json.dumps(cfg.to_dict()))
    default = json.loads(json.dumps(RunConfig().to_dict()))
    for section, fields in current.items():
        old = stored.get(section, {})
        for key, value in fields.items():
            if value != old.get(key, default[section][key]):
                return False
    return True


def train_or_reuse(
    label: str, domains: list[str], split: dict, args: argparse.Namespace, data_root: Path
) -> dict[str, Any]:
    """Train ``label`` on ``domains`` for the budget, or reuse a matching earlier model."""
    spec = CANDIDATES[label]
    record = {
        "candidate": label,
        "preset": spec["preset"],
        "overrides": spec["overrides"],
        "domains": domains,
        "minutes": args.minutes,
        "steps_budget": args.steps,
        "size": args.size,
        "seed": args.seed,
        "training_files": files_digest([p for d in domains for p in split[d]["train"]]),
        "code": code_digest(),
    }
    folder = args.work / "models" / label / "-".join(domains)
    marker = folder / "benchmark.json"
    cfg = load_config(
        spec["preset"],
        {
            "data.root": str(data_root),
            "data.domains": domains,
            "data.split_ratios": [1.0, 0.0, 0.0],  # the folder holds only training images
            "data.load_size": args.size + args.size // 8,
            "data.crop_size": args.size,
            "optim.decay_steps": 0,  # constant lr: the budget, not a schedule, ends the run
            "train.steps": args.steps or 10**9,
            "train.max_minutes": 0.0 if args.steps else args.minutes,
            "train.seed": args.seed,
            "train.runs_dir": str(folder / "runs"),
            "train.log_every": 50,
            "train.sample_every": 10**9,
            "train.checkpoint_every": 10**9,
            "train.eval_every": 0,
            **spec["overrides"],
        },
    )
    if marker.is_file():
        done = json.loads(marker.read_text())
        # The resolved config too: a preset whose values changed since is trained again.
        # With --steps, "minutes" is the time the steps took: not part of the match.
        keys = [k for k in record if not (args.steps and k == "minutes")]
        same = all(done.get(k, 0 if k == "steps_budget" else None) == record[k] for k in keys)
        same = same and same_config(done.get("config"), cfg)
        if same and Path(done["model"]).is_dir():
            print(f"[reuse] {label} on {', '.join(domains)}: {done['model']}", flush=True)
            return done
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min"
    print(f"[train] {label} on {', '.join(domains)} for {budget}", flush=True)
    t0 = time.perf_counter()
    result = train(cfg, progress=False)
    seconds = time.perf_counter() - t0 if args.steps else 60 * args.minutes
    if not result.finished:
        raise RuntimeError(f"training of {label} stopped early ({result.run_dir}); run again")
    done = {
        **record,
        "minutes": round(seconds / 60, 2) if args.steps else args.minutes,  # --steps: as taken
        "model": str(result.run_dir / "model"),
        "steps": result.step,
        "batch_size": cfg.train.batch_size,
        "seconds_per_step": seconds / result.step if result.step else None,
        "config": cfg.to_dict(),
    }
    write_json(marker, done)
    print(f"[train] {label}: {result.step} steps -> {done['model']}", flush=True)
    return done


# ----------------------------------------------------------------------------- scoring


def score_images(
    judge: Judge,
    images: list[torch.Tensor],  # (3, H, W) in [-1, 1]
    target: str,
    reference: list[Path],  # judging art of the target culture
    inputs: list[torch.Tensor] | None,  # the photos they came from (None: no SSIM)
    cache: Path,
) -> dict[str, Any]:
    proba = judge.predict_proba(images)
    scores = scores_from_proba(proba, judge.class_index(target))
    verdicts = torch.bincount(proba.argmax(dim=1), minlength=len(judge.classes))
    kd = compute_metric("kd", images, reference, backbone="lite0", cache_dir=cache)
    return {
        **scores,
        "verdicts": dict(zip(judge.classes, verdicts.tolist(), strict=True)),  # argmax counts
        # Each image's verdict, in the order of the test photos: which photos a model fails on.
        "verdict_each": [judge.classes[i] for i in proba.argmax(dim=1).tolist()],
        "ssim_grey": float(ssim(inputs, images, grey=True).mean()) if inputs else None,
        # The colour step a model adds at the worst side of each picture (a band along an edge).
        "border_band": float(added_band(images, inputs).mean()) if inputs else None,
        # A pattern fixed to the generator's 8-pixel grid (the lattice): about 1 = none.
        "grid_peak": float(grid_peaks(images, period=8).mean()),
        "kd_lite0": kd.value,
        "kd_lite0_std": kd.extra["std"],
    }


def score_direction(
    direction: str,
    models: dict[str, dict[str, Any]],  # candidate -> its training record
    judge: Judge,
    split: dict,
    photos: list[Path],
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, list[Image.Image]]]:
    target = direction.split("->")[1]
    cache = args.work / "stats"
    reference = split[target]["judge"]
    pils = [load_image(p) for p in photos]
    inputs = [pil_to_tensor(p) for p in pils]
    rows = [
        {
            "candidate": "test photos unchanged (floor)",
            "reference": True,
            **score_images(judge, inputs, target, reference, inputs, cache),
        },
        {
            "candidate": f"training art of {target} (ceiling)",
            "reference": True,
            **score_images(
                judge,
                [pil_to_tensor(load_image(p)) for p in split[target]["train"][: len(photos)]],
                target,
                reference,
                None,
                cache,
            ),
        },
    ]
    outputs = {"input": pils}
    for label, model in models.items():
        stylizer = Stylizer.from_pretrained(model["model"])
        t0 = time.perf_counter()
        result = stylizer(pils, source=PHOTO, target=target)  # multi-domain: style seed 0
        seconds = (time.perf_counter() - t0) / len(pils)
        outputs[label] = result.images
        images = [pil_to_tensor(img) for img in result.images]
        row = {
            "candidate": label,
            "reference": False,
            "ablation": CANDIDATES[label]["ablation"],
            "steps": model["steps"],
            "batch_size": model["batch_size"],
            "seconds_per_step": model["seconds_per_step"],
            "stylize_seconds_per_image": seconds,
            **score_images(judge, images, target, reference, inputs, cache),
        }
        rows.append(row)
        print(json.dumps({"direction": direction, **row}), flush=True)
    return {"target": target, "num_test_photos": len(photos), "rows": rows}, outputs


# ----------------------------------------------------------------------------- report


def picture_grid(columns: dict[str, list[Image.Image]], rows: int, side: int = CELL) -> Image.Image:
    """Rows = the first ``rows`` inputs; columns = input and each candidate, ``side`` px cells."""
    gap, label_height = 4, 18
    step = side + gap
    grid = Image.new("RGB", (len(columns) * step + gap, label_height + rows * step), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for c, (label, images) in enumerate(columns.items()):
        x = gap + c * step
        draw.text((x + 2, 3), label[: side // 6], fill="black", font=font)
        for r, img in enumerate(images[:rows]):
            scale = side / max(img.size)
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            cell = img.resize(size, Image.LANCZOS)
            offset = ((side - size[0]) // 2, (side - size[1]) // 2)
            grid.paste(cell, (x + offset[0], label_height + r * step + offset[1]))
    return grid


def slug(direction: str) -> str:
    return direction.replace("->", "-to-")


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _commonest(row: dict[str, Any]) -> str:
    name, count = max(row["verdicts"].items(), key=lambda item: item[1])
    return f"{name} {count / row['n']:.2f}"


def markdown(results: dict[str, Any], grids: dict[str, str]) -> str:
    judge = results["judge"]
    cv = judge["cross_validation"] or {}
    backbone = f"{judge['backbone']['name']}@{judge['backbone']['weight_sha256'][:12]}"
    counts = ", ".join(f"{c} {n}" for c, n in judge["num_images"].items())
    m = results["machine"]
    steps = results.get("steps_budget")
    budget = f"{steps} steps" if steps else f"{results['minutes']:g} minutes"
    lines = [
        f"Command: `{results['command']}`",
        "",
        f"Machine: {m['cpu']}, {results['threads']} torch threads, measured fp32 matmul peak "
        f"{m['matmul_peak_gflops']:.0f} GFLOP/s, torch {m['torch']}. Date: {results['date']}.",
        f"Budget: {budget} of training per model, {results['size']} px "
        f"crops, seed {results['seed']}: one budget per direction for two-domain candidates, one "
        "for all directions together for multi-domain ones. Test photos stylized at their "
        "native size (shorter side at most 256 px); multi-domain models with style seed 0.",
        "",
        f"Judge: logistic regression on `{backbone}` features, fitted on the judging split "
        f"only ({counts}; never on training art or test photos). {cv.get('folds', 0)}-fold "
        f"cross-validated accuracy **{_fmt(cv.get('accuracy'), '.3f')}** "
        f"(balanced {_fmt(cv.get('balanced_accuracy'), '.3f')}; per-class recall: "
        + ", ".join(f"{k} {v:.2f}" for k, v in cv.get("per_class_recall", {}).items())
        + ").",
        "",
        "Reference rows: the test photos unchanged (floor) and as many training images of the "
        "target culture (ceiling: the judge never saw them). Hit rate: share of images whose "
        "most probable judge class is the target; SSIM on grey levels against the input photo; "
        "kd_lite0: kernel distance (KID formula) on lite0 features to the target's judging art "
        "(unbiased, so it can dip below 0); band: the largest colour step an output has "
        "between its outermost 1/32 and the strip inside it at one of its four sides, less "
        "the input's there, on a 0-1 scale (`metrics.content.border_steps`); grid: the power of "
        "the outputs' grey level at the harmonics of an 8-pixel period over that of the "
        "frequencies around them (`metrics.content.grid_peaks`; about 1 for photos and art, "
        "higher for a lattice fixed to the generator's grid). A closed-set "
        "judge must file every image somewhere (without a reject class it calls uniform noise "
        "chinese_ink, p = 0.95), so besides photo and the four cultures it has a reject class "
        "of generated noise, flat colour, blobs and stripes (`artifact`) for outputs that are "
        "neither photo nor art; read the hit rate with the verdict, kd_lite0 and the pictures.",
        "",
    ]
    header = (
        "| candidate | steps | batch | s/step | judge hit rate (higher) | mean target prob "
        "(higher) | judge's commonest verdict | SSIM grey to input (higher) "
        "| kd_lite0 to judging art (lower) | band at an edge (lower) | grid (lower) |"
    )
    for direction, block in results["directions"].items():
        lines += [f"### {direction} ({block['num_test_photos']} test photos)", "", header]
        lines.append("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
        for r in block["rows"]:
            name = f"_{r['candidate']}_" if r["reference"] else f"`{r['candidate']}`"
            lines.append(
                f"| {name} | {r.get('steps', '')} | {r.get('batch_size', '')} | "
                f"{_fmt(r.get('seconds_per_step'), '.3f') if not r['reference'] else ''} | "
                f"{r['hit_rate']:.2f} | {r['mean_target_prob']:.3f} | {_commonest(r)} | "
                f"{_fmt(r['ssim_grey'], '.3f')} | {r['kd_lite0']:.3g} | "
                f"{_fmt(r.get('border_band'), '.3f')} | {_fmt(r.get('grid_peak'), '.1f')} |"
            )
        if direction in grids:
            lines += ["", f"![{direction}]({grids[direction]})"]
        lines.append("")
    return "\n".join(lines)


def update_docs(path: Path, text: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_speed import fill_section

    fill_section(path, MARK_BEGIN, MARK_END, text, heading="Candidates at equal budget, judged",
                 title="Quality on real cultures")  # fmt: skip


def machine_facts(threads: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_speed import cpu_info, matmul_peak  # one helper for the machine, shared

    return {**cpu_info(), "matmul_peak_gflops": matmul_peak(threads, 1024, 5)}


# ----------------------------------------------------------------------------- main


def parse_directions(text: str) -> list[str]:
    directions = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        target = item.split("->", 1)[1] if item.startswith(f"{PHOTO}->") else item
        if target not in CULTURES:
            raise argparse.ArgumentTypeError(
                f"unknown direction '{item}': give photo->CULTURE (quoted: the shell reads '>' "
                f"as a redirect) or just CULTURE, one of {', '.join(CULTURES)}"
            )
        directions.append(f"{PHOTO}->{target}")
    return directions


def parse_candidates(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown candidates {unknown} (known: {', '.join(CANDIDATES)})"
        )
    return names


def check_candidates(args: argparse.Namespace) -> None:
    """Build every candidate's config before anything trains: a typo fails in seconds."""
    for label in args.candidates:
        spec = CANDIDATES[label]
        cfg = load_config(spec["preset"], {"data.crop_size": args.size, **spec["overrides"]})
        cfg.validate()
        # The multi-domain discriminator halves the image d_down times and then pads by 1.
        if cfg.train.recipe == "multidomain" and cfg.data.crop_size < 2 ** (cfg.model.d_down + 1):
            raise ValueError(
                f"candidate {label}: --size {cfg.data.crop_size} is too small for its "
                f"discriminator (model.d_down {cfg.model.d_down}); use at least "
                f"{2 ** (cfg.model.d_down + 1)}"
            )


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, list[Image.Image]]]]:
    """Split, judge, train (or reuse), score; the results and each direction's pictures."""
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    split = split_dataset(args.data, SPLIT_SEED)
    data_root = link_training_root(split, args.work / "data")
    judge = get_judge(split, args.work, args.judge_max)
    photos = split[PHOTO]["test"][: args.test_photos or None]

    models: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in args.directions}
    targets = [d.split("->")[1] for d in args.directions]
    for label in args.candidates:
        if CANDIDATES[label]["multi_domain"]:
            done = train_or_reuse(label, [PHOTO, *targets], split, args, data_root)
            for direction in args.directions:
                models[direction][label] = done
        else:
            only = CANDIDATES[label].get("directions")  # ablations: one direction is enough
            for direction, target in zip(args.directions, targets, strict=True):
                if only and direction not in only:
                    continue
                models[direction][label] = train_or_reuse(
                    label, [PHOTO, target], split, args, data_root
                )

    directions, pictures = {}, {}
    for direction in args.directions:
        directions[direction], pictures[direction] = score_direction(
            direction, models[direction], judge, split, photos, args
        )
    return {
        "command": " ".join(
            shlex.quote(a) for a in ["python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]]
        ),
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.threads,
        "machine": machine_facts(args.threads),
        "minutes": None if args.steps else args.minutes,
        "steps_budget": args.steps,
        "size": args.size,
        "seed": args.seed,
        "stylize": "test photos at their native size (shorter side <= 256 px)",
        "split": {
            "method": "culturegan.data.splits.hash_split(seed, domain, file name, ratios)",
            "seed": SPLIT_SEED,
            "art_parts": ART_PARTS,
            "photo_parts": PHOTO_PARTS,
            "data": str(args.data),
            "files": {
                domain: {part: [p.name for p in files] for part, files in parts.items()}
                for domain, parts in split.items()
            },
        },
        "judge": {
            "summary": judge.summary(),
            "folder": str(args.work / "judge"),
            "backbone": judge.config["backbone"],
            "num_images": judge.config["num_images"],
            "cross_validation": judge.config["cross_validation"],
            "fit": judge.config["fit"],
        },
        "candidates": {label: CANDIDATES[label] for label in args.candidates},
        "models": models,
        "directions": directions,
        "seconds_total": time.perf_counter() - t_start,
    }, pictures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per model")
    parser.add_argument(
        "--steps", type=int, default=0, help="a step budget per model instead of --minutes"
    )
    parser.add_argument("--size", type=int, default=128, help="training crop size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument(
        "--directions",
        type=parse_directions,
        default=list(DEFAULT_DIRECTIONS),
        help="comma-separated, 'photo->CULTURE' or CULTURE (default: ukiyoe, chinese_ink, monet)",
    )
    parser.add_argument(
        "--candidates",
        type=parse_candidates,
        default=list(CANDIDATES),
        help=f"comma-separated subset of: {', '.join(CANDIDATES)}",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="cultures-dev folder")
    parser.add_argument("--work", type=Path, help="keeps runs, judge and links (default: temp)")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/quality_cultures.json")
    )
    parser.add_argument("--docs", type=Path, help="markdown file to update (docs/quality.md)")
    parser.add_argument("--test-photos", type=int, default=0, help="test photos used (0 = all)")
    parser.add_argument(
        "--judge-max", type=int, default=0, help="judge images per class (0 = all; smoke runs)"
    )
    parser.add_argument("--grid-photos", type=int, default=4, help="rows of the picture grids")
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")), help="torch"
    )
    args = parser.parse_args(argv)
    if args.judge_max == 0:
        args.judge_max = None
    if not args.data.is_dir():
        parser.error(f"--data '{args.data}' is not a folder (set --data or $CULTURES_DEV)")
    if args.out.resolve().is_relative_to(args.data.resolve()):
        parser.error("--out must not be inside the dataset folder")
    try:
        check_candidates(args)
    except ValueError as exc:
        parser.error(str(exc))

    keep_work = args.work is not None
    with tempfile.TemporaryDirectory(prefix="culturegan-qc-") as tmp:
        args.work = (args.work or Path(tmp)).resolve()
        results, pictures = run(args)
        # Next to the docs file, else in the kept work folder; never next to --out, which may
        # be inside the repository (the photos are for research use only).
        grid_dir = args.docs.with_suffix("") if args.docs else args.work / "grids"
        grids, grid_files = {}, {}
        if args.docs or keep_work:
            for direction, columns in pictures.items():
                path = grid_dir / f"{slug(direction)}.jpg"
                grid = picture_grid(columns, min(args.grid_photos, len(columns["input"])))
                atomic_write(path, lambda dest, g=grid: g.save(dest, format="JPEG", quality=85))
                grid_files[direction] = str(path)
                grids[direction] = path.relative_to(
                    args.docs.parent if args.docs else grid_dir
                ).as_posix()
                print(f"[grid] {path}", flush=True)
        else:
            print("[grid] no --docs and no --work: the picture grids are not kept", flush=True)
        results["grids"] = grid_files
    write_json(args.out, results)
    text = markdown(results, grids)
    print(text)
    if args.docs:
        update_docs(args.docs, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
