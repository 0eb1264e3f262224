"""Opening and reading real sources: H.264 files, an MJPEG HTTP camera, an RTSP camera."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from agent.errors import StreamError
from agent.streams.source import StreamSource
from tests.support.mjpeg import MjpegServer
from tests.support.rtsp import RtspCamera


def test_a_file_is_read_fast_in_stream_time_with_its_facts(tmp_h264: Callable[..., Path]) -> None:
    path = tmp_h264(6, fps=15, width=640, height=360, gop=30)
    started = time.monotonic()
    with StreamSource(str(path), realtime=False) as source:
        facts = source.facts
        packets = list(source.packets(threading.Event()))
    assert time.monotonic() - started < 3  # not paced
    assert (facts.codec, facts.width, facts.height, facts.source) == ("h264", 640, 360, "file")
    assert len(packets) == 90
    assert packets[-1].time == pytest.approx(89 / 15, abs=0.1)
    assert sum(p.keyframe for p in packets) == 3


def test_a_keyframe_decodes_alone_to_its_luma_plane(tmp_h264: Callable[..., Path]) -> None:
    path = tmp_h264(4, fps=15, width=640, height=360, gop=30)
    with StreamSource(str(path), realtime=False) as source:
        keyframes = [p for p in source.packets(threading.Event()) if p.keyframe]
        planes = source.decode_keyframe(keyframes[-1])  # no earlier packets needed
    assert planes is not None and planes.u is not None and planes.v is not None
    assert planes.luma.shape == (360, 640)
    assert planes.u.shape == planes.v.shape == (180, 320)
    assert 30 < planes.luma.mean() < 220


def test_a_looping_file_is_paced_and_wraps_around(tmp_h264: Callable[..., Path]) -> None:
    path = tmp_h264(1, fps=15, width=320, height=240)
    stop = threading.Event()
    started = time.monotonic()
    times: list[float] = []
    with StreamSource(str(path), realtime=True) as source:
        for packet in source.packets(stop):
            times.append(packet.time)
            if len(times) == 36:
                break
    elapsed = time.monotonic() - started
    assert 36 / 15 - 0.6 < elapsed < 36 / 15 + 1.0  # real time, across two loops
    assert times == sorted(times)


def test_a_missing_file_is_a_clear_stream_error(tmp_path: Path) -> None:
    with pytest.raises(StreamError, match="no such file"), StreamSource(str(tmp_path / "x.mp4")):
        pass


def test_an_mjpeg_http_camera_is_read() -> None:
    server = MjpegServer(width=640, height=480, fps=10).start()
    try:
        with StreamSource(server.url) as source:
            facts = source.facts
            packets = []
            for packet in source.packets(threading.Event()):
                packets.append(packet)
                if len(packets) == 5:
                    break
            planes = source.decode_keyframe(packets[-1])
    finally:
        server.stop()
    assert (facts.codec, facts.width, facts.height, facts.source) == ("mjpeg", 640, 480, "http")
    assert all(p.keyframe for p in packets)
    assert planes is not None and planes.luma.shape == (480, 640)


def test_an_rtsp_camera_is_read_over_tcp(rtsp_camera: RtspCamera) -> None:
    with StreamSource(rtsp_camera.url) as source:
        facts = source.facts
        keyframe = None
        for packet in source.packets(threading.Event()):
            if packet.keyframe:
                keyframe = packet
                break
        assert keyframe is not None
        planes = source.decode_keyframe(keyframe)
    assert (facts.codec, facts.source) == ("h264", "rtsp")
    assert planes is not None and planes.luma.shape == (rtsp_camera.height, rtsp_camera.width)


def test_a_refused_rtsp_port_is_a_stream_error_quickly(rtsp_camera: RtspCamera) -> None:
    rtsp_camera.stop()
    started = time.monotonic()
    with pytest.raises(StreamError, match="cannot open"), StreamSource(rtsp_camera.url):
        pass
    assert time.monotonic() - started < 6


def test_a_looped_file_records_across_its_seam(
    tmp_h264: Callable[..., Path], tmp_path: Path
) -> None:
    from agent.recording.index import SegmentIndex
    from agent.recording.recorder import CameraRecorder

    clip = tmp_h264(1, width=160, height=90, fps=10)
    index = SegmentIndex(tmp_path / "index.sqlite")
    recorder = CameraRecorder("demo", tmp_path / "footage", index, 60.0)
    stop = threading.Event()
    with StreamSource(str(clip)) as source:
        recorder.connected(source.video_stream)
        started = time.monotonic()
        times = []
        for packet in source.packets(stop):
            recorder.packet(packet)
            times.append(packet.raw.dts)
            if time.monotonic() - started > 2.5:  # two seams
                break
        recorder.disconnected()
    assert times == sorted(times)  # timestamps run on through the loop
    (segment,) = index.segments("demo")
    assert segment.state == "closed"
    with av.open(str(segment.path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 20
