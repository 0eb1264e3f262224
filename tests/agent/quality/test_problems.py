"""`camera-agent problems accept | unaccept | show`: an owner's "this is normal for this
camera", through the CLI to the running agent (a real process, mosquitto, a synthetic RTSP
camera), kept across a restart, and with no agent running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agent.quality.accepted import ACCEPTED_FILE
from tests.support import REPO_ROOT
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.rtsp import RtspCamera
from tests.support.schemas import assert_topic_valid

PREFIX = "camreg/v1/agents/shop-42"
HEALTH = f"{PREFIX}/cameras/front/health"
AUDIT = f"{PREFIX}/audit"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANG": "C"}
    return subprocess.run(
        [sys.executable, "-m", "agent", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def dark(accepted: bool) -> Callable[[Received], bool]:
    """A health report in which too_dark is raised (False) or left out as accepted (True)."""

    def match(m: Received) -> bool:
        if m.topic != HEALTH:
            return False
        body = m.json()
        if accepted:
            return "too_dark" in body["accepted"] and "too_dark" not in body["problems"]
        return "too_dark" in body["problems"] and body["accepted"] == []

    return match


def test_an_accepted_problem_leaves_status_is_kept_across_a_restart_and_audited(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    camera: RtspCamera = make_rtsp_camera(scene="synthetic", fps=10)
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[{"id": "front", "url": camera.url, "analysis_interval": "2s"}],
    )
    with Watcher.for_broker(broker, f"{PREFIX}/#") as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        watch.wait_for(HEALTH, timeout=20)
        camera.inject("too_dark")
        raised = watch.wait_for(dark(accepted=False), timeout=30)
        assert raised.json()["status"] == "degraded"

        done = cli(config, "problems", "accept", "front", "too_dark")
        assert done.returncode == 0, done.stderr
        assert "too_dark accepted as normal" in done.stdout
        accepted = watch.wait_for(dark(accepted=True), timeout=10, after=raised.at)
        body = accepted.json()
        assert body["status"] == ("degraded" if body["problems"] else "ok"), body
        # refused with why, and nothing changes
        covered = cli(config, "problems", "accept", "front", "covered")
        assert covered.returncode == 64
        assert "not working" in covered.stderr and "cannot be accepted" in covered.stderr
        moved = cli(config, "problems", "accept", "front", "scene_changed")
        assert moved.returncode == 64 and "reference reset" in moved.stderr
        fps = cli(config, "problems", "accept", "front", "low_fps")
        assert fps.returncode == 64 and "expect" in fps.stderr
        other = cli(config, "problems", "accept", "back", "too_dark")
        assert other.returncode == 64 and "no camera 'back'" in other.stderr
        shown = cli(config, "problems", "show")
        assert shown.returncode == 0
        assert "front: accepted as normal:" in shown.stdout and "too_dark" in shown.stdout

        code, _ = agent.terminate()
        assert code == 0
        watch.clear()
        again = AgentProcess(config).start()
        agents.append(again)
        kept = watch.wait_for(
            lambda m: m.topic == HEALTH and m.json()["bdseq"] == 2 and dark(True)(m), timeout=30
        )
        assert "too_dark" not in kept.json()["problems"]

        done = cli(config, "problems", "unaccept", "front", "too_dark")
        assert done.returncode == 0, done.stderr
        watch.wait_for(dark(accepted=False), timeout=10, after=kept.at)
        audit = [m for m in watch.messages() if m.topic == AUDIT]
        for message in watch.messages():
            assert_topic_valid(message.topic, message.payload)
    changes = [json.loads(m.payload) for m in audit]
    assert [(e["event"], e["detail"]) for e in changes] == [
        (
            "problem_acceptance",
            {"camera": "front", "problem": "too_dark", "accepted": False, "via": "cli"},
        )
    ]  # the first run's entry was published before this watch's clear()
    lines = cli(config, "audit", "show")
    assert "you accepted too_dark as normal for this camera" in lines.stdout
    assert "too_dark is no longer accepted as normal" in lines.stdout
    assert cli(config, "audit", "verify").returncode == 0


def test_without_a_daemon_the_state_directory_is_changed_and_a_broken_list_set_aside(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        broker_url="mqtt://127.0.0.1:1",
        cameras=[{"id": "front", "url": "rtsp://127.0.0.1:1/stream"}],
    )
    state = tmp_path / "state"
    done = cli(config, "problems", "accept", "front", "noisy")
    assert done.returncode == 0, done.stderr
    stored = json.loads((state / ACCEPTED_FILE).read_text())
    assert list(stored["cameras"]["front"]) == ["noisy"]
    again = cli(config, "problems", "accept", "front", "noisy")
    assert again.returncode == 0 and "already accepted" in again.stdout
    assert "noisy (since " in cli(config, "problems", "show", "front").stdout

    (state / ACCEPTED_FILE).write_text('{"schema": "camera-agent.accepted-problems.v1", "cam')
    shown = cli(config, "problems", "show")
    assert shown.returncode == 0
    assert "was broken; kept it as accepted-problems.json.corrupt-" in shown.stderr
    assert "front: no problem accepted" in shown.stdout
    assert [p.name for p in state.glob(f"{ACCEPTED_FILE}.corrupt-*")]
    lines = cli(config, "audit", "show").stdout
    assert "you accepted noisy as normal" in lines
    assert "state file accepted-problems.json was broken" in lines
    assert cli(config, "audit", "verify").returncode == 0
