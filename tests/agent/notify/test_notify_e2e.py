"""The agent as a process: a camera that fails and recovers reaches a real webhook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agent.notify.receiver import http_receiver
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.rtsp import RtspCamera


def test_a_camera_that_fails_and_recovers_posts_to_the_owners_webhook(
    broker: Broker, rtsp_camera: RtspCamera, agents: list[AgentProcess], tmp_path: Path
) -> None:
    (tmp_path / "hook.token").write_text("tok-e2e\n")
    with http_receiver() as receiver:
        config = write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {
                    "id": "front",
                    "name": "Voordeur",
                    "url": rtsp_camera.url,
                    "expect": {"min_fps": 10, "min_width": 640},
                    "analysis_interval": "1s",
                }
            ],
            agent={"locale": "nl"},
            notifications={
                "webhook": {"url": f"{receiver.url}/camera-hook", "token_file": "hook.token"}
            },
        )
        agent = AgentProcess(config).start()
        agents.append(agent)
        # Stop the camera once the agent has seen it working.
        _wait_for_log(agent, "camera front: ok", timeout=20)
        rtsp_camera.stop()
        failed = receiver.wait_for(lambda p: b"camera_failed" in p.body, timeout=20)
        rtsp_camera.start()
        recovered = receiver.wait_for(lambda p: b"camera_recovered" in p.body, timeout=30)
        assert agent.terminate()[0] == 0
    body = json.loads(failed.body)
    assert failed.headers["authorization"] == "Bearer tok-e2e"
    assert (body["agent"], body["event"], body["locale"]) == ("shop-42", "camera_failed", "nl")
    assert body["title"] == "Camera Voordeur (front) werkt niet"
    assert body["events"][0]["status"] == "offline"
    assert body["events"][0]["problems"] == ["no_signal"]
    assert "er komt geen beeld binnen" in body["message"]
    assert json.loads(recovered.body)["title"] == "Camera Voordeur (front) werkt weer"
    assert "notification 'Camera Voordeur (front) werkt niet' sent by webhook" in agent.log


def _wait_for_log(agent: AgentProcess, text: str, timeout: float) -> None:
    def logged() -> bool:
        if text in agent.log:
            return True
        if agent.proc is not None and agent.proc.poll() is not None:
            pytest.fail(f"{text!r} not in the agent's log:\n{agent.log}")
        return False

    eventually(logged, f"{text!r} in the agent's log", timeout, context=lambda: agent.log)
