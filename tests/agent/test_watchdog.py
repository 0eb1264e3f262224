"""systemd integration of `run`: READY, and pings that go on while one camera's worker is
wedged (it is abandoned and replaced) or crashes (it is restarted)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from agent.app import App, Tuning
from agent.config import CameraConfig, load_config
from agent.lifecycle import StopEvent
from agent.quality.assess import StreamFacts
from agent.streams.source import Packet
from agent.streams.worker import OpenSource
from agent.systemd import Notifier
from tests.support.agent_proc import write_config
from tests.support.broker import Broker


class HangingSource:
    """A camera that sends a few packets, then hangs inside a read no timeout reaches."""

    display_url = "fake://hanging"
    video_stream = None  # nothing to record from

    def __init__(self, release: threading.Event, hang_after: int) -> None:
        self._release = release
        self._hang_after = hang_after

    @property
    def facts(self) -> StreamFacts:
        return StreamFacts("h264", 1280, 720, "rtsp")

    def packets(self, stop: threading.Event) -> Iterator[Packet]:
        for n in range(10**9):
            if n == self._hang_after:
                self._release.wait()
                return
            time.sleep(0.05)  # 20 packets a second, as a camera sends
            yield Packet(time.monotonic(), 1000, n % 20 == 0, None)

    def decode_keyframe(self, packet: Packet) -> None:
        return None


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A socket standing in for systemd's, with a watchdog asking for a ping every 0.2 s."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.1)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    yield sock
    sock.close()


def test_ready_then_pings_that_go_on_while_a_wedged_worker_is_replaced(
    tmp_path: Path, broker: Broker, notify_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    sock = notify_socket
    config = load_config(
        write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {"id": "front", "url": "rtsp://127.0.0.1:9/x"},
                {"id": "back", "url": "rtsp://127.0.0.1:9/y"},
            ],
        )
    )
    release = threading.Event()
    opened: list[str] = []

    def open_source(camera: CameraConfig) -> OpenSource:
        @contextmanager
        def opener() -> Iterator[HangingSource]:
            opened.append(camera.id)
            # 'back' hangs 0.5 s into every connection.
            yield HangingSource(release, 10 if camera.id == "back" else 10**9)

        return opener

    stop = StopEvent()
    app = App(
        config,
        open_source=open_source,
        notifier=Notifier.from_env(),
        tuning=Tuning(wedged_after=1.0),
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(app.run(stop)))
    runner.start()
    received: list[tuple[float, str]] = []
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with suppress(TimeoutError):
                received.append((time.monotonic(), sock.recv(4096).decode()))
    finally:
        stop.set()
        runner.join(10)
        release.set()
    try:
        while True:
            received.append((time.monotonic(), sock.recv(4096).decode()))
    except TimeoutError:
        pass
    assert result == [0]
    messages = [m for _, m in received]
    assert messages[0] == "READY=1"
    pings = [t for t, m in received if m == "WATCHDOG=1"]
    timeline = " ".join(f"{t - received[0][0]:.1f}:{m}" for t, m in received)
    # 'back' hangs 0.5 s in, is abandoned 1 s later and replaced; the replacement hangs
    # too and stays, since the abandoned one still is stuck (one per camera). 'front'
    # keeps the pings coming all along (every 0.2 s; WatchdogSec is 0.4 s, a loaded
    # machine gets slack).
    assert len(pings) >= 12, timeline
    assert max(b - a for a, b in itertools.pairwise(pings)) < 1.0, timeline
    assert deadline - pings[-1] < 1.0, timeline
    assert opened.count("back") == 2, opened
    assert "STOPPING=1" in messages
    abandoned = [r.getMessage() for r in caplog.records if "no sign of life" in r.getMessage()]
    assert len(abandoned) == 2 and "still stuck" in abandoned[1], abandoned


@pytest.mark.allow_logged_exceptions
def test_a_crashing_worker_is_restarted_and_pings_continue(
    tmp_path: Path, broker: Broker, notify_socket: socket.socket
) -> None:
    sock = notify_socket
    config = load_config(
        write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[{"id": "front", "url": "rtsp://127.0.0.1:9/x"}],
        )
    )
    opened: list[float] = []

    def open_source(camera: CameraConfig) -> OpenSource:
        @contextmanager
        def opener() -> Iterator[HangingSource]:
            opened.append(time.monotonic())
            if len(opened) == 1:
                raise RuntimeError("a bug in a worker")
            yield HangingSource(threading.Event(), 10**9)

        return opener

    stop = StopEvent()
    app = App(config, open_source=open_source, notifier=Notifier.from_env())
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(app.run(stop)))
    runner.start()
    pings = 0
    deadline = time.monotonic() + 4
    try:
        while time.monotonic() < deadline:
            with suppress(TimeoutError):
                pings += sock.recv(4096) == b"WATCHDOG=1"
    finally:
        stop.set()
        runner.join(10)
    assert result == [0]
    assert len(opened) >= 2  # restarted after the crash
    assert pings >= 10


def test_a_wedged_sub_stream_worker_is_replaced_while_the_main_stream_goes_on(
    tmp_path: Path, broker: Broker, notify_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera with `analysis_url` has two workers; the supervisor watches both."""
    sock = notify_socket
    config = load_config(
        write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {
                    "id": "front",
                    "url": "rtsp://127.0.0.1:9/main",
                    "analysis_url": "rtsp://127.0.0.1:9/sub",
                }
            ],
        )
    )
    release = threading.Event()
    opened: list[str] = []

    def open_main(camera: CameraConfig) -> OpenSource:
        @contextmanager
        def opener() -> Iterator[HangingSource]:
            opened.append("main")
            yield HangingSource(release, 10**9)

        return opener

    def open_sub(camera: CameraConfig) -> tuple[OpenSource, str]:
        @contextmanager
        def opener() -> Iterator[HangingSource]:
            opened.append("sub")
            yield HangingSource(release, 10)  # hangs 0.5 s into every connection

        return opener, "fake://sub"

    stop = StopEvent()
    app = App(
        config,
        open_source=open_main,
        open_analysis_source=open_sub,
        notifier=Notifier.from_env(),
        tuning=Tuning(wedged_after=1.0),
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(app.run(stop)))
    runner.start()
    pings: list[float] = []
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            with suppress(TimeoutError):
                if sock.recv(4096) == b"WATCHDOG=1":
                    pings.append(time.monotonic())
        threads = sorted(t.name for t in threading.enumerate() if t.name.startswith("camera:"))
    finally:
        stop.set()
        runner.join(10)
        release.set()
    assert result == [0]
    # the sub-stream's worker hung, was abandoned and a new one opened the sub-stream again;
    # the main stream's worker was never replaced and the pings went on
    assert opened.count("sub") == 2 and opened.count("main") == 1, opened
    assert threads == ["camera:front", "camera:front:sub", "camera:front:sub (abandoned)"]
    assert len(pings) >= 8
    assert max(b - a for a, b in itertools.pairwise(pings)) < 1.0
    stuck = [r.getMessage() for r in caplog.records if "no sign of life" in r.getMessage()]
    assert stuck[0].startswith("camera front: sub-stream worker shows no sign of life"), stuck
    assert "the main stream's pictures are analysed until one returns" in stuck[-1], stuck
