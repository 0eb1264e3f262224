"""A camera with a sub-stream (`analysis_url`): analysed on its 640x360 sub-stream,
recorded from its 1920x1080 main stream, and analysed on the main stream while the
sub-stream is gone. Real parts: two RTSP cameras rendering the same street, a broker,
the agent as a process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.rtsp import RtspCamera

HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"
# The simulated camera sends a keyframe every 2 s; one picture per keyframe.
INTERVAL_S = 2.0
SUB = {"stream": "sub", "width": 640, "height": 360, "fallback": False}
MAIN_FALLBACK = {"stream": "main", "width": 1920, "height": 1080, "fallback": True}


def analysed(message: Received) -> Any:
    return (message.json()["stream"] or {}).get("analysed")


def segments(footage: Path) -> list[Path]:
    return sorted(footage.rglob("*.ts"), key=lambda p: p.stat().st_mtime)


def picture_size(segment: Path) -> tuple[int, int]:
    with av.open(str(segment)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def test_the_sub_stream_is_analysed_the_main_stream_recorded_and_main_analysed_without_it(
    tmp_path: Path,
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    agents: list[AgentProcess],
) -> None:
    # The same street twice: rendered small and scaled up for the main stream (rendering
    # it at 1080p costs a core), at its own size for the sub-stream.
    main = make_rtsp_camera(
        scene="synthetic", fps=10, width=1920, height=1080, render_size=(640, 360), path="/main"
    )
    sub = make_rtsp_camera(scene="synthetic", fps=10, width=640, height=360, path="/sub")
    camera = {
        "id": "front",
        "url": main.url,
        "analysis_url": sub.url,
        "analysis_interval": f"{INTERVAL_S:g}s",
        # a loaded test machine renders fewer frames than asked; not what this is about
        "expect": {"min_fps": 2, "min_width": 640},
        "recording": {"segment": "2s"},
    }
    config = write_config(tmp_path / "config.yaml", broker_url=broker.url, cameras=[camera])
    footage = tmp_path / "footage"
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        ok = watch.wait_for(lambda m: m.json()["status"] == "ok" and analysed(m) == SUB, timeout=30)
        stream = ok.json()["stream"]
        assert (stream["width"], stream["height"]) == (1920, 1080)  # the recorded stream

        # Covered on the sub-stream only: the analysed pictures show it.
        sub.inject("covered")
        covered_at = time.monotonic()
        failed = watch.wait_for(
            lambda m: m.json()["status"] == "failed", timeout=4 * INTERVAL_S + 10, after=covered_at
        )
        assert failed.json()["problems"] == ["covered"], failed.json()
        assert analysed(failed) == SUB

        # The sub-stream's camera goes away: the main stream's pictures are analysed, and
        # they are not covered, so the camera is ok again; the recording never stopped.
        sub.stop()
        stopped = time.monotonic()
        back = watch.wait_for(
            lambda m: m.json()["status"] == "ok" and analysed(m) == MAIN_FALLBACK,
            timeout=6 * INTERVAL_S + 15,
            after=stopped,
        )
        # Back again: its pictures are analysed again, the main stream's no longer.
        sub.start()
        watch.wait_for(lambda m: analysed(m) == SUB, timeout=4 * INTERVAL_S + 15, after=back.at)
        # (the watcher checks every health message against docs/schemas on leaving)
    assert back.json()["problems"] == []
    assert "the sub-stream sends no pictures; analysing the main stream" in agent.log
    assert "analysing the sub-stream's pictures again" in agent.log
    eventually(
        lambda: any(p.stat().st_mtime > time.time() - 1 for p in segments(footage)),
        "a segment written after the sub-stream stopped",
        timeout=10,
    )
    # Stopped first, so every segment is closed: while it runs, the next segment is opened
    # (still empty) before the last one's final bytes, so no file is safe to read by age.
    assert agent.terminate()[0] == 0
    recorded = [p for p in segments(footage) if p.stat().st_size > 0]
    assert len(recorded) >= 3
    assert {picture_size(p) for p in recorded} == {(1920, 1080)}
