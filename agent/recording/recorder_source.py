"""Recording mode `onvif`: the owner's recorder (an NVR speaking ONVIF Profile G) holds the
footage; the agent reads it and never writes, deletes or changes anything there.

Health: what the recorder holds of the camera (its recordings' oldest and newest footage,
and the holes between recordings) is asked every scan and reported in `footage` as the
agent's own recording is. A recorder keeps its files on its own disk, so `bytes` is 0 (the
agent holds none of them) and storage_low is not ours to report; a recorder that cannot be
asked, holds nothing, or whose newest footage is stale while the camera streams, is
recording_stopped.

Evidence: for an accepted request the window is fetched by replay (recorder_fetch.py) into
the agent's storage and indexed, and the ordinary export packs it.

The ONVIF client is imported only when a recorder is asked (agent/onvif's reason).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import CameraConfig, OnvifRecorderSettings
from agent.errors import AgentError
from agent.recording.index import SegmentIndex
from agent.recording.recorder_fetch import FetchError, fetch_window
from contract.timestamps import rfc3339

if TYPE_CHECKING:
    from agent.onvif.recordings import RecorderHoldings

log = logging.getLogger(__name__)

# recording_stopped when the recorder's newest footage is older than this while the camera
# streams: a recorder writes continuously, and its recording list is asked every 30 s.
STALE_AFTER_S = 300.0

ReadHoldings = Callable[[], "RecorderHoldings"]


class RecorderSource:
    """One camera whose footage lives on the owner's ONVIF recorder."""

    def __init__(
        self, camera: CameraConfig, index: SegmentIndex, root: Path, *, now: Callable[[], datetime]
    ) -> None:
        assert isinstance(camera.recording, OnvifRecorderSettings)
        assert camera.onvif is not None  # the config's rule for mode onvif
        self.camera = camera.id
        self.source = camera.recording.source
        self._device = camera.onvif.url
        self._username = camera.username
        self._password = camera.password
        self._index = index
        self._root = root
        self._now = now
        self._lock = threading.Lock()
        self._holdings: RecorderHoldings | None = None
        self._problem: str | None = None
        self._asked = False

    def _secret(self) -> str | None:
        return None if self._password is None else self._password.get_secret_value()

    # -- health -------------------------------------------------------------------------

    def poll(self) -> None:
        """Ask the recorder what it holds of the camera (the scan thread)."""
        from agent.onvif.recordings import read_recordings

        try:
            holdings = read_recordings(self._device, self._username, self._secret(), self.source)
        except AgentError as exc:
            problem = f"the recorder at {self._device} {exc}"
            if problem != self._problem:
                log.warning("camera %s: %s; its footage is not known", self.camera, problem)
            with self._lock:
                self._problem, self._holdings, self._asked = problem, None, True
            return
        if not holdings.spans and self._holdings is None and not self._asked:
            log.warning(
                "camera %s: the recorder at %s holds no recording of source %r",
                self.camera,
                self._device,
                self.source,
            )
        with self._lock:
            if self._problem is not None:
                log.info("camera %s: the recorder answers again", self.camera)
            self._problem, self._holdings, self._asked = None, holdings, True

    def oldest(self) -> datetime | None:
        """Where the recorder's footage of the camera begins (the agent's clock), if known."""
        with self._lock:
            holdings = self._holdings
        if holdings is None or not holdings.spans:
            return None
        return holdings.spans[0].start - timedelta(seconds=holdings.clock_offset_s or 0.0)

    def report(self, receiving: bool) -> tuple[dict[str, object] | None, tuple[str, ...]]:
        """The health `footage` object and the recording's problems."""
        with self._lock:
            holdings, asked = self._holdings, self._asked
        if not asked:
            return None, ()
        footage = None if holdings is None else footage_payload(holdings)
        stopped = holdings is None or not holdings.spans
        if holdings is not None and holdings.spans:
            newest = holdings.spans[-1].end - timedelta(seconds=holdings.clock_offset_s or 0.0)
            stopped = (self._now() - newest).total_seconds() > STALE_AFTER_S
        return footage, ("recording_stopped",) if stopped and receiving else ()

    # -- evidence -------------------------------------------------------------------------

    def fetch(self, start: datetime, end: datetime, stop: threading.Event) -> None:
        """Fetch [start, end) (the agent's clock) from the recorder into the index, unless a
        copy fetched earlier (before a restart) covers it. FetchError says why not."""
        held = [
            s
            for s in self._index.segments(self.camera, start, end)
            if s.state in ("closed", "partial")
        ]
        # A replay ends at the last frame, up to one frame before the window's end.
        if (
            held
            and min(s.start for s in held) <= start
            and max(s.end or s.start for s in held) >= end - timedelta(seconds=1)
        ):
            return
        from agent.onvif.recordings import read_recordings, replay_uri

        try:
            holdings = read_recordings(self._device, self._username, self._secret(), self.source)
            offset = self._offset(start, holdings)
            shift = timedelta(seconds=offset)
            span = holdings.span_at(start + shift, end + shift)
            if span is None:
                raise FetchError(
                    f"camera {self.camera}: the recorder holds nothing of source "
                    f"{self.source!r} between {rfc3339(start)} and {rfc3339(end)}"
                )
            uri = replay_uri(self._device, self._username, self._secret(), span.token)
        except FetchError:
            raise
        except AgentError as exc:
            raise FetchError(f"camera {self.camera}: the recorder {exc}") from None
        fetch_window(
            self._index,
            self.camera,
            uri,
            start,
            end,
            self._root,
            username=self._username,
            password=self._secret(),
            clock_offset_s=offset,
            stop=stop,
        )

    def _offset(self, start: datetime, holdings: RecorderHoldings) -> float:
        """The recorder's clock minus the agent's: the camera clock reading kept nearest
        before the window (to the millisecond), else the recorder's whole-second answer."""
        readings = self._index.clock_readings(self.camera, start, start)
        if readings:
            return readings[0].offset_s
        return holdings.clock_offset_s or 0.0


def footage_payload(holdings: RecorderHoldings) -> dict[str, object] | None:
    """The health `footage` object of what the recorder holds (the agent's clock)."""
    if not holdings.spans:
        return None
    shift = timedelta(seconds=holdings.clock_offset_s or 0.0)
    oldest = holdings.spans[0].start - shift
    newest = max(s.end for s in holdings.spans) - shift
    holes = []
    reach = holdings.spans[0].end
    for span in holdings.spans[1:]:
        if span.start > reach:
            holes.append((span.start - reach).total_seconds())
        reach = max(reach, span.end)
    return {
        "oldest": rfc3339(oldest.astimezone(UTC)),
        "newest": rfc3339(newest.astimezone(UTC)),
        "gaps": {"count": len(holes), "seconds": round(sum(holes), 3)},
        "bytes": 0,
        "retention_days_effective": round((newest - oldest).total_seconds() / 86400, 3),
    }
