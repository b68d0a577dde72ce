"""Video stylization: round trips through PyAV, the temporal stage, failures, the command."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from culturegan.data.video import VideoLoadError, open_video, upright  # noqa: E402
from culturegan.temporal import FlickerMeter  # noqa: E402
from culturegan.video import stylize_video  # noqa: E402


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour noise with strong local contrast, (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC))


def translating_frames(n: int, size=(64, 48), step: int = 2) -> list[np.ndarray]:
    """Windows sliding ``step`` pixels right per frame over one large texture."""
    w, h = size
    big = texture(h, w + step * n, seed=1)
    return [big[:, t * step : t * step + w].copy() for t in range(n)]


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    fps: Fraction = Fraction(25),
    audio: str | None = None,  # "aac" or "pcm_s16le": a 440 Hz sine
    rotation: int = 0,
    lossless: bool = False,
) -> Path:
    container = av.open(str(path), "w")
    codec = "libx264rgb" if lossless else "libx264"
    stream = container.add_stream(codec, rate=fps, options={"crf": "0" if lossless else "18"})
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "rgb24" if lossless else "yuv420p"
    if rotation:
        stream.set_display_rotation(rotation)
    sound = container.add_stream(audio, rate=16000) if audio else None
    for i, frame in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = i
        container.mux(stream.encode(vf))
    if sound is not None:
        total = round(16000 * len(frames) / fps)
        samples = np.sin(2 * np.pi * 440 * np.arange(total) / 16000)
        fmt = "fltp" if audio == "aac" else "s16"
        for start in range(0, total, 1024):
            chunk = samples[start : start + 1024][None]
            chunk = (
                chunk.astype(np.float32) * 0.3 if fmt == "fltp" else (chunk * 9000).astype("<i2")
            )
            af = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
            af.sample_rate, af.pts = 16000, start
            container.mux(sound.encode(af))
        container.mux(sound.encode(None))
    container.mux(stream.encode(None))
    container.close()
    return path


def decoded(path: Path) -> list[np.ndarray]:
    return [f.image for f in open_video(path).frames()]


# ----------------------------------------------------------------------------- stylizers


@dataclass
class _Request:
    reference: object = None


@dataclass
class _Result:
    images: list[Image.Image]


class Invert:
    """A pixelwise stylizer (so it is exactly consistent under motion), optionally with
    flicker: independent Gaussian noise of std ``noise`` per frame, seeded by the call count.
    Records every call's options and input sizes; raises on call ``fail_at``."""

    def __init__(self, noise: float = 0.0, fail_at: int | None = None) -> None:
        self.noise, self.fail_at = noise, fail_at
        self.calls: list[dict] = []
        self.sizes: list[tuple[int, int]] = []

    def check_inputs(self, **options) -> _Request:
        return _Request(reference=options.get("reference"))

    def __call__(self, images, **options) -> _Result:
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise RuntimeError("stylizer failed on purpose")
        self.calls.append(options)
        out = []
        for image in images:
            self.sizes.append(image.size)
            y = 255.0 - np.asarray(image, np.float32)
            if self.noise:
                rng = np.random.default_rng(len(self.sizes))
                y = y + rng.normal(0, self.noise, y.shape)
            out.append(Image.fromarray(np.clip(np.rint(y), 0, 255).astype(np.uint8)))
        return _Result(out)


@pytest.fixture(scope="module")
def tiny_stylizer(tmp_path_factory):
    from conftest import save_tiny_model
    from culturegan.inference import Stylizer

    return Stylizer.from_pretrained(save_tiny_model(tmp_path_factory.mktemp("model") / "m"))


# ----------------------------------------------------------------------------- round trips


def test_round_trip_keeps_frames_fps_size_audio_and_rotation(tmp_path):
    fps = Fraction(30000, 1001)
    clip = write_clip(tmp_path / "in.mp4", translating_frames(9), fps=fps, audio="aac",
                      rotation=90)  # fmt: skip
    info = open_video(clip).info
    assert (info.size, info.rotation, info.audio.codec) == ((64, 48), 90, "aac")
    stylizer = Invert()
    summary = stylize_video(clip, tmp_path / "out.mp4", stylizer=stylizer, progress=False)
    out = open_video(summary.output).info
    assert summary.frames == 9 and len(decoded(summary.output)) == 9
    assert out.fps == fps and out.size == (64, 48) and out.rotation == 90
    assert out.audio is not None and out.audio.codec == "aac" and summary.audio == "copied"
    assert set(stylizer.sizes) == {(48, 64)}  # the network saw upright frames
    with av.open(str(clip)) as a, av.open(str(summary.output)) as b:
        packets = [sum(p.size > 0 for p in c.demux(c.streams.audio[0])) for c in (a, b)]
    assert packets[0] == packets[1]  # every audio packet copied


def test_size_sets_the_shorter_side_and_audio_is_reencoded_when_needed(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", translating_frames(4), audio="pcm_s16le")
    summary = stylize_video(clip, tmp_path / "out.mp4", stylizer=Invert(), size=32,
                            progress=False)  # fmt: skip
    # 64 x 48 -> shorter side 32: 42.7 x 32, rounded to even sides for 4:2:0 chroma
    assert summary.size == (42, 32) == open_video(summary.output).info.size
    assert summary.audio == "re-encoded pcm_s16le to aac"
    assert open_video(summary.output).info.audio.codec == "aac"


def test_frames_folder_and_gif_inputs(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(translating_frames(5, size=(41, 33))):
        Image.fromarray(frame).save(folder / f"f{i:03d}.png")
    summary = stylize_video(folder, tmp_path / "f.mp4", stylizer=Invert(), fps=12, progress=False)
    info = open_video(summary.output).info
    assert (summary.frames, info.fps) == (5, 12)
    assert info.size == (40, 32)  # odd sides lose their last row / column (4:2:0)

    gif = tmp_path / "in.gif"
    pictures = [Image.fromarray(f) for f in translating_frames(4)]
    pictures[0].save(gif, save_all=True, append_images=pictures[1:], duration=100, loop=0)
    assert open_video(gif).info.kind == "gif"
    summary = stylize_video(gif, tmp_path / "g.mp4", stylizer=Invert(), progress=False)
    info = open_video(summary.output).info
    assert summary.frames == 4 and len(decoded(summary.output)) == 4
    assert info.fps == 10 and info.size == (64, 48)


def test_style_options_reach_every_frame_and_unset_ones_are_not_passed(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", translating_frames(5))
    stylizer = Invert()
    stylize_video(clip, tmp_path / "o.mp4", stylizer=stylizer, target="art", seed=7,
                  mix="a:1,b:2", strength=0.5, finish="print", batch_size=2,
                  progress=False)  # fmt: skip
    expected = {"target": "art", "seed": 7, "mix": "a:1,b:2", "strength": 0.5,
                "batch_size": 2}  # fmt: skip
    assert stylizer.calls == [expected] * 3  # batches of 2, 2, 1; the video draws the finish
    stylizer = Invert()
    stylize_video(clip, tmp_path / "o.mp4", stylizer=stylizer, progress=False)
    assert stylizer.calls == [{"batch_size": 1}] * 5


# ----------------------------------------------------------------------------- temporal stage


def test_temporal_zero_equals_per_frame_stylization(tmp_path, tiny_stylizer):
    clip = write_clip(tmp_path / "in.mkv", translating_frames(5), lossless=True)
    summary = stylize_video(clip, tmp_path / "out.mkv", stylizer=tiny_stylizer, temporal=0,
                            codec="libx264rgb", crf=0, progress=False)  # fmt: skip
    inputs = decoded(clip)
    expected = tiny_stylizer([Image.fromarray(x) for x in inputs], batch_size=1).images
    for got, want in zip(decoded(summary.output), expected, strict=True):
        np.testing.assert_array_equal(got, np.asarray(want))  # lossless RGB: bit-exact


def test_temporal_stage_reduces_warping_error_as_predicted(tmp_path):
    """A pixelwise stylizer plus independent noise n_t (std s) per frame: the per-frame
    warping error is E|n_t - n_{t-1}|. With o_t = (1 - a) y_t + a warp(o_{t-1}) on reliable
    pixels, the error e_t = o_t - s_t follows e_t = (1 - a) n_t + a e_{t-1}, so
    var(e) = (1 - a) / (1 + a) s^2 and o_t - o_{t-1} = (1 - a)(n_t - e_{t-1}) has std
    (1 - a) s sqrt(2 / (1 + a)): the error falls by (1 - a) / sqrt(1 + a) in steady state."""
    frames = translating_frames(16, size=(96, 64))
    clip = write_clip(tmp_path / "in.mkv", frames, lossless=True)
    errors, weights = {}, {}
    for a in (0.0, 0.5):
        meter = FlickerMeter(flow=None)
        stylize_video(
            clip, tmp_path / "out.mkv", stylizer=Invert(noise=12.0), temporal=a, progress=False,
            observer=lambda x, y, out, step, m=meter: m.update(x, {"out": out}, step),
        )  # fmt: skip
        errors[a] = meter.result()["out"]
        weights[a] = meter.reliable / meter.pairs
    assert weights[0.0] > 0.8  # the flow of a pure translation is trusted almost everywhere
    expected = (1 - 0.5) / math.sqrt(1 + 0.5)  # 0.41
    ratio = errors[0.5] / errors[0.0]
    # Below the prediction's upper side: the texture factor (>= 0.9 on this texture), the eased
    # borders and the first frames before the steady state all move the ratio up towards 1,
    # never below the steady-state value (less bilinear smoothing of the noise aside).
    assert expected - 0.1 < ratio < expected + 0.2, (ratio, expected)
    assert errors[0.0] == pytest.approx(2 * 12.0 / math.sqrt(math.pi) / 255, rel=0.25)


# ----------------------------------------------------------------------------- failures


def test_failure_mid_way_leaves_no_output_and_keeps_an_old_one(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", translating_frames(6))
    out = tmp_path / "out" / "o.mp4"
    with pytest.raises(RuntimeError, match="on purpose"):
        stylize_video(clip, out, stylizer=Invert(fail_at=3), progress=False)
    assert list(out.parent.iterdir()) == []  # neither o.mp4 nor a temporary file
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="on purpose"):
        stylize_video(clip, out, stylizer=Invert(fail_at=3), progress=False)
    assert out.read_bytes() == b"old" and list(out.parent.iterdir()) == [out]


def test_sigkill_mid_way_leaves_nothing_under_the_output_name(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", translating_frames(6))
    marker, out = tmp_path / "frame3", tmp_path / "o.mp4"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_video import Invert
        from culturegan.video import stylize_video

        class Slow(Invert):
            def __call__(self, images, **options):
                if len(self.calls) == 3:
                    open({str(marker)!r}, "w").close()
                    time.sleep(60)
                return super().__call__(images, **options)

        stylize_video({str(clip)!r}, {str(out)!r}, stylizer=Slow(), progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ,
                            "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never reached frame 3"
        assert any(p.name.startswith(".o.mp4.") for p in tmp_path.iterdir())  # encoding
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not out.exists()


def test_output_never_replaces_the_input(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", translating_frames(3))
    before = clip.read_bytes()
    with pytest.raises(ValueError, match="is the input"):
        stylize_video(clip, tmp_path / "." / "in.mp4", stylizer=Invert(), progress=False)
    assert clip.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 50, b"\x00\x00\x00\x18ftypmp42"])
def test_unreadable_input_is_a_clear_error_naming_the_file(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(VideoLoadError, match="bad.mp4"):
        stylize_video(bad, tmp_path / "o.mp4", stylizer=Invert(), progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_missing_pyav_names_the_extra(monkeypatch, tmp_path):
    from culturegan.data import video as data_video

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"culturegan\[video\]"):
        data_video.require("av")


def test_video_modules_import_without_pyav_and_opencv_and_the_command_names_the_extra():
    code = textwrap.dedent("""
        import sys
        sys.modules["av"] = sys.modules["cv2"] = None  # as if not installed
        import culturegan, culturegan.inference, culturegan.video, culturegan.data.video
        del sys.modules["cv2"]  # other commands' modules import OpenCV themselves
        from culturegan.cli import main
        sys.exit(main(["stylize-video", "x.mp4", "--style", "ukiyoe", "--out", "y.mp4"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "culturegan stylize-video: error:" in proc.stderr
    assert "pip install 'culturegan[video]'" in proc.stderr


# ----------------------------------------------------------------------------- command line


def test_cli_end_to_end(tmp_path, capsys):
    from conftest import save_tiny_model
    from culturegan.cli import main

    model = save_tiny_model(tmp_path / "model")
    clip = write_clip(tmp_path / "in.mp4", translating_frames(4), audio="aac")
    out = tmp_path / "out.mp4"
    args = ["stylize-video", str(clip), "--model", str(model), "--out", str(out), "--no-progress"]
    assert main(args + ["--temporal", "0.6", "--size", "32"]) == 0
    assert "4 frames" in capsys.readouterr().out
    info = open_video(out).info
    assert info.size == (42, 32) and info.audio is not None
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 100)
    assert main(["stylize-video", str(bad), "--model", str(model), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "culturegan stylize-video: error: cannot read video" in err and "bad.mp4" in err
    assert main(["stylize-video", str(clip), "--model", str(model), "--out", str(clip)]) == 2
    assert "outputs never replace inputs" in capsys.readouterr().err
    # a two-domain model cannot honour a seed: refused before anything is written
    assert main(args + ["--seed", "3"]) == 2
    assert "seed" in capsys.readouterr().err
    # several passes per frame, as for images (the lattice cancels; tests/test_shifts.py)
    assert main(args + ["--size", "32", "--shifts", "4"]) == 0
    assert "4 frames" in capsys.readouterr().out
    # each frame finished (here in ink: the output's paper, washes and brush lines)
    assert main(args + ["--size", "32"]) == 0
    plain = decoded(out)
    assert main(args + ["--size", "32", "--finish", "ink"]) == 0
    assert "4 frames" in capsys.readouterr().out
    inked = decoded(out)
    assert len(inked) == 4 and inked[0].shape == plain[0].shape
    assert np.abs(inked[0].astype(int) - plain[0]).mean() > 5
    # a shipped model's card: its finish is named when the command does not ask for it
    shipped = ["stylize-video", str(clip), "--style", "ukiyoe", "--out", str(out), "--size",
               "32", "--no-progress"]  # fmt: skip
    assert main(shipped) == 0
    assert "note: ukiyoe's card recommends --finish print" in capsys.readouterr().out
    assert main(shipped + ["--finish", "print"]) == 0
    assert "recommends" not in capsys.readouterr().out


def test_upright_turns_a_stored_frame_by_the_display_rotation():
    stored_frame = np.arange(6).reshape(2, 3)
    # 90 degrees counter-clockwise: the right column becomes the top row
    np.testing.assert_array_equal(upright(stored_frame, 90), [[2, 5], [1, 4], [0, 3]])
    np.testing.assert_array_equal(upright(stored_frame, -90), np.rot90(stored_frame, -1))


def test_gif_transparency_is_composited_over_white(tmp_path):
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    blue = Image.new("RGBA", (8, 8), (0, 0, 255, 255))
    clear.save(tmp_path / "t.gif", save_all=True, append_images=[blue], duration=100, disposal=2)
    first, second = decoded(tmp_path / "t.gif")
    assert (first == 255).all() and (second == [0, 0, 255]).all()  # as load_image does
