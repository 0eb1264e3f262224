"""The test fixtures are real: a broker that delivers and authenticates, a camera that streams."""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support import REPO_ROOT, eventually
from tests.support.broker import Broker
from tests.support.mqtt_watch import ConnectRefused, Watcher
from tests.support.rtsp import RtspCamera


def _read_video_packets(url: str, count: int) -> tuple[int, int]:
    """Demux `count` H.264 packets from an RTSP URL; returns (packets, keyframes)."""
    packets = keyframes = 0
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5, 5)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.width == 640
        for packet in container.demux(stream):
            if packet.size:
                packets += 1
                keyframes += packet.is_keyframe
            if packets >= count:
                break
    return packets, keyframes


def _decoded_gray(path: Path) -> tuple[list[np.ndarray], av.container.InputContainer]:
    container = av.open(str(path))
    frames = [f.to_ndarray(format="gray") for f in container.decode(container.streams.video[0])]
    return frames, container


# --- broker -------------------------------------------------------------------------------


def test_broker_delivers_retained_message(broker: Broker) -> None:
    assert broker.port != 1883
    with Watcher.for_broker(broker, "nothing/here") as publisher:
        publisher.publish("cameras/front/status", b"online", retain=True)

    with Watcher.for_broker(broker, "cameras/#") as watcher:
        message = watcher.wait_for("cameras/front/status", timeout=2)

    assert (message.payload, message.retain) == (b"online", True)


def test_wait_for_lists_what_arrived_on_timeout(broker: Broker) -> None:
    with Watcher.for_broker(broker) as watcher:
        watcher.publish("cameras/front/status", b'{"state": "online"}')
        watcher.wait_for("cameras/front/status")
        assert watcher.json("cameras/+/status") == {"state": "online"}

        with pytest.raises(AssertionError, match=r"cameras/front/status .*online"):
            watcher.wait_for("cameras/back/status", timeout=0.2)


def test_broker_with_users_checks_passwords(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(users={"agent": "s3cret"})

    with pytest.raises(ConnectRefused, match=r"Not authorized|Bad user name or password"):
        Watcher.for_broker(broker, username="agent", password="wrong").connect()
    with pytest.raises(ConnectRefused):
        Watcher.for_broker(broker).connect()
    with Watcher.for_broker(broker, "t", username="agent", password="s3cret") as watcher:
        watcher.publish("t", b"x")
        assert watcher.wait_for("t").payload == b"x"


def test_broker_acl_limits_topics(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(users={"agent": "pw"}, acl="user agent\ntopic readwrite cameras/#\n")
    with Watcher.for_broker(broker, "#", username="agent", password="pw") as watcher:
        watcher.publish("elsewhere", b"dropped")
        watcher.publish("cameras/front", b"kept")
        watcher.wait_for("cameras/front")
        assert [m.topic for m in watcher.messages()] == ["cameras/front"]


def test_tls_broker_accepts_client_with_ca(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(tls=True)
    assert broker.url == f"mqtts://localhost:{broker.port}"

    with Watcher.for_broker(broker, "t") as watcher:
        watcher.publish("t", b"over tls")
        assert watcher.wait_for("t").payload == b"over tls"
    # Trusting only the system CAs, a client must reject the test CA's server cert.
    with pytest.raises(ConnectRefused, match="CERTIFICATE_VERIFY_FAILED"):
        Watcher(broker.host, broker.port, tls=True).connect()


def test_client_cert_broker_rejects_expired_cert(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(tls=True, require_client_cert=True)

    with Watcher.for_broker(broker, "t", client_cert=broker.make_client_cert("front")) as w:
        w.publish("t", b"ok")
        w.wait_for("t")
    with pytest.raises(ConnectRefused):
        Watcher.for_broker(
            broker, client_cert=broker.make_client_cert("old", expired=True)
        ).connect()


def test_broker_restart_keeps_port(broker: Broker) -> None:
    port = broker.port
    broker.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    broker.restart()
    assert broker.port == port
    with Watcher.for_broker(broker, "t"):
        pass


# --- RTSP camera --------------------------------------------------------------------------


def test_rtsp_camera_streams_h264(rtsp_camera: RtspCamera) -> None:
    packets, keyframes = _read_video_packets(rtsp_camera.url, 10)

    assert packets >= 10
    assert keyframes >= 1


def test_rtsp_camera_stop_refuses_and_start_streams_again(rtsp_camera: RtspCamera) -> None:
    port = rtsp_camera.port
    rtsp_camera.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    rtsp_camera.start()

    assert rtsp_camera.port == port
    assert _read_video_packets(rtsp_camera.url, 10)[0] >= 10


def test_rtsp_camera_port_taken_exits_2(rtsp_camera: RtspCamera) -> None:
    clash = RtspCamera(port=rtsp_camera.port)
    with pytest.raises(pytest.fail.Exception, match=r"(?s)exited with 2.*already in use"):
        clash.start()


def test_rtsp_camera_basic_auth(make_rtsp_camera: Callable[..., RtspCamera]) -> None:
    camera = make_rtsp_camera(user="admin", password="pw")
    wrong = camera.url.replace("admin:pw@", "admin:nope@")

    with pytest.raises(av.error.HTTPUnauthorizedError):
        av.open(wrong, options={"rtsp_transport": "tcp"}, timeout=(5, 5))
    assert _read_video_packets(camera.url, 1)[0] == 1


def test_missing_mosquitto_fails_not_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.support.broker.MOSQUITTO_CANDIDATES", ())
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(pytest.fail.Exception, match="mosquitto is not installed"):
        Broker()


# --- H.264 files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv"])
def test_write_h264_has_requested_duration_and_fps(
    tmp_h264: Callable[..., Path], name: str
) -> None:
    path = tmp_h264(3, name, fps=10, width=320, height=180, gop=5)

    frames, container = _decoded_gray(path)
    with container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 10
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(3.0, abs=0.1)
    assert len(frames) == 30
    assert frames[0].shape == (180, 320)


def test_write_h264_frozen_frames_are_identical_live_are_not(
    tmp_h264: Callable[..., Path],
) -> None:
    frozen, c1 = _decoded_gray(tmp_h264(2, "frozen.mp4", scene="frozen", gop=5))
    live, c2 = _decoded_gray(tmp_h264(2, "live.mp4", scene="live", gop=5))
    c1.close()
    c2.close()

    assert all(np.array_equal(frozen[0], f) for f in frozen[1:])
    assert not any(np.array_equal(a, b) for a, b in itertools.pairwise(live))


def test_write_h264_is_deterministic(tmp_h264: Callable[..., Path]) -> None:
    first, c1 = _decoded_gray(tmp_h264(1, "a.mp4"))
    second, c2 = _decoded_gray(tmp_h264(1, "b.mp4"))
    c1.close()
    c2.close()

    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


# --- logged exceptions --------------------------------------------------------------------


@pytest.mark.allow_logged_exceptions
def test_logged_exception_is_recorded(logged_exceptions: list[logging.LogRecord]) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("agent.streams.worker").exception("camera front crashed")

    assert [r.getMessage() for r in logged_exceptions] == ["camera front crashed"]


@pytest.mark.allow_logged_exceptions
def test_the_registrys_and_the_contracts_logged_exceptions_are_recorded_too(
    logged_exceptions: list[logging.LogRecord],
) -> None:
    for name in ("registry.ingest.service", "contract.connection"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger(name).exception("%s crashed", name)

    assert [r.name for r in logged_exceptions] == ["registry.ingest.service", "contract.connection"]


# The inner run logs through this process's `agent` logger, so this test sees them too.
@pytest.mark.allow_logged_exceptions
def test_unmarked_logged_exception_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((REPO_ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(
        """
        import logging
        import pytest

        def test_logs_traceback():
            try:
                1 / 0
            except ZeroDivisionError:
                logging.getLogger("agent.mqtt").exception("publish failed")

        def test_logs_error_without_traceback():
            logging.getLogger("agent").error("camera offline")

        @pytest.mark.allow_logged_exceptions
        def test_allowed():
            try:
                1 / 0
            except ZeroDivisionError:
                logging.getLogger("agent").exception("expected")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*agent logged 1 exception*", "*publish failed*"])


def test_a_failed_wait_names_what_and_shows_the_end_of_its_context() -> None:
    log = "started\n" + "x" * 10_000 + "\ncannot open the camera"
    with pytest.raises(pytest.fail.Exception) as failed:
        eventually(lambda: "recording" in log, "recording logged", 0.05, context=lambda: log)
    said = str(failed.value)
    assert said.startswith("not within 0.05 s: recording logged (last seen: False)")
    assert said.endswith("cannot open the camera") and "started" not in said


def test_a_wait_returns_the_first_truthy_value() -> None:
    values = iter([0, None, 7, 8])
    assert eventually(lambda: next(values), "a value", 5, interval=0.001) == 7
