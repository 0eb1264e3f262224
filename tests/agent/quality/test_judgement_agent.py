"""No premature "ok" (issue 16): the agent as a process, a real mosquitto and a live RTSP
camera; what the registry is told about a camera whose picture is not judged yet."""

from __future__ import annotations

from pathlib import Path

from agent.quality.assess import JUDGE_SAMPLES
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.rtsp import RtspCamera
from tests.support.schemas import assert_topic_valid

HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"


def _camera(url: str) -> dict[str, object]:
    return {"id": "front", "url": url, "analysis_interval": "1s"}


def test_a_fresh_camera_is_pending_until_judged_and_its_reference_survives_a_restart(
    broker: Broker, rtsp_camera: RtspCamera, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    """The first reports of a new camera say ok with judgement pending (too few pictures,
    no reference view yet); once it has both it says judged, at once rather than at the
    next interval. After a restart the reference view is still there: pending only until
    enough pictures were analysed again."""
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[_camera(rtsp_camera.url)],
        registry={"health_interval": "60s"},
    )
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        first = watch.wait_for(HEALTH, timeout=20).json()
        judged = watch.wait_for(
            lambda m: m.json().get("judgement", {}).get("state") == "judged", timeout=40
        ).json()
        reports = [m.json() for m in watch.messages(HEALTH)]
        for message in watch.messages(HEALTH):
            assert_topic_valid(message.topic, message.payload)
    assert first["status"] == "ok", agent.log[-2000:]
    assert first["judgement"]["state"] == "pending"
    assert "reference" in first["judgement"]["waiting_for"]
    assert first["judgement"]["samples"] < first["judgement"]["samples_needed"] == JUDGE_SAMPLES
    assert first["accepted"] == []
    # Every report before the judged one said pending; with a 60 s interval, the judged
    # one came as soon as the picture was judged, not a minute later.
    before = reports[: reports.index(judged)]
    assert before and all(r["judgement"]["state"] == "pending" for r in before)
    assert judged["status"] == "ok" and judged["judgement"]["waiting_for"] == []
    assert judged["judgement"]["lighting"] == "colour"
    assert judged["seq"] - first["seq"] < 30, "the judged report waited for the interval"

    code, _ = agent.terminate()
    assert code == 0
    with Watcher.for_broker(broker, HEALTH) as watch:
        watch.wait_for(HEALTH, timeout=5)  # the retained one of the run before
        watch.clear()
        again = AgentProcess(config).start()
        agents.append(again)
        first_again = watch.wait_for(HEALTH, timeout=20).json()
        judged_again = watch.wait_for(
            lambda m: m.json().get("judgement", {}).get("state") == "judged", timeout=20
        ).json()
    assert first_again["bdseq"] == 2
    assert first_again["judgement"]["state"] == "pending"
    # Judged again without a new reference view: the stored one served (the log holds
    # both runs). The very first picture of a new session can be black, which counts as
    # infrared, for which there is no reference: `first_again` may wait for one.
    assert judged_again["judgement"]["waiting_for"] == []
    assert again.log.count("colour reference view taken") == 1, again.log
