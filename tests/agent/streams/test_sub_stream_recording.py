"""The main stream is recorded byte for byte the same whether its keyframes are decoded
(no sub-stream, or the sub-stream lost) or not (the sub-stream serves the pictures)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from agent.quality.assess import Expectations, StreamAssessor
from agent.recording.index import SegmentIndex
from agent.recording.recorder import CameraRecorder
from agent.streams.source import Packet, StreamSource
from agent.streams.worker import GatedSampler, KeyframeSampler, Sampler, pump


class Gate:
    """The sub-stream's route reduced to its answer: main-stream pictures wanted or not."""

    def __init__(self, open_: bool) -> None:
        self.open = open_

    def main_wanted(self, now: float) -> bool:
        return self.open


class Sink:
    def __init__(self, recorder: CameraRecorder) -> None:
        self._recorder = recorder

    def packet(self, packet: Packet) -> None:
        self._recorder.packet(packet)


def record(clip: Path, directory: Path, sampler: Sampler) -> tuple[bytes, int]:
    index = SegmentIndex(directory / "index.sqlite")
    recorder = CameraRecorder("front", directory / "footage", index, 3600.0)
    assessor = StreamAssessor(Expectations(), 0.0)
    with StreamSource(str(clip), realtime=False) as source:
        assessor.connected(0.0, source.facts)
        recorder.connected(source.video_stream)
        pump(source, assessor, sampler, threading.Event(), sink=Sink(recorder))
        recorder.disconnected()
    (segment,) = index.segments("front")
    return segment.path.read_bytes(), assessor.judgement().samples


def test_recording_is_the_same_bytes_with_and_without_decoding(
    tmp_h264: Callable[..., Path], tmp_path: Path
) -> None:
    clip = tmp_h264(6, width=320, height=180, fps=10)
    decoded, pictures = record(clip, tmp_path / "a", KeyframeSampler(1.0))
    gated, none = record(clip, tmp_path / "b", GatedSampler(KeyframeSampler(1.0), Gate(False)))
    fallback, again = record(clip, tmp_path / "c", GatedSampler(KeyframeSampler(1.0), Gate(True)))
    assert pictures >= 3 and none == 0 and again == pictures
    assert len(decoded) > 10_000
    assert gated == decoded and fallback == decoded
