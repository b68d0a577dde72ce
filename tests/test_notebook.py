"""Results in Jupyter: `_repr_html_` (escaped), `to_pandas()`, tqdm.auto progress bars."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from culturegan.culture.analysis import analyze_cultures
from culturegan.culture.compare import CompareSettings
from culturegan.data.splits import load_splits
from culturegan.data.synthetic import build_demo_dataset, make_art_image
from culturegan.inference import Stylizer, StylizeResult
from culturegan.metrics.evaluate import EvaluationResult, evaluate_model

FAST = CompareSettings(n_boot=50, n_perm=50, n_perm_distance=10, folds=3)
# A culture folder whose name is markup: it must show as text, never as tags.
HOSTILE = '<img src=x onerror="alert(1)">&co'
CULTURES = ("ink_wash", "woodblock", HOSTILE)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("art")
    for k, name in enumerate(CULTURES):
        folder = root / name
        folder.mkdir()
        style = ("ink_wash", "woodblock", "impasto")[k]
        for i in range(8):
            make_art_image(style, 100 * k + i, 32).save(folder / f"{i:02d}.png")
    out = tmp_path_factory.mktemp("report")
    return analyze_cultures(
        root, out, size=32, embeddings=False, settings=FAST, workers=1, progress=False
    )


def test_analysis_html_has_tables_and_the_map_and_escapes_names(study):
    page = study._repr_html_()
    assert "<table" in page and "images analysed" in page
    assert page.count("<svg") == 1 and "PCA of the standardised descriptors" in page
    assert HOSTILE not in page and not re.search(r"<img\b", page)
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;co" in page
    # every culture gets a row in the images table and a centroid on the map
    for name in ("ink_wash", "woodblock"):
        assert f">{name}</td>" in page and f">{name}</text>" in page
    assert len(re.findall(r"<circle[^>]*r=\"2.5\"", page)) == 24  # one dot per image


def test_analysis_to_pandas_has_one_row_per_image(study):
    pd = pytest.importorskip("pandas")
    frame = study.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 24
    assert set(frame["culture"]) == set(CULTURES)
    assert {"path", "saturation_mean", "permutation_entropy"} <= set(frame.columns)


def test_to_pandas_without_pandas_names_it(study, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(ImportError, match=r"AnalysisResult.to_pandas\(\) needs pandas.*pip"):
        study.to_pandas()
    with pytest.raises(ImportError, match="needs pandas"):
        EvaluationResult(_evaluation_dict()).to_pandas()


class IdentityStylizer(Stylizer):
    """Two domains, outputs equal to inputs."""

    kind = "identity"

    def __init__(self):
        directions = {"photo->woodblock": "g_ab", "woodblock->photo": "g_ba"}
        super().__init__(domains=["photo", "woodblock"], directions=directions)

    def _stylize(self, pils, request):
        return [img.copy() for img in pils]


def _evaluation_dict() -> dict:
    """The shape evaluate_model returns, with a note and a domain name that are markup."""
    bad = "<b>bold</b>"
    return {
        "split": "val",
        "primary": "fd_lite0",
        "primary_higher_is_better": False,
        "metrics": {"fd_lite0": 2.0},
        "pairs": {
            f"photo->{bad}": {
                "source": "photo",
                "target": bad,
                "num_inputs": 3,
                "num_reference": 5,
                "metrics": {"fd_lite0": 1.0, "ssim": 0.5},
            },
            f"{bad}->photo": {
                "source": bad,
                "target": "photo",
                "num_inputs": 4,
                "num_reference": 6,
                "metrics": {"fd_lite0": 3.0, "ssim": None},
            },
        },
        "matrices": {
            "domains": ["photo", bad],
            "fd_lite0": [[None, 1.0], [3.0, None]],
            "ssim": [[None, 0.5], [None, None]],
        },
        "backbones": {"lite0": {"weight_sha256": "57934424" + "0" * 56, "preprocessing": "p"}},
        "domains": ["photo", bad],
        "diverse": False,
        "notes": ["<script>alert(1)</script> skipped"],
        "time_s": 1.0,
    }


def test_evaluation_html_shows_tables_and_a_shaded_matrix_escaped():
    page = EvaluationResult(_evaluation_dict())._repr_html_()
    assert "<b>bold</b>" not in page and "<script>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&lt;script&gt;" in page
    assert "fd_lite0 by direction" in page and "primary metric fd_lite0 = 2" in page
    # lower fd is better: the best cell (1.0) is the greenest, the worst (3.0) the reddest
    assert "background:#a5ffa5" in page and "background:#ffa5a5" in page
    assert "579344240000" in page  # the backbone's weights, by the first 12 hex digits


def test_evaluation_to_pandas_has_one_row_per_direction():
    pytest.importorskip("pandas")
    frame = EvaluationResult(_evaluation_dict()).to_pandas()
    assert list(frame.index) == ["photo-><b>bold</b>", "<b>bold</b>->photo"]
    assert frame.loc["photo-><b>bold</b>", "fd_lite0"] == 1.0
    assert frame.loc["<b>bold</b>->photo", "num_inputs"] == 4


def test_evaluate_model_returns_a_json_ready_evaluation_result(tmp_path):
    root = build_demo_dataset(
        tmp_path / "data", size=32, photos=8, art_per_style=8, heldout_photos=0,
        styles=("woodblock",),
    )  # fmt: skip
    splits = load_splits(root, domains=["photo", "woodblock"], ratios=(0.34, 0.33, 0.33))
    result = evaluate_model(IdentityStylizer(), splits, max_images=2, cache_dir=tmp_path / "c")
    assert isinstance(result, EvaluationResult) and isinstance(result, dict)
    assert json.loads(json.dumps(result))["split"] == "val"
    assert "photo-&gt;woodblock" in result._repr_html_()


def test_progress_bars_are_tqdm_auto():
    """tqdm.auto draws a widget in Jupyter and a text bar in a terminal."""
    src = Path(__file__).resolve().parents[1] / "src" / "culturegan"
    plain = [
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if re.search(r"^\s*(from tqdm import|import tqdm\b)", path.read_text(), re.M)
    ]
    assert plain == []


def test_stylize_result_shows_its_images_as_thumbnails_named_by_input():
    big = Image.new("RGB", (640, 320), (200, 30, 30))
    small = Image.new("RGB", (40, 60), (10, 200, 10))
    result = StylizeResult(
        images=[big, small], direction="photo->ukiyoe", sources=[f"/data/{HOSTILE}.jpg", ""]
    )
    page = result._repr_html_()
    assert HOSTILE not in page and "&lt;img src=x" in page and "image 1" in page
    assert "photo-&gt;ukiyoe" in page
    shown = [
        Image.open(io.BytesIO(base64.b64decode(data)))
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]
    assert [im.size for im in shown] == [(256, 128), (40, 60)]  # longest side at most 256
    assert shown[0].getpixel((10, 10)) == (200, 30, 30)
