"""The reference view: taken after a warm-up, kept on disk, reset by the owner."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.app import App, Tuning
from agent.config import load_config
from agent.lifecycle import StopEvent
from agent.systemd import Notifier
from tests.support import REPO_ROOT, eventually
from tests.support.agent_proc import write_config
from tests.support.broker import Broker
from tests.support.rtsp import RtspCamera


def reset(config: Path, camera: str = "front") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "reference", "reset", camera, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def config(tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[{"id": "front", "url": rtsp_camera.url, "analysis_interval": "1s"}],
    )


@contextlib.contextmanager
def agent_running(config: Path) -> Iterator[App]:
    app = App(load_config(config), notifier=Notifier.from_env(), tuning=Tuning(warmup_samples=2))
    stop = StopEvent()
    runner = threading.Thread(target=app.run, args=(stop,))
    runner.start()
    try:
        yield app
    finally:
        stop.set()
        runner.join(10)


@pytest.fixture
def running_agent(config: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    with agent_running(config) as app:
        yield app


def test_reference_is_taken_and_reset_through_the_running_agent(
    config: Path, running_agent: App
) -> None:
    reference = config.parent / "state" / "references" / "front.colour.png"
    learnt = reference.with_suffix(".json")
    eventually(reference.exists, f"{reference} to appear", 20)
    eventually(learnt.exists, f"{learnt} to appear", 5)
    normal = json.loads(learnt.read_text())
    assert normal["noise"] > 0 and 0 < normal["brightness"] < 255
    assert len(normal["chroma_blocks"]) == 9 and len(normal["chroma_blocks"][0]) == 16
    result = reset(config)
    assert result.returncode == 0, result.stderr
    assert "camera front: taking a new reference view" in result.stdout
    assert not reference.exists() and not learnt.exists()
    eventually(reference.exists, f"{reference} to appear", 20)  # a new warm-up, a new view
    eventually(learnt.exists, f"{learnt} to appear", 5)


@pytest.mark.parametrize(
    "garbage",
    [b"{not json", b'{"noise": "loud"}', b'{"chroma_blocks": [[1, 2]]}', b"[]", b"\xff\xfe"],
)
def test_a_garbled_learnt_normal_is_kept_aside_and_learnt_again(
    config: Path, monkeypatch: pytest.MonkeyPatch, garbage: bytes
) -> None:
    # The state folder is the owner's: whatever lies there must not stop the camera.
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    folder = config.parent / "state" / "references"
    folder.mkdir(parents=True)
    learnt = folder / "front.colour.json"
    (folder / "front.colour.png").write_bytes(_grey_png())
    learnt.write_bytes(garbage)
    with agent_running(config):
        kept = eventually(
            lambda: list(folder.glob("front.colour.json.unreadable-*")),
            "the garbled file set aside",
            20,
        )
        assert kept[0].read_bytes() == garbage  # nothing the owner had is lost
        eventually(learnt.exists, "a new reference view taken", 20)
        assert json.loads(learnt.read_text())["noise"] is not None


def _grey_png() -> bytes:
    ok, data = cv2.imencode(".png", np.full((180, 320), 128, np.uint8))
    assert ok
    return bytes(data)


def test_reset_without_a_running_agent_acts_on_the_state_directory(config: Path) -> None:
    reference = config.parent / "state" / "references" / "front.colour.png"
    reference.parent.mkdir(parents=True)
    reference.write_bytes(b"not even a png")
    result = reset(config)
    assert result.returncode == 0, result.stderr
    assert "forgot its reference view" in result.stdout
    assert not reference.exists()


def test_an_unknown_camera_is_refused_naming_the_known_ones(config: Path) -> None:
    result = reset(config, "garden")
    assert result.returncode == 64
    assert "no camera 'garden'" in result.stderr and "front" in result.stderr


def test_the_running_agent_answers_in_the_owners_language(
    tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[{"id": "front", "url": rtsp_camera.url, "analysis_interval": "1s"}],
        agent={"locale": "nl"},
    )
    with agent_running(config):
        socket_path = tmp_path / "state" / "control.sock"
        eventually(socket_path.exists, f"{socket_path} to appear", 20)
        result = reset(config)
        assert result.returncode == 0, result.stderr
        assert "camera front: er wordt een nieuw referentiebeeld genomen" in result.stdout
        approve = subprocess.run(
            [sys.executable, "-m", "agent", "requests", "approve", "nope", "--config", str(config)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert approve.returncode != 0
        assert "nope" in approve.stderr and "verzoek" in approve.stderr
