"""The reference view: taken after a warm-up, kept on disk, reset by the owner."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app import App, Tuning
from agent.config import load_config
from agent.systemd import Notifier
from tests.support import REPO_ROOT
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


def wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.2)


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
    stop = threading.Event()
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
    wait_for_file(reference, timeout=20)
    result = reset(config)
    assert result.returncode == 0, result.stderr
    assert "camera front: taking a new reference view" in result.stdout
    assert not reference.exists()
    wait_for_file(reference, timeout=20)  # a new warm-up, a new view


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
        wait_for_file(tmp_path / "state" / "control.sock", timeout=20)
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
