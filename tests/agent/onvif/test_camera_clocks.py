"""Reading cameras' clocks from the test ONVIF device (real HTTP, real SOAP): the offset,
`clock_drift` beyond the limit, nothing trusted while the agent's own clock is not
synchronised, and a device that stops answering."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.clock import ClockState
from agent.errors import OnvifError
from agent.onvif import measure_clock
from agent.onvif.camera_clocks import CameraClockReading, CameraClocks
from tests.support import eventually
from tests.support.onvif_device import OnvifDevice

SYNCED = ClockState(True, "test")
UNSYNCED = ClockState(False, "none")
LIMIT_S = 10.0


def device(offset_s: float) -> OnvifDevice:
    return OnvifDevice(
        {"main": "rtsp://127.0.0.1:1/main", "sub": "rtsp://127.0.0.1:1/sub"},
        clock_offset=dt.timedelta(seconds=offset_s),
    )


def test_the_offset_is_the_device_clock_minus_ours_within_its_uncertainty() -> None:
    with device(90) as camera:
        measured = measure_clock(camera.url)
    assert 0.5 <= measured.uncertainty_s < 1.5
    assert abs(measured.offset_s - 90) <= measured.uncertainty_s
    assert abs((measured.at - dt.datetime.now(dt.UTC)).total_seconds()) < 5


@pytest.mark.parametrize(
    ("offset_s", "problems"), [(90, ("clock_drift",)), (-75, ("clock_drift",)), (2, ())]
)
def test_a_camera_clock_beyond_the_limit_is_clock_drift(
    offset_s: float, problems: tuple[str, ...]
) -> None:
    kept: list[CameraClockReading] = []
    with device(offset_s) as camera:
        clocks = CameraClocks(
            {"front": camera.url}, clock=lambda: SYNCED, drift_limit=LIMIT_S, on_reading=kept.append
        )
        clocks.measure_now("front")
    body, raised = clocks.report("front")
    assert raised == problems
    assert body is not None and body["stale"] is False and body["error"] is None
    assert body["source"] == "onvif"
    assert abs(float(body["offset_s"]) - offset_s) <= float(body["uncertainty_s"])  # type: ignore[arg-type]
    assert [r.camera for r in kept] == ["front"] and kept[0].offset_s == body["offset_s"]
    assert set(clocks.latest()) == {"front"}
    assert clocks.report("back") == (None, ())  # a camera without `onvif`


def test_nothing_is_trusted_while_the_agent_clock_is_not_synchronised() -> None:
    kept: list[CameraClockReading] = []
    with device(90) as camera:
        clocks = CameraClocks(
            {"front": camera.url},
            clock=lambda: UNSYNCED,
            drift_limit=LIMIT_S,
            on_reading=kept.append,
        )
        clocks.measure_now("front")
    body, raised = clocks.report("front")
    assert raised == () and kept == []
    assert body is not None
    assert (body["offset_s"], body["stale"], body["error"]) == (None, True, "agent_clock_unsynced")


def test_a_device_that_stops_answering_leaves_a_stale_reading_then_no_drift() -> None:
    camera = device(90).start()
    clocks = CameraClocks(
        {"front": camera.url}, clock=lambda: SYNCED, drift_limit=LIMIT_S, every=0.5
    )
    clocks.measure_now("front")
    assert clocks.report("front")[1] == ("clock_drift",)
    camera.close()
    with pytest.raises(OnvifError, match="cannot be reached"):
        measure_clock(camera.url)
    clocks.measure_now("front")
    body, _ = clocks.report("front")
    assert body is not None and body["stale"] is True and body["error"] == "no_answer"
    assert abs(float(body["offset_s"]) - 90) < 2  # type: ignore[arg-type]  # the last reading
    # Once the reading is older than its intervals allow, it raises nothing any more.
    eventually(lambda: clocks.report("front")[1] == (), "clock_drift cleared when stale", 10)


def test_the_onvif_reading_wins_over_the_stream_and_the_stream_stands_in_for_it() -> None:
    """A camera with both: its device's direct answer is reported; while the device gives
    none, its stream's RTCP reading is. A camera without `onvif` has only the stream's."""
    kept: list[CameraClockReading] = []
    camera = device(90).start()
    clocks = CameraClocks(
        {"front": camera.url}, clock=lambda: SYNCED, drift_limit=LIMIT_S, on_reading=kept.append
    )
    try:
        clocks.rtcp("front", 0.2)
        body, raised = clocks.report("front")
        assert body is not None and body["source"] == "rtcp" and raised == ()  # not asked yet
        clocks.measure_now("front")
        body, raised = clocks.report("front")
        assert body is not None and body["source"] == "onvif" and raised == ("clock_drift",)
        assert clocks.latest()["front"].source == "onvif"
    finally:
        camera.close()
    clocks.measure_now("front")  # the device no longer answers
    body, raised = clocks.report("front")
    assert body is not None and (body["source"], body["offset_s"]) == ("rtcp", 0.2)
    clocks.rtcp("back", -30.0)
    body, raised = clocks.report("back")
    assert body is not None and body["source"] == "rtcp" and raised == ("clock_drift",)
    assert [(r.camera, r.source) for r in kept] == [
        ("front", "rtcp"),
        ("front", "onvif"),
        ("back", "rtcp"),
    ]
    # 1970, NTP's zero (1900), past year 9999: a clock not set, never a drift of decades.
    for offset in (-1.7e9, -3.9e9, 1e13):
        clocks.rtcp("back", offset)
        body, raised = clocks.report("back")
        assert body is not None and raised == ("clock_drift",)
        # The last real reading stays, shown stale, as an ONVIF device's does.
        assert (body["error"], body["offset_s"], body["stale"]) == ("implausible_time", -30.0, True)
