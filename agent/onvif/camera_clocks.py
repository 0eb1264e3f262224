"""Each ONVIF camera's clock against the agent's: measured at start and every
MEASURE_EVERY_S by one small thread (`camera-clocks`), reported in health (`camera_clock`,
problem `clock_drift`) and kept with the footage for evidence packages.

A camera burns its own time into the picture, and footage is judged by it: a court that
sees 14:02 in the picture and 14:03 in the package asks which is right. The agent's clock
is the reference, so a reading counts only while the agent's clock is synchronised;
otherwise the camera's clock is reported as unmeasured rather than measured against an
unknown. One thread for all cameras, apart from their workers: a device that does not
answer costs at most CLOCK_TIMEOUT_S of this thread, never a camera's stream or the
watchdog.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.clock import ClockState
from agent.config import redact_url
from agent.errors import OnvifBadAnswer, OnvifError
from contract.timestamps import rfc3339

if TYPE_CHECKING:
    from agent.onvif.device import ClockMeasure

log = logging.getLogger(__name__)

# How often each camera's clock is read: a camera's quartz drifts a second or two a day,
# so ten minutes sees a drift long before it matters, for one small request per camera.
MEASURE_EVERY_S = 600.0
# A reading that failed is tried again this soon (a camera still booting, a lost packet),
# not only at the next MEASURE_EVERY_S.
RETRY_AFTER_S = 60.0
# A reading older than this many intervals no longer says what the camera's clock shows
# now: it is reported as stale and raises no `clock_drift`.
STALE_AFTER_INTERVALS = 2.5
# Where the readings come from (health `camera_clock.source`, the package's `clocks`).
SOURCE_ONVIF = "onvif"
SOURCE_RTCP = "rtcp"  # the stream's RTCP sender reports (agent/streams/rtcp_clock.py)
# A stream's reading is no longer what its camera shows once it is this old (the stream
# gives one every 10 s while it runs).
RTCP_STALE_S = 60.0
# An RTCP reading's uncertainty: the camera's encoder and the network delay a packet by
# tens of milliseconds (0.07 s measured on one host), and how a camera maps its media
# clock to its wall clock is its own business.
RTCP_UNCERTAINTY_S = 0.5
# Why the last attempt gave no reading (health `camera_clock.error`).
NO_ANSWER = "no_answer"
BAD_ANSWER = "bad_answer"  # it answered, but with no valid UTC date and time
IMPLAUSIBLE = "implausible_time"  # a real date, but further off than a clock drifts
AGENT_UNSYNCED = "agent_clock_unsynced"
# Further off than this, a camera's clock has not drifted: it was never set, or lost its
# time in a power cut (cameras restart at 1970-01-01 or 2000-01-01), or it says nonsense
# (9999). A quartz drifts seconds a day and a wrong time zone setting is at most 14 h, so
# a day separates the two. Such an offset is no measure of anything and is not reported
# or kept with the footage; the clock is `clock_drift` all the same, as it must be set.
IMPLAUSIBLE_OFFSET_S = 86_400.0
# Offsets are reported to the millisecond: the round trip makes them no finer.
_DIGITS = 3


@dataclass(frozen=True)
class CameraClockReading:
    """One reading of a camera's clock, as kept with its footage."""

    camera: str
    at: dt.datetime  # the agent's (synchronised) clock
    offset_s: float  # the camera's UTC time minus the agent's
    uncertainty_s: float
    source: str = SOURCE_ONVIF


def _measure_clock(url: str) -> ClockMeasure:
    """agent.onvif.device.measure_clock, imported at the first reading: the ONVIF client
    (zeep, lxml, aiohttp) is about 21 MB of resident memory, which took the 8-camera agent
    over its 150 MB target when every agent loaded it, ONVIF cameras or not."""
    from agent.onvif.device import measure_clock

    return measure_clock(url)


def _said_time(offset_s: float) -> str:
    """The time a clock `offset_s` off ours shows now, for a log line; "?" past year 9999."""
    try:
        return rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s), "seconds")
    except (OverflowError, ValueError):
        return "?"


@dataclass
class _Camera:
    url: str
    reading: CameraClockReading | None = None
    read_mono: float = float("-inf")  # when `reading` was taken, monotonic
    error: str | None = None  # why the last attempt gave none
    due: float = float("-inf")  # monotonic time of the next attempt


class CameraClocks:
    """The cameras' clock readings; `start(stop)` runs the thread that takes them."""

    def __init__(
        self,
        devices: Mapping[str, str],
        *,
        clock: Callable[[], ClockState],
        drift_limit: float,
        every: float = MEASURE_EVERY_S,
        on_reading: Callable[[CameraClockReading], None] | None = None,
        measure: Callable[[str], ClockMeasure] | None = None,
    ) -> None:
        self._cameras = {camera: _Camera(url) for camera, url in devices.items()}
        self._clock = clock
        self._limit = drift_limit
        self._every = every
        self._retry = min(RETRY_AFTER_S, every)
        self._on_reading = on_reading
        self._measure = measure if measure is not None else _measure_clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Readings from the cameras' streams (RTCP), by camera: kept for every camera
        # whose stream carries sender reports; reported where ONVIF gives none.
        self._rtcp: dict[str, _Camera] = {}
        self._rtcp_kept: dict[str, float] = {}  # monotonic: when one was last kept

    def start(self, stop: threading.Event) -> None:
        if not self._cameras:
            return
        self._thread = threading.Thread(
            target=self._run, args=(stop,), name="camera-clocks", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the thread; it may be inside one device's CLOCK_TIMEOUT_S, and is a
        daemon thread, so a stop does not wait that out."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                for camera, state in self._cameras.items():
                    if stop.is_set():
                        return
                    if time.monotonic() >= state.due:
                        self.measure_now(camera)
                next_due = min(state.due for state in self._cameras.values())
                stop.wait(max(0.0, next_due - time.monotonic()))
        except Exception:
            log.exception("camera clocks: the thread ended; cameras' clocks are not read")

    def measure_now(self, camera: str) -> None:
        """Read one camera's clock now (the thread calls this when it is due)."""
        state = self._cameras[camera]
        synced = self._clock().synced
        reading: CameraClockReading | None = None
        error: str | None = None
        try:
            measured = self._measure(state.url)
        except OnvifError as exc:
            error = BAD_ANSWER if isinstance(exc, OnvifBadAnswer) else NO_ANSWER
            if state.error != error:
                log.warning(
                    "camera %s: its clock cannot be read from %s: %s",
                    camera,
                    redact_url(state.url),
                    exc,
                )
        else:
            if synced and abs(measured.offset_s) > IMPLAUSIBLE_OFFSET_S:
                error = IMPLAUSIBLE
                if state.error != IMPLAUSIBLE:
                    said = measured.said.strftime("%Y-%m-%dT%H:%M:%SZ") if measured.said else "?"
                    log.warning(
                        "camera %s: its clock says %s, more than a day off: it is not set "
                        "(after a power cut?); set it to take its time from NTP "
                        "(docs/onvif.md)",
                        camera,
                        said,
                    )
            elif synced:
                reading = CameraClockReading(
                    camera,
                    measured.at,
                    round(measured.offset_s, _DIGITS),
                    round(measured.uncertainty_s, _DIGITS),
                )
            else:
                error = AGENT_UNSYNCED
        now = time.monotonic()
        with self._lock:
            state.error = error
            # A clock that is not set answered all the same: asked again as a good one is.
            answered = error is None or error == IMPLAUSIBLE
            state.due = now + (self._every if answered else self._retry)
            if reading is not None:
                state.reading, state.read_mono = reading, now
        if reading is not None:
            self._said(reading)
            if self._on_reading is not None:
                self._on_reading(reading)

    def rtcp(self, camera: str, offset_s: float) -> None:
        """A reading of `camera`'s clock from its stream's RTCP sender reports (called by
        its worker's thread). Kept with the footage at most once per reading interval."""
        now = time.monotonic()
        reading: CameraClockReading | None = None
        error: str | None = None
        if not self._clock().synced:
            error = AGENT_UNSYNCED
        elif abs(offset_s) > IMPLAUSIBLE_OFFSET_S:
            error = IMPLAUSIBLE
        else:
            reading = CameraClockReading(
                camera,
                dt.datetime.now(dt.UTC),
                round(offset_s, _DIGITS),
                RTCP_UNCERTAINTY_S,
                SOURCE_RTCP,
            )
        with self._lock:
            state = self._rtcp.setdefault(camera, _Camera(""))
            if error == IMPLAUSIBLE and state.error != IMPLAUSIBLE:
                log.warning(
                    "camera %s: its stream's sender reports say %s, more than a day off: its "
                    "clock is not set (after a power cut?); set it to take its time from NTP "
                    "(docs/onvif.md)",
                    camera,
                    _said_time(offset_s),
                )
            state.error = error
            if reading is not None:
                if state.reading is None:
                    self._said(reading)
                state.reading, state.read_mono = reading, now
            keep = reading is not None and now - self._rtcp_kept.get(camera, -1e18) >= self._every
            if keep:
                self._rtcp_kept[camera] = now
        if keep and reading is not None and self._on_reading is not None:
            self._on_reading(reading)

    def _said(self, reading: CameraClockReading) -> None:
        if abs(reading.offset_s) > self._limit:
            log.warning(
                "camera %s: its clock is %+.1f s off the agent's (more than %g s); set it "
                "to take its time from NTP (docs/onvif.md)",
                reading.camera,
                reading.offset_s,
                self._limit,
            )

    def report(self, camera: str) -> tuple[dict[str, object] | None, tuple[str, ...]]:
        """The health `camera_clock` object and its problem (`clock_drift`); (None, ())
        for a camera whose clock is not read (no `onvif`, no RTCP sender reports)."""
        state, source, stale_after = self._reported(camera)
        if state is None:
            return None, ()
        with self._lock:
            reading, read_mono, error = state.reading, state.read_mono, state.error
        fresh = time.monotonic() - read_mono <= stale_after
        body: dict[str, object] = {
            "source": source,
            "offset_s": reading.offset_s if reading else None,
            "uncertainty_s": reading.uncertainty_s if reading else None,
            "measured_at": rfc3339(reading.at) if reading else None,
            "stale": reading is None or not fresh or error is not None,
            "error": error,
        }
        drift = error == IMPLAUSIBLE or (
            reading is not None and fresh and abs(reading.offset_s) > self._limit
        )
        return body, ("clock_drift",) if drift else ()

    def _reported(self, camera: str) -> tuple[_Camera | None, str, float]:
        """Which reading health reports: the ONVIF device's while it gives one (or says
        its clock is not set), since it answers with its clock directly; else the
        stream's RTCP sender reports', which pass through the encoder's mapping of its
        media clock; else the ONVIF device's failure. With its source and age limit."""
        onvif = self._cameras.get(camera)
        rtcp = self._rtcp.get(camera)
        onvif_stale = self._every * STALE_AFTER_INTERVALS
        with self._lock:
            onvif_good = onvif is not None and (
                onvif.error == IMPLAUSIBLE
                or (
                    onvif.error is None
                    and onvif.reading is not None
                    and time.monotonic() - onvif.read_mono <= onvif_stale
                )
            )
        if onvif is not None and (onvif_good or rtcp is None):
            return onvif, SOURCE_ONVIF, onvif_stale
        return rtcp, SOURCE_RTCP, RTCP_STALE_S

    def latest(self) -> dict[str, CameraClockReading]:
        """The last reported reading of each camera that has one (the birth message's)."""
        out: dict[str, CameraClockReading] = {}
        for camera in {*self._cameras, *self._rtcp}:
            state = self._reported(camera)[0]
            reading = None if state is None else state.reading
            if reading is not None:
                out[camera] = reading
        return out
