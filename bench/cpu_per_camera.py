"""CPU cost of watching one 1080p H.264 camera: the agent's way against OpenCV decoding every frame.

Both read the same file as fast as they can; CPU seconds per second of video is the
share of one core that a live camera of that kind costs. Run:

    PYTHONPATH=. .venv/bin/python bench/cpu_per_camera.py [--seconds 60] [--bitrate 4000]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from agent.quality.assess import Expectations, StreamAssessor
from agent.streams.source import StreamSource
from agent.streams.worker import KeyframeSampler, pump


def make_clip(path: Path, seconds: int, bitrate_kbps: int, fps: int = 25) -> None:
    """A 1080p clip with motion and sensor-like noise at a camera-like bitrate."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.bit_rate = bitrate_kbps * 1000
        stream.options = {"preset": "veryfast", "g": str(2 * fps), "bf": "0"}
        stream.time_base = Fraction(1, fps)
        base = np.tile(np.linspace(40, 200, 1920, dtype=np.float32), (1080, 1))
        for i in range(seconds * fps):
            grey = base.copy()
            x = (i * 12) % 1800
            grey[400:600, x : x + 120] = 30
            grey += rng.normal(0, 4, grey.shape).astype(np.float32)
            luma = np.clip(grey, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.dstack([luma] * 3), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def agent_way(path: Path, interval: float) -> float:
    """CPU seconds the agent spends: demux every packet, decode one keyframe per interval."""
    assessor = StreamAssessor(Expectations(), started=0.0)
    start = time.process_time()
    with StreamSource(str(path), realtime=False) as source:
        assessor.connected(0.0, source.facts)
        pump(source, assessor, KeyframeSampler(interval), threading.Event())
    return time.process_time() - start


def opencv_decode_all(path: Path) -> float:
    """CPU seconds OpenCV needs to decode every frame (what naive monitors do)."""
    start = time.process_time()
    capture = cv2.VideoCapture(str(path))
    while True:
        ok, _ = capture.read()
        if not ok:
            break
    capture.release()
    return time.process_time() - start


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--bitrate", type=int, default=4000, help="kbit/s")
    parser.add_argument("--interval", type=float, default=10.0, help="analysis interval, s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, args.seconds, args.bitrate)
        agent_cpu = min(agent_way(clip, args.interval) for _ in range(3))
        opencv_cpu = min(opencv_decode_all(clip) for _ in range(3))
    agent_share = 100 * agent_cpu / args.seconds
    opencv_share = 100 * opencv_cpu / args.seconds
    print(f"machine: {cpu_model()}, {platform.machine()}, {os.cpu_count()} cores")
    print(f"clip: 1920x1080 H.264 {args.bitrate} kbit/s, {args.seconds} s, keyframe every 2 s")
    print(f"agent (demux all, 1 keyframe / {args.interval:g} s): {agent_share:.2f} % of one core")
    print(f"OpenCV decode every frame:          {opencv_share:.2f} % of one core")
    print(f"ratio: {opencv_cpu / agent_cpu:.0f}x less CPU")


if __name__ == "__main__":
    main()
