"""Cameras whose packet timestamps are odd keep being recorded (issue 15): every pattern
of tests/support/rtp_camera.py served over real RTSP to the agent as a process, one
camera per pattern, and the segments read back with PyAV."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import av
import pytest

from agent.recording.index import SegmentIndex
from agent.recording.recorder import CameraRecorder
from agent.streams.source import StreamSource
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.rtp_camera import PATTERNS, RtpCamera
from tests.support.schemas import assert_topic_valid
from tests.support.segment_check import segment_facts

HEALTH = "camreg/v1/agents/shop-42/cameras/+/health"
SEGMENT_S = 2
RUN_S = 12.0
# What health must show each camera's repair did (beyond the common: no mux error).
EXPECTED = {
    "out_of_band": "repaired",
    "unstamped_params": "repaired",
    "repeated": "repaired",
    "backwards": "repaired",
    "b_frames": "repaired",
    "restarting_clock": "clock_jumps",
}


@pytest.fixture
def rtp_camera() -> Iterator[RtpCamera]:
    with RtpCamera() as camera:
        yield camera


def test_every_odd_timestamp_pattern_is_recorded_continuously_and_counted(
    tmp_path: Path, broker: Broker, rtp_camera: RtpCamera, agents: list[AgentProcess]
) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": pattern,
                "url": rtp_camera.url(pattern),
                "analysis_interval": "5s",
                "expect": {"min_width": 160},
                "recording": {"mode": "record", "segment": f"{SEGMENT_S}s", "retention": "7d"},
            }
            for pattern in PATTERNS
        ],
    )
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        time.sleep(RUN_S)
        for message in watch.messages():
            assert_topic_valid(message.topic, message.payload)
        reports = [m.json() for m in watch.messages()]
        last = {report["camera"]: report for report in reports}
        stopped = {r["camera"] for r in reports if "recording_stopped" in r["problems"]}
        code, _ = agent.terminate()
    log = agent.log
    assert code == 0, log
    assert "recording stops" not in log, log
    assert not stopped, stopped
    index = SegmentIndex(tmp_path / "state" / "footage.sqlite")
    for pattern in PATTERNS:
        assert rtp_camera.sessions.get(pattern) == 1, (pattern, rtp_camera.sessions)
        packets = last[pattern]["stream"]["packets"]
        assert packets["mux_errors"] == 0, (pattern, packets)
        assert packets["dropped"] >= 1, (pattern, packets)  # each connection's first picture
        if pattern in EXPECTED:
            assert packets[EXPECTED[pattern]] > 0, (pattern, packets)
        # A lone odd stamp is no restarted clock.
        assert (packets["clock_jumps"] > 0) == (pattern == "restarting_clock"), (pattern, packets)
        segments = index.segments(pattern)
        # Keyframes every second from the second one on (FFmpeg's parser gives the first
        # none): over 12 s of 2 s segments, recording that stopped leaves one or two.
        assert len(segments) >= 4, (pattern, segments)
        assert all(s.state == "closed" for s in segments), (pattern, segments)
        for number, segment in enumerate(segments, 1):
            assert segment.end is not None
            wall = (segment.end - segment.start).total_seconds()
            facts = segment_facts(segment.path)
            assert facts.ordered, (pattern, segment.path)
            assert facts.pictures >= 1, (pattern, segment, facts)
            span = facts.span_s
            # The file's own timeline matches the time it covers: a clock jump left in
            # would span hours. (The first segment holds what FFmpeg read while opening
            # the stream, handed over in one burst; the last ends at the agent's stop:
            # their arrival times are blurred.)
            assert span < SEGMENT_S + 1.5, (pattern, segment, span)
            if 1 < number < len(segments):
                assert abs(span - wall) < 1.0, (pattern, segment, span)
                # Every picture that arrived is in it. (The last segment ends at the
                # agent's stop, a few tenths of a second after its start at times: under
                # load, pictures still in flight then are not in it.)
                assert facts.pictures >= 5 * wall, (pattern, segment, facts)


def test_a_packet_the_muxer_refuses_ends_its_segment_and_the_next_keyframe_starts_one(
    tmp_path: Path, tmp_h264: Callable[..., Path]
) -> None:
    """What the repair cannot foresee: a keyframe whose bytes the muxer refuses (FFmpeg's
    H.264 filter rejects them). No camera above produces one any more, so the recorder is
    fed a real file's packets with one keyframe spoiled."""
    clip = tmp_h264(6, fps=10, width=160, height=120, gop=10)
    index = SegmentIndex(tmp_path / "footage.sqlite")
    recorder = CameraRecorder("front", tmp_path / "footage", index, 1.0)
    with StreamSource(str(clip), realtime=False) as source:
        recorder.connected(source.video_stream)
        keyframes = 0
        for packet in source.packets(threading.Event()):
            if packet.keyframe:
                keyframes += 1
                if keyframes == 3:
                    spoiled = av.Packet(b"\x00\x00\x00\x09" + b"\xff" * 64)
                    spoiled.pts, spoiled.dts = packet.raw.pts, packet.raw.dts
                    spoiled.time_base = packet.raw.time_base
                    spoiled.is_keyframe = True
                    packet = replace(packet, raw=spoiled)
            recorder.packet(packet)
            time.sleep(0.001)  # distinct arrival times: segments are named by them
        recorder.disconnected()
    assert recorder.counts.mux_errors == 1, recorder.counts
    segments = index.segments("front")
    # Keyframes at 0..5 s, one segment each; the third was refused and ends partial.
    states = [s.state for s in segments]
    assert states == ["closed", "closed", "partial", "closed", "closed", "closed"], states
    for segment in segments:
        if segment.state == "closed":
            facts = segment_facts(segment.path)
            assert facts.pictures == 10 and facts.ordered, (segment, facts)
    # The refused keyframe's second of footage is missing, and says why.
    gaps = [(g.start, g.end, g.reason) for g in index.gaps("front")]
    assert gaps == [(segments[2].end, segments[3].start, "muxer_refused")], gaps
