"""A worker the supervisor abandoned never writes to the recording again (real packets,
real segment files), while its successor records and the time between is a gap."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import av

from agent.recording.index import SegmentIndex
from agent.recording.recorder import CameraRecorder
from agent.streams.source import StreamSource


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.demux(video=0) if _.size)


def test_an_abandoned_owner_records_nothing_more_and_closes_only_its_own_segment(
    tmp_h264: Callable[..., Path], tmp_path: Path
) -> None:
    clip = tmp_h264(2, width=160, height=90, fps=20, gop=5)
    index = SegmentIndex(tmp_path / "index.sqlite")
    recorder = CameraRecorder("front", tmp_path / "footage", index, 60.0)
    stuck, successor = object(), object()
    with StreamSource(str(clip)) as source:
        packets = source.packets(threading.Event())
        recorder.connected(source.video_stream, stuck)
        for _ in range(10):
            recorder.packet(next(packets), stuck)
        recorder.abandon(stuck)
        # The stuck call returns: what it still had in hand goes nowhere, and its late
        # attempt to reconnect does not take the recording back.
        recorder.packet(next(packets), stuck)
        recorder.connected(source.video_stream, stuck)
        recorder.packet(next(packets), stuck)
        recorder.connected(source.video_stream, successor)
        for _ in range(20):
            packet = next(packets)
            recorder.packet(packet, stuck)
            recorder.packet(packet, successor)
        recorder.disconnected(stuck)  # the abandoned worker ends: its own segment closes
        assert [s.state for s in index.segments("front")] == ["partial", "writing"]
        recorder.disconnected(successor)
    first, second = index.segments("front")
    assert frames_in(first.path) == 10
    assert second.state == "closed"
    # The successor starts at its first keyframe: at most one GOP of its 20 is skipped.
    assert 15 <= frames_in(second.path) <= 20
    (gap,) = index.gaps("front")
    assert gap.reason == "no_signal"
    assert first.end is not None and gap.start <= second.start
    assert gap.end == second.start
