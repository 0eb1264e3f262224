"""Recording mode `onvif`, what health says: the recordings an emulated NVR (the test ONVIF
device with Profile G's search service, answers built against the shipped WSDLs) holds of a
camera, reported as the agent's own footage is, and a recorder that cannot be asked."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.config import CameraConfig
from agent.recording.index import SegmentIndex
from agent.recording.recorder_fetch import FetchError
from agent.recording.recorder_source import RecorderSource
from tests.support import free_port
from tests.support.onvif_recorder import OnvifRecorder, Recording
from tests.support.schemas import assert_valid

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
H = dt.timedelta(hours=1)


def camera(device_url: str, password: str = "onvif-pass") -> CameraConfig:
    config = CameraConfig.model_validate(
        {
            "id": "front",
            "url": "rtsp://192.0.2.1/live",
            "onvif": {"url": device_url},
            "username": "onvif",
            "recording": {"mode": "onvif", "source": "cam-1"},
        }
    )
    object.__setattr__(config, "password", SecretStr(password))
    return config


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SegmentIndex]:
    db = SegmentIndex(tmp_path / "footage.sqlite")
    yield db
    db.close_db()


def recording(token: str, source: str, start: dt.datetime, end: dt.datetime) -> Recording:
    return Recording(token, source, start, end, "rtsp://127.0.0.1:9/recording")


def test_what_the_recorder_holds_is_reported_with_its_gaps(
    index: SegmentIndex, tmp_path: Path
) -> None:
    nvr = OnvifRecorder(
        {"main": "rtsp://127.0.0.1:9/a", "sub": "rtsp://127.0.0.1:9/b"},
        clock_offset=dt.timedelta(seconds=120),
        recordings=[
            # Two days of camera 1 with a two-hour hole, and another camera's recording.
            recording("r1", "cam-1", NOW - 48 * H, NOW - 30 * H),
            recording("r2", "cam-1", NOW - 28 * H, NOW),
            recording("r3", "cam-2", NOW - 90 * H, NOW),
        ],
    )
    with nvr:
        source = RecorderSource(camera(nvr.url), index, tmp_path, now=lambda: NOW)
        source.poll()
    footage, problems = source.report(receiving=True)
    assert footage is not None and problems == ()
    # On the agent's clock: the recorder's runs two minutes ahead (GetSystemDateAndTime).
    shift = dt.timedelta(seconds=120)
    oldest = dt.datetime.fromisoformat(str(footage["oldest"]))
    assert abs(oldest - (NOW - 48 * H - shift)) <= dt.timedelta(seconds=2)
    assert footage["gaps"] == {"count": 1, "seconds": 7200.0}
    assert footage["retention_days_effective"] == 2.0
    assert footage["bytes"] == 0  # the agent holds none of it
    health = {
        "schema": "camreg.health.v1",
        "agent": "shop-42",
        "camera": "front",
        "bdseq": 1,
        "seq": 1,
        "ts": "2026-12-07T10:00:00Z",
        "status": "ok",
        "problems": [],
        "metrics": {},
        "stream": None,
        "footage": footage,
        "clock": {"synced": True, "source": "ntp"},
    }
    assert_valid("health", health)


def test_a_recorder_that_cannot_be_asked_is_recording_stopped(
    index: SegmentIndex, tmp_path: Path
) -> None:
    source = RecorderSource(
        camera(f"http://127.0.0.1:{free_port()}/onvif/device_service"),
        index,
        tmp_path,
        now=lambda: NOW,
    )
    source.poll()
    assert source.report(receiving=True) == (None, ("recording_stopped",))
    # A camera that is itself offline says no_signal; the recorder is not blamed as well.
    assert source.report(receiving=False) == (None, ())


def test_wrong_credentials_are_named(index: SegmentIndex, tmp_path: Path) -> None:
    nvr = OnvifRecorder(
        {"main": "rtsp://127.0.0.1:9/a", "sub": "rtsp://127.0.0.1:9/b"},
        recordings=[recording("r1", "cam-1", NOW - H, NOW)],
    )
    with nvr:
        source = RecorderSource(camera(nvr.url, "wrong"), index, tmp_path, now=lambda: NOW)
        with pytest.raises(FetchError, match="refused the user name 'onvif' or its password"):
            source.fetch(NOW - 60 * dt.timedelta(seconds=1), NOW, stop=threading.Event())


def test_a_search_service_on_another_host_is_not_sent_the_password(
    index: SegmentIndex, tmp_path: Path
) -> None:
    class Elsewhere(OnvifRecorder):
        def more_services(self) -> list[dict[str, object]]:
            entries = super().more_services()
            for entry in entries:
                entry["XAddr"] = str(entry["XAddr"]).replace("127.0.0.1", "192.0.2.66")
            return entries

    nvr = Elsewhere(
        {"main": "rtsp://127.0.0.1:9/a", "sub": "rtsp://127.0.0.1:9/b"},
        recordings=[recording("r1", "cam-1", NOW - H, NOW)],
    )
    with nvr:
        source = RecorderSource(camera(nvr.url), index, tmp_path, now=lambda: NOW)
        source.poll()
    assert source.report(receiving=True) == (None, ("recording_stopped",))
    assert "FindRecordings" not in nvr.requests


def test_a_window_the_recorder_does_not_hold_fails_by_name(
    index: SegmentIndex, tmp_path: Path
) -> None:
    nvr = OnvifRecorder(
        {"main": "rtsp://127.0.0.1:9/a", "sub": "rtsp://127.0.0.1:9/b"},
        recordings=[recording("r1", "cam-1", NOW - H, NOW)],
    )
    with nvr:
        source = RecorderSource(camera(nvr.url), index, tmp_path, now=lambda: NOW)
        with pytest.raises(FetchError, match="holds nothing of source 'cam-1' between"):
            source.fetch(NOW - 3 * H, NOW - 2 * H, stop=threading.Event())
    assert "GetReplayUri" not in nvr.requests
