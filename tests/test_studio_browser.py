"""The studio in a real browser: Playwright drives headless Chromium (Debian's package) against
the real server (Uvicorn on a free loopback port, in a thread)."""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the studio needs the [studio] extra")
uvicorn = pytest.importorskip("uvicorn", reason="the studio needs the [studio] extra")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (.ci/run installs Debian's package)", allow_module_level=True)

from conftest import save_tiny_multidomain_model  # noqa: E402
from culturegan.web.app import StudioSettings, create_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio_browser")
    save_tiny_multidomain_model(root / "models" / "multi")
    run = root / "runs" / "002-multidomain"
    run.mkdir(parents=True)
    records = [{"step": s, "loss/g": 2.0 / s} for s in range(1, 6)]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "samples").mkdir()
    Image.new("RGB", (48, 24), "blue").save(run / "samples" / "val_000005.png")
    (root / "runs" / "report").mkdir()
    (root / "runs" / "report" / "index.html").write_text("<h1 id='title'>Ukiyo-e vs ink</h1>")
    settings = StudioSettings(model_dirs=[root / "models"], runs_dir=root / "runs", workers=2)
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the studio server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(path)
    return path


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_upload_stylize_compare_and_download(server, page, photo, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#model", "ukiyoe")
    assert page.locator("#strength").is_hidden()  # the shipped model honours no style options
    assert page.locator("#no-options").is_visible()
    assert page.input_value("#finish") == "print"  # the finish its card recommends
    assert page.input_value("#shifts") == "1"  # and the passes: once
    page.select_option("#model", "postimpressionism_cezanne")
    assert page.input_value("#finish") == "paint" and page.input_value("#shifts") == "8"
    page.select_option("#model", "models/multi")
    assert page.locator("#strength").is_visible() and page.locator("#no-options").is_hidden()
    assert page.input_value("#finish") == "" and page.input_value("#shifts") == "1"  # no card
    page.select_option("#target", "ink")
    page.locator("#strength").fill("0.6")
    assert page.locator("#strength-value").inner_text() == "0.6"
    page.set_input_files("#file", str(photo))
    page.click("#go")
    page.wait_for_selector(".card.done .after:not(.hidden)", timeout=20_000)
    src = page.get_attribute(".card.done .after", "src")
    result = pixels(page.request.get(server + src).body())
    source = pixels(photo.read_bytes())
    assert result.shape == source.shape and np.abs(result - source).mean() > 5
    page.locator(".card.done input[type=range]").fill("20")  # the before/after slider
    assert "20%" in page.get_attribute(".card.done .after", "style")
    with page.expect_download() as download_info:
        page.click(".card.done .download")
    saved = tmp_path / "result.png"
    download_info.value.save_as(saved)
    assert np.array_equal(pixels(saved.read_bytes()), result)
    assert page.locator("#zip").is_visible()


def test_the_finish_chosen_on_the_page_is_the_one_applied(server, page, photo):
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#model", "models/multi")
    page.select_option("#target", "ink")
    page.select_option("#finish", "paint")
    page.set_input_files("#file", str(photo))
    page.click("#go")
    page.wait_for_selector(".card.done .after:not(.hidden)", timeout=20_000)
    shown = pixels(page.request.get(server + page.get_attribute(".card.done .after", "src")).body())
    form = {"model": "models/multi", "target": "ink", "seed": "0"}  # the page sends seed 0
    upload = {"name": "photo.png", "mimeType": "image/png", "buffer": photo.read_bytes()}
    by_api = {
        finish: pixels(
            page.request.post(
                server + "/api/stylize", multipart={**form, **finish_field, "file": upload}
            ).body()
        )
        for finish, finish_field in (
            ("paint", {"finish": "paint"}),
            ("ink", {"finish": "ink"}),
            (None, {}),
        )
    }
    assert np.array_equal(shown, by_api["paint"])
    assert not np.array_equal(shown, by_api["ink"])
    assert not np.array_equal(shown, by_api[None])


def test_a_refused_upload_shows_its_message(server, page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#model", "ukiyoe")
    page.set_input_files("#file", str(bad))
    page.click("#go")
    page.wait_for_function("document.getElementById('message').textContent.length > 0")
    assert "not an image the studio reads" in page.inner_text("#message")


def test_culture_grid(server, page):
    page.goto(server + "/compare")
    page.select_option("#sample", "coffee")
    page.click("#go")
    page.wait_for_selector("#grid-image", timeout=30_000)
    page.wait_for_function("document.getElementById('grid-image').naturalWidth > 0")
    width = page.evaluate("document.getElementById('grid-image').naturalWidth")
    assert width == 5 * (160 + 4) + 4  # the input and the four shipped cultures


def test_reports_page_opens_a_run_and_a_report(server, page):
    page.goto(server + "/reports")
    page.click("#run-list a")
    page.wait_for_selector("svg polyline")
    assert "loss/g: last 0.4" in page.inner_text("main")
    assert page.evaluate("document.querySelector('.samples img').naturalWidth") == 48
    page.goto(server + "/reports")
    page.click("#report-list a")
    assert page.inner_text("#title") == "Ukiyo-e vs ink"


def test_video_page_stylizes_a_clip(server, page, tmp_path):
    av = pytest.importorskip("av", reason="video needs the [video] extra")
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), "rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    page.goto(server + "/video")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#model", "ukiyoe")
    page.set_input_files("#file", str(clip))
    page.click("#go")
    page.wait_for_selector("#video-download:not(.hidden)", timeout=30_000)
    assert page.evaluate("document.getElementById('progress').value") == 1
    with page.expect_download() as download_info:
        page.click("#video-download")
    saved = tmp_path / "out.mp4"
    download_info.value.save_as(saved)
    with av.open(str(saved)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5
