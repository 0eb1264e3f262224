"""Opening a camera whose config names its ONVIF device instead of a stream URL: the device
is asked for its main stream's URI (its first highest-resolution media profile) at every
connect, not once, since a firmware update or a reset may move the stream. Without an
`analysis_url`, the camera's sub-stream is asked of the device the same way: its smallest
H.264/H.265 profile at least 320 pixels wide (agent.onvif.analysis_profile), read by the
sub-stream worker (agent/streams/analysis.py) while the main stream is recorded.

A device that cannot be reached, refuses the credentials or gives no usable rtsp:// URI is
a StreamError like a camera that is off: the worker logs it, backs off and asks again.
"""

from __future__ import annotations

import logging

from agent.config import CameraConfig, redact_url
from agent.errors import OnvifError, StreamError, UnreadableStream
from agent.onvif import OnvifNoSubStream, analysis_stream_uri, stream_uri
from agent.streams.source import StreamSource
from agent.streams.worker import OpenSource

log = logging.getLogger(__name__)

# How long asking the device may take: with FFmpeg's open deadlines after it, a connect
# stays well within the supervisor's WEDGED_AFTER_S (30 s) without a sign of life.
STREAM_URI_TIMEOUT_S = 5.0


class NoSubStreamOffered(UnreadableStream):
    """The camera's device has no smaller profile to analyse. Asked again only after the
    longer rest of a stream that gives nothing to read (UNREADABLE_BACKOFF_CAP_S): an
    owner seldom adds a sub-stream, and a camera with one profile would otherwise have
    its device read, and the same warning logged, every 10 s."""


def open_onvif_stream(camera: CameraConfig) -> OpenSource:
    """A factory that asks the camera's ONVIF device for the stream, then opens it."""
    assert camera.onvif is not None
    device_url = camera.onvif.url
    password = camera.password.get_secret_value() if camera.password is not None else None

    def opener() -> StreamSource:
        try:
            uri = stream_uri(device_url, camera.username, password, STREAM_URI_TIMEOUT_S)
            url = camera.onvif_stream_url(uri)
        except OnvifError as exc:
            raise StreamError(f"ONVIF device {redact_url(device_url)}: {exc}") from None
        except ValueError as exc:
            raise StreamError(f"ONVIF device {redact_url(device_url)}: {exc}") from None
        log.info("camera %s: its ONVIF device gives the stream %s", camera.id, redact_url(uri))
        return StreamSource(url, display_url=redact_url(uri), rtsp_transport=camera.rtsp_transport)

    return opener


def open_onvif_analysis_stream(camera: CameraConfig) -> OpenSource:
    """A factory that asks the camera's ONVIF device for its sub-stream, then opens it. A
    device without a smaller profile is a StreamError like a sub-stream that is off: the
    main stream's pictures are analysed (`stream.analysed.fallback`) and it is asked again
    after the backoff, since the owner may add a sub-stream in the camera's settings."""
    assert camera.onvif is not None
    device_url = camera.onvif.url
    password = camera.password.get_secret_value() if camera.password is not None else None

    def opener() -> StreamSource:
        try:
            profile = analysis_stream_uri(
                device_url, camera.username, password, STREAM_URI_TIMEOUT_S
            )
            assert profile.uri is not None  # analysis_stream_uri gives one with a URI
            url = camera.onvif_stream_url(profile.uri)
        except OnvifNoSubStream as exc:
            raise NoSubStreamOffered(f"ONVIF device {redact_url(device_url)}: {exc}") from None
        except (OnvifError, ValueError) as exc:
            raise StreamError(f"ONVIF device {redact_url(device_url)}: {exc}") from None
        shown = redact_url(profile.uri)
        log.info(
            "camera %s: its ONVIF device gives the sub-stream %s (profile %s, %sx%s)",
            camera.id,
            shown,
            profile.token,
            profile.width,
            profile.height,
        )
        return StreamSource(url, display_url=shown, rtsp_transport=camera.rtsp_transport)

    return opener
