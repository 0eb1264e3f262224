"""`camera-agent probe`: a one-off verdict on a file or stream, as an owner runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT
from tests.support.rtsp import RtspCamera
from tests.support.schemas import assert_valid


def probe(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "probe", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def probe_json(*args: str) -> dict[str, Any]:
    result = probe(*args, "--json")
    assert result.returncode == 0, result.stderr
    health: dict[str, Any] = json.loads(result.stdout)
    assert_valid("health", health)
    return health


def test_a_live_file_is_ok_and_read_faster_than_real_time(tmp_h264: Callable[..., Path]) -> None:
    path = tmp_h264(20, fps=15, width=1280, height=720)
    started = time.monotonic()
    health = probe_json(str(path), "--seconds", "20")
    assert time.monotonic() - started < 15
    assert (health["agent"], health["seq"], health["schema"]) == ("probe", 0, "camreg.health.v1")
    assert (health["status"], health["problems"]) == ("ok", [])
    stream = health["stream"]
    assert (stream["codec"], stream["width"], stream["height"]) == ("h264", 1280, 720)
    assert abs(stream["fps"] - 15) < 0.5
    assert health["metrics"]["keyframe_interval_s"] == 2.0


def test_a_frozen_file_is_failed(tmp_h264: Callable[..., Path]) -> None:
    health = probe_json(str(tmp_h264(12, scene="frozen", width=1280, height=720)))
    assert (health["status"], health["problems"]) == ("failed", ["frozen"])


def test_a_small_picture_is_low_resolution(tmp_h264: Callable[..., Path]) -> None:
    health = probe_json(str(tmp_h264(8, width=320, height=240)))
    assert (health["status"], health["problems"]) == ("degraded", ["low_resolution"])


def test_the_plain_report_speaks_to_a_person(tmp_h264: Callable[..., Path]) -> None:
    result = probe(str(tmp_h264(8, scene="frozen", width=1280, height=720)))
    assert result.returncode == 0, result.stderr
    assert ": failed" in result.stdout
    assert "problems: frozen" in result.stdout
    assert "h264 1280x720" in result.stdout


def test_an_rtsp_stream_is_probed_for_the_given_seconds(rtsp_camera: RtspCamera) -> None:
    started = time.monotonic()
    health = probe_json(rtsp_camera.url, "--seconds", "7", "--interval", "2")
    assert 6.5 < time.monotonic() - started < 15
    assert health["status"] == "ok", health
    assert health["stream"]["source"] == "rtsp"


def test_an_unreachable_camera_is_offline(rtsp_camera: RtspCamera) -> None:
    rtsp_camera.stop()
    health = probe_json(rtsp_camera.url, "--seconds", "3")
    assert (health["status"], health["problems"]) == ("offline", ["no_signal"])
    assert health["stream"] is None


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = probe(str(tmp_path / "nothing.mp4"))
    assert result.returncode == 69
    assert "nothing.mp4: no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_refused() -> None:
    result = probe("x.mp4", "--seconds", "-1")
    assert result.returncode == 2
    assert "must be greater than 0" in result.stderr


def test_a_short_probe_says_the_picture_is_not_yet_judged(tmp_h264: Callable[..., Path]) -> None:
    """One second of a file is too few pictures and no reference view: ok, but pending, in
    the JSON and in words; ten seconds are enough for both (the probe takes its own)."""
    clip = str(tmp_h264(12))
    short = probe_json(clip, "--seconds", "1")
    assert short["status"] == "ok" and short["judgement"]["state"] == "pending"
    assert set(short["judgement"]["waiting_for"]) == {"samples", "reference"}
    said = probe(clip, "--seconds", "1").stdout
    assert "not yet judged: waiting for more pictures" in said and "--reference" in said
    long = probe_json(clip, "--seconds", "10")
    assert long["judgement"]["state"] == "judged", long["judgement"]
    assert "not yet judged" not in probe(clip, "--seconds", "10").stdout
