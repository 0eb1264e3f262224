"""`camera-agent run` end to end: a real broker, a real RTSP camera, the agent as a process."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.streams.pacing import READ_BATCH_S
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.registry_proc import wait_for
from tests.support.rtsp import RtspCamera
from tests.support.schemas import assert_topic_valid

PREFIX = "camreg/v1/agents/shop-42"
STATE = f"{PREFIX}/state"
HEALTH = f"{PREFIX}/cameras/front/health"


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def start(broker: Broker, cameras: list[dict[str, Any]], **sections: Any) -> AgentProcess:
        config = write_config(
            tmp_path / "config.yaml", broker_url=broker.url, cameras=cameras, **sections
        )
        agent = AgentProcess(config).start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()


def front(camera: RtspCamera, **extra: Any) -> dict[str, Any]:
    return {
        "id": "front",
        "name": "Voordeur",
        "url": camera.url,
        "location": {
            "lat": 52.9925,
            "lon": 6.5649,
            "bearing_deg": 180,
            "fov_deg": 90,
            "range_m": 25,
        },
        "expect": {"min_fps": 10, "min_width": 640},
        "analysis_interval": "1s",
        **extra,
    }


def health_with(status: str) -> Callable[[Received], bool]:
    return lambda m: m.topic == HEALTH and m.json()["status"] == status


def test_birth_health_seq_sigterm_restart_and_kill_9_of_one_agent(
    broker: Broker, rtsp_camera: RtspCamera, start_agent: Callable[..., AgentProcess]
) -> None:
    """One agent's life, in one run: birth, ok health with the contract fields, seq rising
    every interval; SIGTERM publishes offline (retained) and exits 0 within 5 s; a restart
    comes back with bdseq 2 and seq going on from where it was; kill -9 of it makes the
    broker publish its last will (retained)."""
    with Watcher.for_broker(broker, f"{PREFIX}/#") as watch:
        agent = start_agent(broker, [front(rtsp_camera)])
        birth = watch.wait_for(STATE, timeout=10)
        ok = watch.wait_for(
            lambda m: health_with("ok")(m) and m.json()["stream"]["fps"] is not None, timeout=15
        )
        watch.wait_for(lambda m: m.topic == HEALTH and m.json()["seq"] >= 3, timeout=15)
        code, took = agent.terminate()
        offline = watch.wait_for(
            lambda m: m.topic == STATE and m.json()["state"] == "offline", timeout=5
        )
        before = [m.json()["seq"] for m in watch.messages() if m.topic == HEALTH]
        with Watcher.for_broker(broker, f"{PREFIX}/#") as late:  # both are retained
            retained = late.wait_for(STATE, timeout=5)
            assert retained.retain and retained.json()["state"] == "offline"
            assert late.wait_for(HEALTH, timeout=5).retain
        again = AgentProcess(agent.config).start()
        try:
            watch.wait_for(lambda m: m.topic == HEALTH and m.json()["bdseq"] == 2, timeout=15)
            again.kill()
        finally:
            again.close()
        # kill -9: the broker publishes the last will of the connection that was lost.
        will = watch.wait_for(
            lambda m: m.topic == STATE and (m.json()["state"], m.json()["bdseq"]) == ("offline", 2),
            timeout=10,
        )
        with Watcher.for_broker(broker, STATE) as late:  # retained for whoever looks later
            assert late.wait_for(STATE, timeout=5).json()["state"] == "offline"
        for message in watch.messages():
            assert_topic_valid(message.topic, message.payload)
        seqs = [m.json()["seq"] for m in watch.messages() if m.topic == HEALTH]
    state = birth.json()
    assert state["state"] == "online" and state["agent"] == "shop-42"
    assert state["bdseq"] == 1 and isinstance(state["version"], str)
    assert state["ts"].endswith("Z")
    assert set(state["clock"]) == {"synced", "source"}
    [camera] = state["cameras"]
    assert camera["id"] == "front" and camera["name"] == "Voordeur"
    assert camera["location"] == {
        "lat": 52.9925,
        "lon": 6.5649,
        "bearing_deg": 180,
        "fov_deg": 90,
        "range_m": 25,
    }
    health = ok.json()
    assert health["schema"] == "camreg.health.v1"
    assert (health["agent"], health["camera"], health["bdseq"]) == ("shop-42", "front", 1)
    assert health["problems"] == []
    assert health["stream"]["codec"] == "h264"
    assert (health["stream"]["width"], health["stream"]["height"]) == (640, 360)
    assert health["stream"]["fps"] == pytest.approx(15, abs=1.5)
    assert health["stream"]["bitrate_kbps"] > 50
    assert set(health["footage"]) >= {"oldest", "newest", "gaps", "bytes"}

    assert code == 0
    assert took < 5
    assert offline.json() == {
        "state": "offline",
        "agent": "shop-42",
        "bdseq": 1,
        "reason": "shutdown",
    }
    assert before == list(range(before[0], before[0] + len(before)))
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert will.json() == {
        "state": "offline",
        "agent": "shop-42",
        "bdseq": 2,
        "reason": "connection_lost",
    }


def test_camera_loss_is_offline_within_10_s_and_recovery_is_ok(
    broker: Broker, rtsp_camera: RtspCamera, start_agent: Callable[..., AgentProcess]
) -> None:
    with Watcher.for_broker(broker, HEALTH) as watch:
        start_agent(broker, [front(rtsp_camera)])
        watch.wait_for(health_with("ok"), timeout=15)
        rtsp_camera.stop()
        stopped = time.monotonic()
        offline = watch.wait_for(health_with("offline"), timeout=10, after=stopped)
        assert offline.at - stopped <= 10
        assert offline.json()["problems"] == ["no_signal"]
        rtsp_camera.start()
        watch.wait_for(health_with("ok"), timeout=20, after=offline.at)


def test_a_frozen_camera_is_failed(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    start_agent: Callable[..., AgentProcess],
) -> None:
    camera = make_rtsp_camera(scene="frozen")
    with Watcher.for_broker(broker, HEALTH) as watch:
        start_agent(broker, [front(camera)])
        failed = watch.wait_for(health_with("failed"), timeout=25)
    assert failed.json()["problems"] == ["frozen"], failed.json()
    assert failed.json()["metrics"]["frame_change"] < 0.5


def test_expectations_not_met_are_degraded(
    broker: Broker, rtsp_camera: RtspCamera, start_agent: Callable[..., AgentProcess]
) -> None:
    with Watcher.for_broker(broker, HEALTH) as watch:
        start_agent(broker, [front(rtsp_camera, expect={"min_fps": 25, "min_width": 1920})])
        degraded = watch.wait_for(
            lambda m: m.json()["status"] == "degraded" and len(m.json()["problems"]) == 2,
            timeout=20,
        )
    assert sorted(degraded.json()["problems"]) == ["low_fps", "low_resolution"]


def test_agent_starts_before_its_broker_and_catches_up(
    make_broker: Callable[..., Broker],
    rtsp_camera: RtspCamera,
    start_agent: Callable[..., AgentProcess],
) -> None:
    broker = make_broker()
    broker.stop()
    start_agent(broker, [front(rtsp_camera)])
    time.sleep(3)  # the agent runs a while without its broker
    broker.start()
    with Watcher.for_broker(broker, f"{PREFIX}/#") as watch:
        watch.wait_for(lambda m: m.topic == STATE and m.json()["state"] == "online", timeout=15)
        watch.wait_for(health_with("ok"), timeout=15)


def test_a_broken_config_exits_78_naming_the_key(
    broker: Broker, rtsp_camera: RtspCamera, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent(broker, [{**front(rtsp_camera), "location": {"lat": 123, "lon": 6.5}}])
    assert agent.proc is not None
    assert agent.proc.wait(20) == 78
    assert "cameras[0].location.lat" in agent.log


def test_covering_the_demo_camera_is_failed_within_two_analysis_intervals(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    start_agent: Callable[..., AgentProcess],
) -> None:
    camera = make_rtsp_camera(scene="synthetic", fps=10)
    interval = 2.0  # the simulated camera sends a keyframe every 2 s
    with Watcher.for_broker(broker, HEALTH) as watch:
        # The simulated camera renders its 10 fps in Python, and on a loaded machine sends
        # 9.8-9.9 of them: a min_fps below that keeps low_fps, which is not this test's
        # subject, from holding the camera `degraded` after it is uncovered.
        expect = {"min_fps": 8, "min_width": 640}
        start_agent(broker, [front(camera, analysis_interval=f"{interval:g}s", expect=expect)])
        watch.wait_for(health_with("ok"), timeout=20)
        camera.inject("covered")
        covered_at = time.monotonic()
        failed = watch.wait_for(health_with("failed"), timeout=3 * interval + 5, after=covered_at)
        # two samples to raise it, plus up to one interval until the first covered keyframe,
        # plus the reader's pause when it has caught up with the stream (READ_BATCH_S) and a
        # second for the encoder and a loaded machine (7.0 s was seen against a bound of 7 s)
        assert failed.at - covered_at <= 3 * interval + READ_BATCH_S + 1
        # covered, and nothing else about the picture (low_fps beside it only if the
        # simulated camera fell below even 8 frames a second)
        assert "covered" in failed.json()["problems"]
        assert set(failed.json()["problems"]) <= {"covered", "low_fps"}
        metrics = failed.json()["metrics"]
        assert metrics["detail"] < 0.01 and metrics["contrast"] < 40
        camera.inject("clear")
        watch.wait_for(health_with("ok"), timeout=6 * interval + 5, after=failed.at)


def test_a_camera_that_hangs_with_its_connection_open_is_offline_then_recovers(
    broker: Broker, rtsp_camera: RtspCamera, start_agent: Callable[..., AgentProcess]
) -> None:
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = start_agent(broker, [front(rtsp_camera)])
        watch.wait_for(health_with("ok"), timeout=15)
        rtsp_camera.pause()
        try:
            paused = time.monotonic()
            offline = watch.wait_for(health_with("offline"), timeout=10, after=paused)
            assert offline.json()["problems"] == ["no_signal"]
            # The read times out while the camera still hangs (within about twice the agent's
            # 5 s I/O timeout), and the worker reconnects, not hangs.
            wait_for(
                "the hung read to time out",
                lambda: "camera front: reading" in agent.log or "stream ended" in agent.log,
                20,
                lambda: agent.log,
            )
        finally:
            rtsp_camera.resume()
        watch.wait_for(health_with("ok"), timeout=25, after=offline.at)


def test_sigusr1_prints_every_threads_stack_and_the_agent_goes_on(
    broker: Broker, rtsp_camera: RtspCamera, start_agent: Callable[..., AgentProcess]
) -> None:
    """What an owner or a maintainer does with a hung agent (docs/service.md)."""
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = start_agent(broker, [front(rtsp_camera)])
        watch.wait_for(health_with("ok"), timeout=15)
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGUSR1)
        eventually(
            lambda: 'File "' in agent.log,
            "the threads' stacks in the log",
            10,
            context=lambda: agent.log,
        )
        dumped = time.monotonic()
        assert "Thread 0x" in agent.log and "(most recent call first)" in agent.log, agent.log
        assert "line " in agent.log and "agent/" in agent.log  # our frames, named
        watch.wait_for(health_with("ok"), timeout=10, after=dumped)  # it went on
    assert agent.proc.poll() is None
