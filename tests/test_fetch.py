"""culturegan fetch: resumable downloads, retries, zips, museum APIs and WikiArt, all offline.

Every network answer comes from tests/fetch_server.py on 127.0.0.1; images are made here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from culturegan.cli import main
from culturegan.data.fetch import (
    DuplicateIndex,
    FetchError,
    HttpClient,
    MissingExtraError,
    OfflineError,
    WikiArtSource,
    dhash,
    extract_cyclegan_zip,
    fetch_cyclegan,
    fetch_museum,
    fetch_wikiart,
    huggingface_source,
)
from culturegan.data.fetch.http import retry_after_seconds
from fetch_server import FetchServer, aic_routes, cleveland_routes, met_routes


def picture(seed: int, size: int = 64) -> Image.Image:
    """Smooth colour noise: pictures from different seeds share no structure."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def fast_client(**kw) -> HttpClient:
    waits: list[float] = []
    client = HttpClient(backoff=0.0, connect_timeout=1.0, sleep=waits.append, **kw)
    client.waits = waits  # type: ignore[attr-defined]
    return client


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def server():
    with FetchServer() as srv:
        yield srv


# ----------------------------------------------------------------------------- http


def test_download_resumes_a_dropped_file_with_range(server, tmp_path):
    blob = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    server.add_file("/big.bin", blob)
    server.fault("/big.bin", ("drop", 120_000))
    dest = tmp_path / "big.bin"
    with pytest.raises(FetchError):  # no retries: the run stops like a killed process
        fast_client(retries=0).download(server.url + "/big.bin", dest)
    part = tmp_path / "big.bin.part"
    assert not dest.exists() and 0 < part.stat().st_size < len(blob)
    have = part.stat().st_size

    result = fast_client().download(server.url + "/big.bin", dest)  # the next run
    assert server.requests[-1][2].get("Range") == f"bytes={have}-"
    assert result.resumed_from == have and result.size == len(blob)
    assert (
        result.sha256
        == hashlib.sha256(blob).hexdigest()
        == hashlib.sha256(dest.read_bytes()).hexdigest()
    )
    assert not part.exists()


def test_download_resumes_within_one_call(server, tmp_path):
    blob = bytes(range(256)) * 1000
    server.add_file("/f.bin", blob)
    server.fault("/f.bin", ("drop", 70_000), 503)
    client = fast_client(retries=3)
    result = client.download(server.url + "/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == blob and result.resumed_from == 0
    ranges = [h.get("Range") for p, _, h in server.requests if p == "/f.bin"]
    assert ranges[0] is None and ranges[-1] and ranges[-1].startswith("bytes=")
    assert len(client.waits) == 2


@pytest.mark.parametrize("part_size", [1000, 1500])  # whole already; larger than the file
def test_download_with_a_whole_or_stale_part_file(server, tmp_path, part_size):
    blob = bytes(range(250)) * 4
    server.add_file("/f.bin", blob)
    (tmp_path / "f.bin.part").write_bytes((blob + b"x" * 500)[:part_size])
    result = fast_client().download(server.url + "/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == blob and result.size == len(blob)
    statuses = server.paths().count("/f.bin")
    assert statuses == (1 if part_size == len(blob) else 2)


def test_429_and_500_are_retried_and_retry_after_honoured(server):
    server.add_json("/api", lambda q: {"ok": q.get("x")})
    server.fault("/api", 429, retry_after="7")
    server.fault("/api", 500)
    client = fast_client(retries=3, max_wait=30)
    assert client.get_json(server.url + "/api", {"x": "1"}) == {"ok": "1"}
    assert client.waits == [7.0, 0.0]  # Retry-After, then the (zero) backoff
    assert len(server.requests) == 3


def test_retries_give_up_with_a_clear_error(server):
    server.add_json("/api", lambda q: {})
    server.fault("/api", 503, 503, 503)
    with pytest.raises(FetchError, match="HTTP 503.*after 3 attempts"):
        fast_client(retries=2).get_json(server.url + "/api")


def test_backoff_doubles_and_is_capped():
    client = HttpClient(backoff=1.0, max_wait=5.0)
    assert [client._backoff_wait(a, None) for a in range(4)] == [1.0, 2.0, 4.0, 5.0]
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_offline_fails_fast_with_the_host_name():
    start = time.monotonic()
    with pytest.raises(OfflineError, match=r"cannot reach 127\.0\.0\.1: "):
        HttpClient(connect_timeout=1.0).get_json(f"http://127.0.0.1:{unused_port()}/search")
    assert time.monotonic() - start < 3


def test_offline_probe_keeps_its_deadline_when_connecting_hangs(monkeypatch):
    # What a black-holed address or a stuck name lookup does: nothing, for a long time.
    import culturegan.data.fetch.http as http_module

    def hang(*args, **kwargs):
        time.sleep(3)
        raise TimeoutError("timed out")

    monkeypatch.setattr(http_module.socket, "create_connection", hang)
    start = time.monotonic()
    with pytest.raises(
        OfflineError, match=r"cannot reach example\.org: no connection within 0.5 s"
    ):
        HttpClient(connect_timeout=0.5).get_bytes("http://example.org/x.zip")
    assert time.monotonic() - start < 2


# ----------------------------------------------------------------------------- cyclegan


def cyclegan_zip(name: str = "monet2photo", members: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        if members is None:
            for i, split in enumerate(("trainA", "trainB", "testA", "testB")):
                for j in range(2):
                    zf.writestr(f"{name}/{split}/{j}.jpg", encoded(picture(10 * i + j), "JPEG"))
            zf.writestr(f"__MACOSX/{name}/._x.jpg", b"junk")
        else:
            for member, data in members.items():
                zf.writestr(member, data)
    return buffer.getvalue()


def test_cyclegan_fetch_records_extracts_and_notes_the_test_split(server, tmp_path):
    blob = cyclegan_zip()
    server.add_file("/cyclegan/datasets/monet2photo.zip", blob)
    server.fault("/cyclegan/datasets/monet2photo.zip", ("drop", len(blob) // 2))
    out = tmp_path / "monet2photo"
    base = server.url + "/cyclegan/datasets"
    with pytest.raises(FetchError):
        fetch_cyclegan("monet2photo", out, base_url=base, client=fast_client(retries=0),
                       progress=False, say=lambda s: None)  # fmt: skip
    result = fetch_cyclegan("monet2photo", out, base_url=base, client=fast_client(),
                            progress=False, say=lambda s: None)  # fmt: skip
    assert result.resumed_from > 0
    assert result.images == {"trainA": 2, "trainB": 2, "testA": 2, "testB": 2}
    record = json.loads((out / "download.json").read_text())
    assert record["sha256"] == hashlib.sha256(blob).hexdigest() and record["size"] == len(blob)
    assert record["extracted"] is True
    assert "public test split" in (out / "README.md").read_text()
    assert "public test split" in result.report()
    assert result.skipped_members == ["__MACOSX/monet2photo/._x.jpg"]
    assert not (out / "monet2photo.zip").exists() and not list(out.glob(".extract-*"))
    from culturegan.data import load_splits

    splits = load_splits(out)
    assert splits.layout == "cyclegan" and len(splits.domains[0].test) == 2

    before = len(server.requests)
    again = fetch_cyclegan("monet2photo", out, base_url=base, progress=False)
    assert again.already_there and len(server.requests) == before


@pytest.mark.parametrize(
    "member",
    ["../evil.jpg", "monet2photo/trainA/../../evil.jpg", "/tmp/evil.jpg", "trainA\\..\\evil.jpg"],
)
def test_zip_path_traversal_is_refused_before_anything_is_written(tmp_path, member):
    blob = cyclegan_zip(members={"m/trainA/ok.jpg": b"x", "m/trainB/ok.jpg": b"x", member: b"x"})
    (tmp_path / "bad.zip").write_bytes(blob)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="refusing .* could write outside"):
        extract_cyclegan_zip(tmp_path / "bad.zip", out)
    assert list(out.iterdir()) == [] and not (tmp_path / "evil.jpg").exists()


def test_zip_symlink_member_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("m/trainA/ok.jpg", b"x")
        link = zipfile.ZipInfo("m/trainB/link.jpg")
        link.external_attr = 0o120777 << 16  # a symlink, as Info-ZIP stores one
        zf.writestr(link, "/etc/passwd")
    (tmp_path / "link.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="symbolic link"):
        extract_cyclegan_zip(tmp_path / "link.zip", tmp_path / "out")


# ----------------------------------------------------------------------------- museums

ARTWORKS = [  # id, licence, image and culture decide what happens to each
    {"id": 1, "title": "Wave", "culture": "Japan", "public": True, "image": "/img/1.png"},
    {"id": 2, "title": "Modern", "culture": "Japan", "public": False, "image": "/img/2.png"},
    {"id": 3, "title": "Broken Print", "culture": "Japan", "public": True, "image": "/img/3.jpg"},
    {"id": 4, "title": "Wave (copy)", "culture": "Japan", "public": True, "image": "/img/4.jpg"},
    {"id": 5, "title": "Vase", "culture": "China", "public": True, "image": "/img/5.png"},
    {"id": 6, "title": "Crane", "culture": "Japan, Edo period", "public": True,
     "image": "/img/6.png"},
    {"id": 7, "title": "No picture", "culture": "Japan", "public": True, "image": None},
]  # fmt: skip


def add_images(server: FetchServer, prefix: str = "/img") -> None:
    wave = picture(1)
    server.add_file(f"{prefix}/1.png", encoded(wave))
    server.add_file(f"{prefix}/2.png", encoded(picture(2)))
    server.add_file(f"{prefix}/3.jpg", encoded(picture(3), "JPEG")[:300])  # truncated
    server.add_file(f"{prefix}/4.jpg", encoded(wave.resize((80, 80)), "JPEG", quality=70))
    server.add_file(f"{prefix}/5.png", encoded(picture(5)))
    server.add_file(f"{prefix}/6.png", encoded(picture(6)))


def check_outcome(result, out: Path, source: str) -> None:
    assert result.saved == 2 and result.in_manifest == 2
    assert result.not_public_domain == 1 and result.other_culture == 1 and result.no_image == 1
    assert [label for label, _ in result.corrupt] == [
        f"{source} 3 'Broken Print' ({result.corrupt[0][0].split('(')[-1]}"
    ]
    assert result.duplicates and result.duplicates[0][1].startswith(f"{source}-1.")
    report = result.report()
    assert "'Broken Print'" in report and "corrupt" in report and "near-duplicate" in report
    rows = read_manifest(out / "manifest.csv")
    assert [r["object_id"] for r in rows] == ["1", "6"]
    assert {r["licence"] for r in rows} == {"CC0"}
    assert set(rows[0]) >= {"source", "object_id", "title", "artist", "culture", "date",
                            "medium", "classification", "image_url", "licence", "file"}  # fmt: skip
    for row in rows:
        assert (out / row["file"]).is_file() and row["source"] == source
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == [
        f"{source}-1.png",
        f"{source}-6.png",
    ]


def test_met_search_objects_licence_duplicates_corrupt_and_rerun(server, tmp_path):
    met_routes(server, ARTWORKS)
    add_images(server)
    server.fault("/met/objects/1", 429, retry_after="0")
    server.fault("/img/6.png", 500)
    out = tmp_path / "japan"
    kw = dict(culture="Japan", base_url=server.url + "/met", progress=False)
    result = fetch_museum("met", out, client=fast_client(), **kw)
    check_outcome(result, out, "met")
    assert server.paths().count("/met/objects/1") == 2 and server.paths().count("/img/6.png") == 2
    assert server.requests[0][1] == {"q": "Japan", "hasImages": "true", "artistOrCulture": "true"}

    server.requests.clear()
    again = fetch_museum("met", out, client=fast_client(), **kw)
    assert again.saved == 0 and again.already_there == 2
    assert "/img/1.png" not in server.paths() and "/met/objects/1" not in server.paths()
    assert len(read_manifest(out / "manifest.csv")) == 2


def test_aic_pages_builds_iiif_urls_and_filters_licence(server, tmp_path):
    aic_routes(server, ARTWORKS)
    add_images(server)
    for art in ARTWORKS:  # the IIIF server answers the image ids the search gave
        if art["image"]:
            server.files[f"/iiif/2/im{art['id']}/full/843,/0/default.jpg"] = server.files[
                art["image"]
            ]
    out = tmp_path / "aic"
    result = fetch_museum("aic", out, culture="Japan", base_url=server.url + "/aic",
                          client=fast_client(), page_size=3, progress=False)  # fmt: skip
    pages = [q["page"] for p, q, _ in server.requests if p == "/aic/artworks/search"]
    assert pages == ["1", "2", "3"]
    assert all(q["query[term][is_public_domain]"] == "true"
               for p, q, _ in server.requests if p.endswith("search"))  # fmt: skip
    check_outcome(result, out, "aic")
    rows = read_manifest(out / "manifest.csv")
    assert rows[0]["image_url"].endswith("/iiif/2/im1/full/843,/0/default.jpg")


def test_cleveland_pages_with_skip_and_stops_at_max(server, tmp_path):
    cleveland_routes(server, ARTWORKS, prefix="/cma")
    add_images(server)
    out = tmp_path / "cma"
    client = fast_client()
    result = fetch_museum("cleveland", out, culture="Japan", base_url=server.url + "/cma",
                          client=client, page_size=2, progress=False)  # fmt: skip
    skips = [q["skip"] for p, q, _ in server.requests if p == "/cma/artworks/"]
    assert skips == ["0", "2", "4", "6"] and all(
        q["cc0"] == "1" for p, q, _ in server.requests if p == "/cma/artworks/"
    )
    check_outcome(result, out, "cleveland")

    first = fetch_museum("cleveland", tmp_path / "one", culture="Japan", max_images=1,
                         base_url=server.url + "/cma", client=client, page_size=2,
                         progress=False)  # fmt: skip
    assert first.saved == 1 and len(read_manifest(tmp_path / "one" / "manifest.csv")) == 1


def test_museum_needs_words_and_a_known_source(tmp_path):
    with pytest.raises(ValueError, match="--culture, --query"):
        fetch_museum("met", tmp_path)
    with pytest.raises(ValueError, match="unknown museum"):
        fetch_museum("louvre", tmp_path, culture="France")


def test_dhash_near_duplicates_and_distinct_pictures():
    wave = picture(1)
    copy = Image.open(io.BytesIO(encoded(wave.resize((90, 90)), "JPEG", quality=60)))
    index = DuplicateIndex()
    index.add(dhash(wave), "wave.png")
    assert index.find(dhash(copy)) == "wave.png"
    assert all(index.find(dhash(picture(seed))) is None for seed in range(2, 12))


# ----------------------------------------------------------------------------- wikiart


def fake_wikiart(n: int = 12) -> WikiArtSource:
    styles = ["Baroque", "Impressionism", "Ukiyo_e"]
    records = []
    for i in range(n):
        image: object = {"bytes": encoded(picture(100 + i), "JPEG", quality=90)}
        if i == 4:
            image = {"bytes": b"\xff\xd8\xff\xe0 not really a jpeg"}
        if i == 5:
            image = picture(100 + 2)  # a decoded image (decode=True): same picture as record 2
        records.append({"image": image, "artist": i % 2, "genre": 1, "style": i % 3})
    names = {"artist": ["hokusai", "monet"], "genre": ["landscape", "portrait"],
             "style": styles}  # fmt: skip
    return WikiArtSource(records, names)


def test_wikiart_writes_style_folders_and_manifest(tmp_path):
    out = tmp_path / "wikiart"
    result = fetch_wikiart(["ukiyo-e", "Impressionism"], out, max_per_style=2,
                           source=fake_wikiart(), progress=False)  # fmt: skip
    assert dict(result.in_manifest) == {"Ukiyo_e": 2, "Impressionism": 2}
    assert sorted(p.name for p in (out / "Ukiyo_e").iterdir()) == ["000002.jpg", "000008.jpg"]
    assert result.corrupt and result.corrupt[0][0].startswith("huggan/wikiart record 4")
    assert result.duplicates and result.duplicates[0][1] == "Ukiyo_e/000002.jpg"
    rows = read_manifest(out / "manifest.csv")
    assert {"artist", "genre", "style", "source", "licence"} <= set(rows[0])
    row = next(r for r in rows if r["file"] == "Ukiyo_e/000002.jpg")
    assert row["style"] == "Ukiyo_e" and row["artist"] == "hokusai" and row["genre"] == "portrait"
    assert row["source"] == "huggan/wikiart" and "original authors" in row["licence"]
    assert "style is not culture" in result.report()

    again = fetch_wikiart(["Ukiyo_e", "Impressionism"], out, max_per_style=3,
                          source=fake_wikiart(), progress=False)  # fmt: skip
    assert again.already_there == 4 and sum(again.saved.values()) == 2
    assert len(read_manifest(out / "manifest.csv")) == 6


def test_wikiart_unknown_style_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown WikiArt style 'Kano'.*Baroque, Impressionism"):
        fetch_wikiart(["Kano"], tmp_path, source=fake_wikiart(), progress=False)


def test_wikiart_without_datasets_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'culturegan\[fetch\]'"):
        huggingface_source()
    code = main(["fetch", "wikiart", "--styles", "Ukiyo_e", "--out", str(tmp_path / "w")])
    assert code == 2
    err = capsys.readouterr().err
    assert "culturegan[fetch]" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- CLI


def test_cli_fetch_cyclegan_and_museum_end_to_end(server, tmp_path, monkeypatch, capsys):
    server.add_file("/ds/ukiyoe2photo.zip", cyclegan_zip("ukiyoe2photo"))
    monkeypatch.setenv("CULTUREGAN_CYCLEGAN_URL", server.url + "/ds")
    out = tmp_path / "ukiyoe2photo"
    assert main(["fetch", "cyclegan", "ukiyoe2photo", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "public test split" in printed and (out / "trainA" / "0.jpg").is_file()

    met_routes(server, ARTWORKS)
    add_images(server)
    monkeypatch.setenv("CULTUREGAN_MET_URL", server.url + "/met")
    args = ["fetch", "museum", "met", "--culture", "Japan", "--out", str(tmp_path / "met"),
            "--delay", "0", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "saved 2 new images" in printed and "'Broken Print'" in printed


def test_cli_offline_exits_2_in_seconds_without_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CULTUREGAN_AIC_URL", f"http://127.0.0.1:{unused_port()}/api/v1")
    start = time.monotonic()
    code = main(["fetch", "museum", "aic", "--culture", "Japan", "--out", str(tmp_path / "o"),
                 "--no-progress"])  # fmt: skip
    assert code == 2 and time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert "cannot reach 127.0.0.1" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "manifest.csv").exists()
