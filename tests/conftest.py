"""Shared fixtures: real broker, RTSP camera and H.264 files; logged exceptions fail tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_proc import AgentProcess
from tests.support.broker import Broker
from tests.support.media import write_h264
from tests.support.rtsp import RtspCamera

pytest_plugins = ["pytester"]

ALLOW_LOGGED_EXCEPTIONS = "allow_logged_exceptions"
# Every logger of ours: a traceback from any of them fails the test.
OUR_LOGGERS = ("agent", "registry", "contract")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ALLOW_LOGGED_EXCEPTIONS}: the test expects our code to log an exception "
        "traceback at ERROR; without it such a log fails the test",
    )
    # A worker thread that dies with an exception is a bug even when the test passes.
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")


# Modules of the longest tests (a minute or more each on 2 cores), which start first.
# pytest-xdist's worksteal gives each worker a contiguous run of the collection and lets
# idle workers take from the end of the others' queues: these modules sort late, so a
# long test began near the end and the session waited for it alone.
LONG_FIRST = (
    "tests/demo/test_demo_flow.py",
    "tests/demo/test_demo_owner.py",
    "tests/whole/test_install.py",
    "tests/agent/quality/test_corpus_diagnosis.py",
    "tests/whole/test_fuzz.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of LONG_FIRST first, in that order; everything else as collected."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        return LONG_FIRST.index(module) if module in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: each module keeps its order


class _ExceptionRecords(logging.Handler):
    """Keeps the ERROR records that carry a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(autouse=True)
def logged_exceptions(request: pytest.FixtureRequest) -> Iterator[list[logging.LogRecord]]:
    """Fail the test if one of OUR_LOGGERS (or a child) logged an exception with a traceback.

    Our code logs tracebacks only for bugs at thread boundaries (`log.exception`), so one
    showing up means something broke even if the test's asserts held. Tests that provoke
    one on purpose use `@pytest.mark.allow_logged_exceptions` and can inspect the records
    this fixture yields.
    """
    handler = _ExceptionRecords()
    loggers = [logging.getLogger(name) for name in OUR_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    if handler.records and request.node.get_closest_marker(ALLOW_LOGGED_EXCEPTIONS) is None:
        formatter = logging.Formatter("%(name)s %(levelname)s: %(message)s")
        details = "\n\n".join(formatter.format(record) for record in handler.records)
        parts = " and ".join(sorted({record.name.split(".")[0] for record in handler.records}))
        pytest.fail(
            f"the {parts} logged {len(handler.records)} exception(s) during the test "
            f"(mark it @pytest.mark.{ALLOW_LOGGED_EXCEPTIONS} if expected):\n{details}",
            pytrace=False,
        )


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Agent processes a test starts (append them); each is stopped at teardown."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.close()


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Factory for started Brokers (`users=`, `acl=`, `tls=`, ...), all stopped at teardown."""
    brokers: list[Broker] = []

    def make(**options: Any) -> Broker:
        broker = Broker(directory=tmp_path / f"broker{len(brokers)}", **options)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.close()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    """A started anonymous mosquitto on a free port."""
    return make_broker()


@pytest.fixture
def make_rtsp_camera() -> Iterator[Callable[..., RtspCamera]]:
    """Factory for started RtspCameras (`scene=`, `fps=`, `width=`, ...), stopped at teardown."""
    cameras: list[RtspCamera] = []

    def make(**options: Any) -> RtspCamera:
        camera = RtspCamera(**options)
        cameras.append(camera)
        camera.start()
        return camera

    yield make
    for camera in cameras:
        camera.close()


@pytest.fixture
def rtsp_camera(make_rtsp_camera: Callable[..., RtspCamera]) -> RtspCamera:
    """A started live 640x360 15 fps simulated camera on a free port."""
    return make_rtsp_camera()


@pytest.fixture
def tmp_h264(tmp_path: Path) -> Callable[..., Path]:
    """Factory: `tmp_h264(seconds, name="clip.mp4", **write_h264 options) -> Path` in tmp_path."""

    def make(seconds: float, name: str = "clip.mp4", **options: Any) -> Path:
        return write_h264(tmp_path / name, seconds, **options)

    return make
