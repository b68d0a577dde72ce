"""The studio's API and pages through FastAPI's test client: every endpoint, every bad input."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the studio needs the [studio] extra")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

from fastapi.testclient import TestClient  # noqa: E402

from conftest import save_tiny_model, save_tiny_multidomain_model  # noqa: E402
from culturegan.web.app import MAX_SAMPLES, StudioSettings, create_app  # noqa: E402
from culturegan.web.jobs import CANCELLED, DONE, JobCancelled, JobPool, QueueFullError  # noqa: E402


def png(size=(64, 48), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width=100_000, height=100_000) -> bytes:
    """A valid PNG header that claims ``width`` x ``height`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio")
    models = root / "models"
    save_tiny_multidomain_model(models / "multi")
    save_tiny_model(models / "x<b>")  # a name that must come out escaped in the pages
    run = root / "runs" / "001-cut"
    save_tiny_model(run / "model")
    records = [{"step": s, "loss/g": 1.0 / s, "loss/d": 0.5, "lr": 1e-3} for s in (1, 2, 3)]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"torn')
    (run / "samples").mkdir()
    Image.new("RGB", (32, 16), "red").save(run / "samples" / "val_000003.png")
    (run / "notes.py").write_text("print('not served')")
    report = root / "runs" / "analysis" / "index.html"
    report.parent.mkdir(parents=True)
    report.write_text("<h1>Culture report</h1><script>alert(1)</script>")
    (root / "secret.html").write_text("outside the reports folder")
    broken = root / "runs" / "002-broken" / "model"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    return root


def make_client(folders, **overrides) -> TestClient:
    options = {"model_dirs": [folders / "models"], "runs_dir": folders / "runs", "workers": 2}
    settings = StudioSettings(**{**options, **overrides})
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client(folders):
    with make_client(folders) as c:
        yield c


def wait_done(client, job_id, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


# ---------------------------------------------------------------------- models and pages


def test_models_lists_shipped_folders_and_runs(client):
    response = client.get("/api/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["models"]}
    assert {"ukiyoe", "chinese_ink", "models/multi", "models/x<b>", "runs/001-cut"} <= set(models)
    assert models["ukiyoe"]["options"] == [] and models["ukiyoe"]["default_target"] == "ukiyoe"
    # A shipped model brings the finish its card recommends; a folder has none.
    assert models["ukiyoe"]["finish"] == "print" and models["models/multi"]["finish"] is None
    assert models["impressionism_monet"]["finish"] is None
    # Likewise the passes (Stylizer shifts): Cezanne's card recommends 8.
    assert models["postimpressionism_cezanne"]["shifts"] == 8
    assert models["ukiyoe"]["shifts"] == models["models/multi"]["shifts"] == 1
    assert models["models/multi"]["options"] == ["mix", "reference", "seed", "strength"]
    assert models["runs/001-cut"]["origin"] == "run"
    assert "error" in models["runs/002-broken"] and "options" not in models["runs/002-broken"]
    refused = client.post("/api/stylize", data={"model": "runs/002-broken", "sample": "coffee"})
    assert refused.status_code == 422 and "model 'runs/002-broken' does not open" in refused.text
    assert "missing model.safetensors" in refused.text
    assert "pytest" not in refused.text  # the server's path is not shown


@pytest.mark.parametrize("path", ["/", "/compare"])
def test_pages_render_escaped(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "models/x&lt;b&gt;" in response.text and "x<b>" not in response.text
    assert "astronaut" in response.text  # the packaged sample photos are offered


def test_unknown_page_is_a_page_and_unknown_api_is_json(client):
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "no such page" in page.text and "Traceback" not in page.text
    api = client.get("/api/nothing")
    assert api.status_code == 404 and "no such page" in api.json()["error"]


def test_samples(client):
    names = client.get("/api/samples").json()["samples"]
    assert "coffee" in names
    response = client.get("/api/samples/coffee.png")
    assert response.status_code == 200 and max(Image.open(io.BytesIO(response.content)).size) == 384
    assert client.get("/api/samples/nope.png").status_code == 404


# ---------------------------------------------------------------------- stylize


def test_stylize_returns_a_png_that_differs_from_the_input(client):
    photo = png()
    response = client.post(
        "/api/stylize", data={"model": "ukiyoe"}, files={"file": ("a.png", photo, "image/png")}
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    out, before = decoded(response.content), decoded(photo)
    assert out.shape == before.shape
    assert np.abs(out - before).mean() > 5
    assert client.get("/api/health").json()["jobs"]["done"] == 0  # answered jobs are not kept


@pytest.mark.parametrize("finish", ["print", "ink", "paint"])
def test_stylize_with_a_finish(client, finish):
    from culturegan.finish import apply_finish

    photo = png(size=(80, 64), seed=3)
    files = {"file": ("a.png", photo, "image/png")}
    plain = client.post("/api/stylize", data={"model": "ukiyoe"}, files=files)
    finished = client.post("/api/stylize", data={"model": "ukiyoe", "finish": finish}, files=files)
    assert plain.status_code == 200 and finished.status_code == 200
    expected = apply_finish(
        finish, Image.open(io.BytesIO(photo)), Image.open(io.BytesIO(plain.content))
    )
    assert np.array_equal(decoded(finished.content), np.asarray(expected, dtype=np.int16))


def test_stylize_with_several_passes(client):
    from culturegan.inference import Stylizer

    photo = png(size=(80, 64), seed=4)
    files = {"file": ("a.png", photo, "image/png")}
    response = client.post("/api/stylize", data={"model": "ukiyoe", "shifts": "8"}, files=files)
    assert response.status_code == 200
    expected = Stylizer.from_pretrained("ukiyoe")([Image.open(io.BytesIO(photo))], shifts=8)
    assert np.array_equal(decoded(response.content), np.asarray(expected.images[0], np.int16))
    once = client.post("/api/stylize", data={"model": "ukiyoe"}, files=files)
    assert not np.array_equal(decoded(once.content), decoded(response.content))


def test_stylize_sample_photo(client):
    response = client.post("/api/stylize", data={"model": "runs/001-cut", "sample": "chelsea"})
    assert response.status_code == 200
    assert max(Image.open(io.BytesIO(response.content)).size) == 384


def test_jobs_for_several_results_then_results_inputs_and_zip(client):
    files = [("file", ("../../etc/passwd.png", png(seed=1), "image/png"))]
    files += [("file", ("C:\\x\\..\\y.png", png(seed=2), "image/png"))]
    data = {
        "model": "models/multi",
        "target": "ink",
        "seed": "3",
        "samples": "2",
        "strength": "0.5",
    }
    response = client.post("/api/stylize", data=data, files=files)
    assert response.status_code == 202
    jobs = response.json()["jobs"]
    assert len(jobs) == 4 and response.json()["target"] == "ink"
    for job in jobs:
        assert wait_done(client, job["id"])["state"] == "done"
        assert "passwd" not in job["label"] and "/" not in job["label"].replace("models/", "")
    first = client.get(f"/api/jobs/{jobs[0]['id']}/result.png?download=1")
    assert first.status_code == 200
    assert first.headers["content-disposition"].startswith("attachment; filename=")
    assert "/" not in first.headers["content-disposition"]
    second = client.get(f"/api/jobs/{jobs[1]['id']}/result.png")
    assert np.abs(decoded(first.content) - decoded(second.content)).mean() > 0  # seeds 3 and 4
    source = client.get(f"/api/jobs/{jobs[0]['id']}/input.png")
    assert np.array_equal(decoded(source.content), decoded(png(seed=1)))
    archive = client.get("/api/zip", params={"ids": ",".join(j["id"] for j in jobs)})
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert len(names) == 4 and all("/" not in n and ".." not in n for n in names)


def test_reference_and_mix(client):
    files = {
        "file": ("a.png", png(), "image/png"),
        "reference": ("r.png", png(seed=5), "image/png"),
    }
    by_reference = client.post("/api/stylize", data={"model": "models/multi"}, files=files)
    assert by_reference.status_code == 200
    mixed = client.post(
        "/api/stylize",
        data={"model": "models/multi", "mix": "ukiyoe:1,ink:1", "seed": "0"},
        files={"file": ("a.png", png(), "image/png")},
    )
    assert mixed.status_code == 200


@pytest.mark.parametrize(
    "data, status, message",
    [
        ({"model": "ukiyoe", "strength": "0.5"}, 400, "strength: this two_domain model"),
        ({"model": "ukiyoe", "seed": "1"}, 400, "seed: this two_domain model"),
        ({"model": "ukiyoe", "samples": "2"}, 400, "gives one rendering per input"),
        ({"model": "ukiyoe", "target": "ink"}, 400, "unknown target domain 'ink'"),
        ({"model": "ukiyoe", "finish": "oil"}, 400, "unknown finish 'oil'"),
        ({"model": "ukiyoe", "shifts": "3"}, 400, "shifts must be one of 1, 4, 8, 16"),
        ({"model": "models/multi", "strength": "2"}, 400, "strength must be in [0, 1]"),
        ({"model": "models/multi", "strength": "nan"}, 400, "must be finite"),
        ({"model": "models/multi", "strength": "abc"}, 400, "'strength' must be a float"),
        ({"model": "models/multi", "seed": "-1"}, 400, "seed must be in [0, 2**63)"),
        ({"model": "models/multi", "mix": "ink:inf"}, 400, "must be finite"),
        ({"model": "models/multi", "mix": "nope:1"}, 400, "unknown mix domain"),
        ({"model": "models/multi", "samples": str(MAX_SAMPLES + 1)}, 400, "samples must be in"),
        ({"model": "no_such_model"}, 404, "unknown model 'no_such_model'"),
        ({"model": "../../etc"}, 404, "unknown model"),
        ({}, 400, "say which model"),
    ],
)
def test_refused_options(client, data, status, message):
    response = client.post("/api/stylize", data=data, files={"file": ("a.png", png(), "image/png")})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_reference_with_mix_is_refused(client):
    files = {"file": ("a.png", png(), "image/png"), "reference": ("r.png", png(), "image/png")}
    response = client.post(
        "/api/stylize", data={"model": "models/multi", "mix": "ink:1"}, files=files
    )
    assert response.status_code == 400 and "not both" in response.json()["error"]


# ---------------------------------------------------------------------- bad uploads


@pytest.mark.parametrize(
    "content, status, message",
    [
        (b"", 400, "is empty"),
        (b"just some text, not an image", 415, "not an image the studio reads"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "not an image the studio reads"),
        (png()[:60], 400, "truncated or corrupt"),
        (bomb_png(), 413, "too many pixels"),
    ],
)
def test_bad_uploads(client, content, status, message):
    response = client.post(
        "/api/stylize", data={"model": "ukiyoe"}, files={"file": ("a.png", content, "image/png")}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "file #1" in error
    assert "/tmp" not in error and "Traceback" not in error  # no server paths, no traces


def test_avif_and_heic_uploads(client):
    from culturegan.data.images import avif_available, heif_available

    if not avif_available():
        pytest.skip("this Pillow cannot write AVIF")
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png())).save(buffer, format="AVIF", quality=95)
    response = client.post(
        "/api/stylize", data={"model": "ukiyoe"}, files={"file": ("a.bin", buffer.getvalue())}
    )
    assert response.status_code == 200, response.text
    assert decoded(response.content).shape == (48, 64, 3)
    # A HEIC photo (its header; the HEVC data cut): recognised by content, then either decoded
    # or refused with the reason, never "not an image".
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    response = client.post(
        "/api/stylize", data={"model": "ukiyoe"}, files={"file": ("b.bin", heic)}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "(HEIF)" in error and "not an image the studio reads" not in error
    if not heif_available():
        assert "pillow-heif" in error


def test_no_photo_and_two_sources(client):
    none = client.post("/api/stylize", data={"model": "ukiyoe"})
    assert none.status_code == 400 and "no photo" in none.json()["error"]
    both = client.post(
        "/api/stylize",
        data={"model": "ukiyoe", "sample": "coffee"},
        files={"file": ("a.png", png(), "image/png")},
    )
    assert both.status_code == 400 and "not both" in both.json()["error"]
    assert client.post("/api/stylize", data={"model": "ukiyoe", "sample": "x"}).status_code == 404


def test_size_and_pixel_limits(folders):
    big = png((128, 128))  # noise does not compress: ~49 kB
    with make_client(folders, max_upload_mb=0.02, max_pixels=64 * 64) as c:
        over = c.post(
            "/api/stylize", data={"model": "ukiyoe"}, files={"file": ("a.png", big, "image/png")}
        )
        assert over.status_code == 413 and "larger than 0.02 MB" in over.json()["error"]
        pixels = c.post(
            "/api/stylize",
            data={"model": "ukiyoe"},
            files={"file": ("a.png", png((80, 64)), "image/png")},
        )
        assert pixels.status_code == 413 and "too many pixels" in pixels.json()["error"]
        huge = c.post(
            "/api/stylize", content=b"x" * 2_000_000, headers={"content-length": "2000000"}
        )
        assert huge.status_code == 413


def test_temporary_files_are_removed(folders):
    with make_client(folders) as c:
        tmp_dir = c.app.state.tmp_dir
        c.post("/api/stylize", data={"model": "ukiyoe"}, files={"file": ("a.png", png(), "x")})
        c.post("/api/stylize", data={"model": "ukiyoe"}, files={"file": ("a.png", b"junk", "x")})
        assert tmp_dir.is_dir() and list(tmp_dir.iterdir()) == []
    assert not tmp_dir.exists()  # removed at shutdown


# ---------------------------------------------------------------------- jobs, grid, zip


def test_job_endpoints_refuse_unknown_ids(client):
    assert client.get("/api/jobs/abc").status_code == 404
    assert client.get("/api/jobs/abc/result.png").status_code == 404
    assert client.delete("/api/jobs/abc").status_code == 404
    assert client.get("/api/zip", params={"ids": "abc"}).status_code == 404
    assert client.get("/api/zip", params={"ids": ""}).status_code == 400


def test_grid_of_shipped_cultures(client):
    shipped = [
        m
        for m in client.get("/api/models").json()["models"]
        if m["origin"] == "shipped" and m["task"] == "style transfer"  # not restore_old_photo
    ]
    response = client.post("/api/grid", files={"file": ("a.png", png(), "image/png")})
    assert response.status_code == 200
    width = Image.open(io.BytesIO(response.content)).width
    assert width == (len(shipped) + 1) * (160 + 4) + 4  # the input and one column per culture


def test_grid_of_a_multidomain_model_as_a_job(client):
    response = client.post(
        "/api/grid", data={"model": "models/multi", "sample": "coffee", "async": "1"}
    )
    assert response.status_code == 202
    job = response.json()["jobs"][0]
    assert wait_done(client, job["id"])["state"] == "done"
    grid = Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/result.png").content))
    assert grid.width == 4 * (160 + 4) + 4  # input + photo, ukiyoe, ink


def test_pool_queue_positions_limit_and_cancel():
    pool = JobPool(workers=1, max_queue=2)
    release = threading.Event()
    try:
        blocker = pool.submit(lambda job: release.wait(10) and b"png", kind="t", label="a")
        while pool.status(blocker.id)["state"] != "running":
            time.sleep(0.005)
        first = pool.submit(lambda job: b"1", kind="t", label="b")
        second = pool.submit(lambda job: b"2", kind="t", label="c")
        assert pool.status(first.id)["position"] == 1 and pool.status(second.id)["position"] == 2
        with pytest.raises(QueueFullError, match="2 jobs are waiting"):
            pool.submit(lambda job: b"3", kind="t", label="d")
        assert pool.cancel(first.id) and pool.status(second.id)["position"] == 1
        release.set()
        assert pool.wait(second.id, timeout=10).state == DONE and pool.get(second.id).result == b"2"
        assert pool.get(first.id).state == CANCELLED and pool.get(first.id).result is None
    finally:
        release.set()
        pool.shutdown()


def test_queue_full_is_503(folders):
    with make_client(folders, workers=1, max_queue=1) as c:
        release = threading.Event()
        pool = c.app.state.pool
        pool.submit(lambda job: release.wait(10) and b"", kind="t", label="block")
        pool.submit(lambda job: b"", kind="t", label="wait")
        try:
            busy = c.post("/api/stylize", data={"model": "ukiyoe", "sample": "coffee"})
            assert busy.status_code == 503 and "waiting" in busy.json()["error"]
        finally:
            release.set()


def test_failed_job_reports_its_message(folders):
    with make_client(folders) as c:
        pool = c.app.state.pool

        def broken(job):
            raise RuntimeError("secret internals")

        job = pool.submit(broken, kind="t", label="x")
        status = wait_done(c, job.id)
        assert status["state"] == "failed" and "secret" not in status["error"]
        response = c.get(f"/api/jobs/{job.id}/result.png")
        assert response.status_code == 422 and "internal error" in response.json()["error"]


# ---------------------------------------------------------------------- token, CLI


def test_token_is_required_everywhere(folders):
    with make_client(folders, token="s3cret") as c:
        for path in ("/", "/api/models", "/static/studio.js", "/api/samples/coffee.png"):
            assert c.get(path).status_code == 401
        assert "needs its token" in c.get("/").text  # a page, not a trace
        assert c.get("/api/models", headers={"x-studio-token": "wrong"}).status_code == 401
        assert c.get("/api/models", headers={"x-studio-token": "s3cret"}).status_code == 200
        assert c.get("/api/models", headers={"authorization": "Bearer s3cret"}).status_code == 200
        refused = c.post("/api/stylize", data={"model": "ukiyoe", "sample": "coffee"})
        assert refused.status_code == 401
        page = c.get("/?token=s3cret")  # the page's link sets a cookie for its own requests
        assert page.status_code == 200 and "culturegan_studio_token" in page.headers["set-cookie"]
        assert c.get("/api/samples").status_code == 200  # the cookie now carries the token


def test_cli_without_the_extra_names_it(monkeypatch, capsys):
    from culturegan import cli
    from culturegan.web import cli as web_cli

    monkeypatch.setattr(web_cli, "_missing_packages", lambda: ["fastapi", "uvicorn"])
    assert cli.main(["studio"]) != 0
    assert "pip install 'culturegan[studio]'" in capsys.readouterr().err


def test_core_imports_without_the_extra():
    code = (
        "import sys\n"
        "for name in ('fastapi', 'uvicorn', 'starlette', 'multipart'): sys.modules[name] = None\n"
        "import culturegan.cli, culturegan.web.cli\n"
        "assert culturegan.cli._parser().parse_args(['studio']).command == 'studio'\n"
        "assert {'fastapi', 'uvicorn'} <= set(culturegan.web.cli._missing_packages())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_loopback_detection():
    from culturegan.web.cli import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.2")


def test_cli_prints_its_url_and_warns_off_loopback(monkeypatch, capsys, caplog, tmp_path):
    import torch
    import uvicorn

    from culturegan import cli

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    argv = ["studio", "--host", "0.0.0.0", "--port", "9999", "--token", "t0k", "--workers", "1"]
    assert cli.main([*argv, "--runs", str(tmp_path)]) == 0
    assert "http://127.0.0.1:9999/?token=t0k" in capsys.readouterr().out
    assert "anyone who can reach this machine" in caplog.text
    (app, options), threads = calls[1], calls[0]
    assert options == {"host": "0.0.0.0", "port": 9999, "log_level": "warning"}
    assert app.state.settings.token == "t0k" and threads >= 1
    assert app.state.settings.allowed_hosts is None  # any name reaches a public address
    assert cli.main(["studio", "--workers", "0"]) != 0
    assert "--workers must be >= 1" in capsys.readouterr().err


# ---------------------------------------------------------------------- reports


def test_reports_list_reports_and_runs(client):
    page = client.get("/reports")
    assert page.status_code == 200
    assert 'href="/reports/file/analysis/index.html"' in page.text
    assert 'href="/reports/run/001-cut"' in page.text


def test_run_page_shows_losses_and_samples(client):
    page = client.get("/reports/run/001-cut")
    assert page.status_code == 200
    assert page.text.count("<polyline") == 2 and "loss/g: last 0.3333" in page.text
    assert 'src="/reports/file/001-cut/samples/val_000003.png"' in page.text
    sample = client.get("/reports/file/001-cut/samples/val_000003.png")
    assert sample.status_code == 200 and Image.open(io.BytesIO(sample.content)).size == (32, 16)
    assert client.get("/reports/run/analysis").status_code == 404  # no log.jsonl


def test_report_files_are_sandboxed_and_confined(client, folders):
    report = client.get("/reports/file/analysis/index.html")
    assert report.status_code == 200 and "Culture report" in report.text
    assert report.headers["content-security-policy"] == "sandbox"
    assert client.get("/reports/file/001-cut/notes.py").status_code == 403
    assert client.get("/reports/file/missing.html").status_code == 404
    for path in ("/reports/file/%2e%2e/secret.html", "/reports/file/..%2Fsecret.html"):
        response = client.get(path)
        assert response.status_code in (403, 404) and "outside the" not in response.text
    from culturegan.web.reports import served_file

    with pytest.raises(ValueError, match="not inside the reports folder"):
        served_file(folders / "runs", "../secret.html")


def test_no_reports_folder_is_a_clear_404(folders):
    with make_client(folders, runs_dir=None) as c:
        response = c.get("/reports")
        assert response.status_code == 404 and "--reports DIR" in response.text


# ---------------------------------------------------------------------- video


def clip_bytes(tmp_path, frames=6, size=(64, 48)) -> bytes:
    av = pytest.importorskip("av", reason="video needs the [video] extra")
    path = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.read_bytes()


def test_video_job_gives_an_mp4_and_removes_its_files(folders, tmp_path):
    import av

    data = clip_bytes(tmp_path)
    with make_client(folders) as c:
        response = c.post(
            "/api/video", data={"model": "ukiyoe"}, files={"file": ("c.mp4", data, "video/mp4")}
        )
        assert response.status_code == 202 and response.json()["frames"] == 6
        job = response.json()["jobs"][0]
        assert wait_done(c, job["id"], timeout=60)["state"] == "done"
        video = c.get(f"/api/jobs/{job['id']}/result.mp4?download=1")
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        assert video.headers["content-disposition"].endswith('.mp4"')
        out = tmp_path / "out.mp4"
        out.write_bytes(video.content)
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 6
        assert c.get(f"/api/jobs/{job['id']}/result.png").status_code == 404
        assert list(c.app.state.tmp_dir.iterdir()) == []
        assert c.get("/video").status_code == 200


@pytest.mark.parametrize(
    "content, data, status, message",
    [
        (b"plain text", {"model": "ukiyoe"}, 415, "not a video the studio reads"),
        (b"\0\0\0\x18ftypisom" + b"\0" * 200, {"model": "ukiyoe"}, 400, "the video (MP4)"),
        (b"", {"model": "ukiyoe"}, 400, "the video is empty"),
        (None, {"model": "ukiyoe", "strength": "0.5"}, 400, "strength: this two_domain"),
        (None, {"model": "nope"}, 404, "unknown model"),
    ],
)
def test_bad_videos(folders, tmp_path, content, data, status, message):
    content = clip_bytes(tmp_path) if content is None else content
    with make_client(folders, max_video_frames=8) as c:
        response = c.post("/api/video", data=data, files={"file": ("c.mp4", content, "video/mp4")})
        assert response.status_code == status and message in response.json()["error"]
        assert "/tmp" not in response.json()["error"]
        assert list(c.app.state.tmp_dir.iterdir()) == []


def test_video_frame_limit(folders, tmp_path):
    with make_client(folders, max_video_frames=3) as c:
        files = {"file": ("c.mp4", clip_bytes(tmp_path), "video/mp4")}
        response = c.post("/api/video", data={"model": "ukiyoe"}, files=files)
        assert response.status_code == 413 and "6 frames (limit 3)" in response.json()["error"]


def test_running_job_cancels_and_cleans_up():
    pool = JobPool(workers=1)
    started, cleaned = threading.Event(), []

    def long_work(job):
        started.set()
        while not job.cancel_requested:
            time.sleep(0.005)
        raise JobCancelled()

    try:
        job = pool.submit(long_work, kind="video", label="v", cleanup=lambda: cleaned.append(1))
        assert started.wait(10) and pool.cancel(job.id)
        assert pool.wait(job.id, timeout=10).state == CANCELLED and cleaned == [1]
        assert not pool.cancel(job.id)  # already ended
    finally:
        pool.shutdown()


def test_grid_job_shows_the_grid_so_far(folders):
    with make_client(folders, workers=1) as c:
        pool = c.app.state.pool
        release = threading.Event()
        pool.submit(lambda job: release.wait(10) and b"", kind="t", label="block")
        response = c.post("/api/grid", data={"sample": "coffee", "async": "1"})
        job_id = response.json()["jobs"][0]["id"]
        assert c.get(f"/api/jobs/{job_id}/partial.png").status_code == 404  # nothing yet
        seen = set()
        job = pool.get(job_id)
        real = job.set_partial

        def record(png):  # every partial grid, as the page would fetch it
            real(png)
            seen.add(Image.open(io.BytesIO(c.get(f"/api/jobs/{job_id}/partial.png").content)).width)

        job.set_partial = record
        release.set()
        status = wait_done(c, job_id)
        assert status["state"] == "done" and status["partial"] == 3  # four cultures
        assert seen == {k * (160 + 4) + 4 for k in (2, 3, 4)}  # input + 1, 2, 3 cultures


def test_loopback_studio_refuses_other_host_names(folders, monkeypatch, tmp_path):
    import torch
    import uvicorn

    from culturegan import cli

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    assert cli.main(["studio", "--runs", str(tmp_path), "--workers", "1"]) == 0
    with TestClient(apps[0], base_url="http://127.0.0.1:7860") as c:
        assert c.get("/api/samples").status_code == 200
        for host in ("localhost:7860", "[::1]:7860", "127.0.0.1"):
            assert c.get("/api/samples", headers={"host": host}).status_code == 200
        rebound = c.get("/api/samples", headers={"host": "evil.example:7860"})
        assert rebound.status_code == 400 and "evil.example" in rebound.json()["error"]
