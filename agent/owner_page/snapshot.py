"""The current picture of a camera as a JPEG, for the owner page only (never published)."""

from __future__ import annotations

import cv2
import numpy as np

from agent.quality.metrics import Planes

# Wide enough to judge the view on a phone or a laptop, small enough to encode in a few
# milliseconds on a Pi and to send over Wi-Fi without waiting.
SNAPSHOT_WIDTH = 960
JPEG_QUALITY = 80


def jpeg_of(planes: Planes, max_width: int = SNAPSHOT_WIDTH) -> bytes:
    """Luma and (subsampled) chroma planes to a JPEG at most `max_width` wide."""
    luma = planes.luma
    height, width = luma.shape
    scale = min(1.0, max_width / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    y = cv2.resize(luma, size, interpolation=cv2.INTER_AREA) if scale < 1 else luma
    if planes.u is not None and planes.v is not None:
        u = cv2.resize(planes.u, size, interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(planes.v, size, interpolation=cv2.INTER_LINEAR)
        image = cv2.cvtColor(np.dstack([y, v, u]), cv2.COLOR_YCrCb2BGR)
    else:
        image = np.ascontiguousarray(y)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("the picture could not be encoded as JPEG")
    return bytes(encoded.tobytes())
