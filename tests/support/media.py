"""Real H.264 files made with PyAV: a live-looking scene or a frozen picture, deterministic."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

Scene = Literal["live", "frozen"]

# Noise amplitude (8-bit levels): clearly visible, like a real sensor, yet far below the
# contrast of the scene so the picture stays recognisable.
NOISE_LEVELS = 6
SEED = 20240611
# Constant quantiser: a frozen picture re-encoded at each keyframe decodes bit-identical,
# which a rate-controlled encode does not guarantee.
CONSTANT_QP = 23
CONTAINER_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}


def _background(width: int, height: int) -> np.ndarray:
    """Colour bars over a vertical gradient: texture for sharpness metrics to see."""
    bars = np.array(
        [
            [235, 235, 235],
            [235, 235, 16],
            [16, 235, 235],
            [16, 235, 16],
            [235, 16, 235],
            [235, 16, 16],
            [16, 16, 235],
        ],
        dtype=np.float32,
    )
    columns = bars[(np.arange(width) * len(bars)) // width]
    shade = np.linspace(1.0, 0.55, height, dtype=np.float32)[:, None, None]
    return np.asarray(columns[None, :, :] * shade, dtype=np.float32)


def _live_frame(base: np.ndarray, index: int, fps: int, noise: np.ndarray) -> np.ndarray:
    """The scene at frame `index` with fresh sensor noise; `noise` is a (height, 3 * width)
    float32 buffer it draws into."""
    height, width, _ = base.shape
    frame = base.copy()
    # A dark square crossing the picture once every 4 s, bouncing vertically.
    side = max(8, height // 5)
    t = index / fps
    x = int((t / 4.0 % 1.0) * (width - side))
    y = int((0.5 + 0.4 * np.sin(2 * np.pi * t / 3.0)) * (height - side))
    frame[y : y + side, x : x + side] = (40, 40, 40)
    # OpenCV draws normals about ten times faster than numpy: most of the time of writing
    # a 720p clip went here. One channel of 3 * width, as `randn` takes one sigma a channel.
    cv2.randn(noise, 0.0, NOISE_LEVELS)  # type: ignore[call-overload]  # scalars work; the stubs want arrays
    frame += noise.reshape(frame.shape)
    np.clip(frame, 0, 255, out=frame)
    return frame.astype(np.uint8)


def write_h264(
    path: Path | str,
    seconds: float,
    fps: int = 15,
    width: int = 640,
    height: int = 360,
    scene: Scene = "live",
    gop: int | None = None,
) -> Path:
    """Encode `seconds` of H.264 (libx264, yuv420p) to an .mp4/.mkv/.mov file and return its path.

    `live` moves a square across colour bars and adds per-frame noise, so no two frames are
    equal; `frozen` repeats one picture. `gop` is the keyframe interval in frames (default
    2 s, like the simulated camera). The same arguments always give the same frames.
    """
    path = Path(path)
    container_format = CONTAINER_FORMATS.get(path.suffix.lower())
    if container_format is None:
        raise ValueError(f"{path.name}: suffix must be one of {sorted(CONTAINER_FORMATS)}")
    if width % 2 or height % 2:
        raise ValueError("yuv420p needs an even width and height")
    frame_count = round(seconds * fps)
    if frame_count < 1:
        raise ValueError(f"{seconds}s at {fps} fps is less than one frame")

    cv2.setRNGSeed(SEED)  # the calling thread's generator: the same frames every time
    noise = np.empty((height, 3 * width), dtype=np.float32)
    base = _background(width, height)
    still = np.asarray(np.clip(base, 0, 255), dtype=np.uint8)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(
            "libx264",
            rate=fps,
            options={"preset": "ultrafast", "qp": str(CONSTANT_QP), "threads": "1"},
        )
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop if gop is not None else 2 * fps
        stream.codec_context.time_base = Fraction(1, fps)
        for index in range(frame_count):
            pixels = still if scene == "frozen" else _live_frame(base, index, fps, noise)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
