"""Requests for footage the owner's ONVIF recorder holds (recording mode `onvif`), through
the real broker to a running agent: a voluntary request that waits for the owner keeps a
copy of its window at once, so the recorder overwriting it meanwhile costs nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.recording.index import SegmentIndex
from contract.timestamps import rfc3339
from tests.agent.police_requests.test_requests_e2e import REQUESTS, cli, state
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.onvif_recorder import OnvifRecorder, Recording
from tests.support.replay_recorder import ReplayRecorder, record_h264
from tests.support.tokens import Police
from tests.support.tus_server import TusServer

S = timedelta(seconds=1)
HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer(token="bearer-123", checksum=True) as server:
        yield server


def test_a_waiting_request_keeps_its_window_before_the_recorder_loses_it(
    tmp_path: Path, broker: Broker, tus: TusServer, agents: list[AgentProcess]
) -> None:
    police = Police(upload=tus.endpoint)
    began = datetime.now(UTC).replace(microsecond=0) - 65 * S
    replay = ReplayRecorder(record_h264(tmp_path / "nvr.mkv", 60), began).start()
    nvr = OnvifRecorder(
        {"main": replay.url, "sub": replay.url},
        recordings=[Recording("rec-1", "cam-1", began, began + 60 * S, replay.url)],
    )
    nvr.start()
    (tmp_path / "nvr.pass").write_text("onvif-pass")
    clip = tmp_path / "live.mkv"
    record_h264(clip, 4)
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": str(clip),
                "onvif": {"url": nvr.url},
                "username": "onvif",
                "password_file": str(tmp_path / "nvr.pass"),
                "analysis_interval": "2s",
                "recording": {"mode": "onvif", "source": "cam-1"},
            }
        ],
        police={
            "keys": [{"jwk": police.jwk}],
            "upload_allow": [tus.endpoint],
            "max_window": "10m",
            "consent": {"voluntary": "ask"},
        },
    )
    try:
        with Watcher.for_broker(broker, "camreg/#") as watch:
            agent = AgentProcess(config).start()
            agents.append(agent)
            watch.wait_for(
                lambda m: m.topic == HEALTH and bool((m.json().get("footage") or {}).get("oldest")),
                timeout=30,
            )
            window = {"start": rfc3339(began + 20 * S), "end": rfc3339(began + 25 * S)}
            token = police.token(police.claims(jti="vol-nvr", kind="voluntary", window=window))
            watch.publish(REQUESTS, token)
            watch.wait_for(state("vol-nvr", "awaiting_owner"), timeout=15)
            fetched = tmp_path / "footage" / "fetched" / "front"
            eventually(lambda: any(fetched.glob("*.ts")), "a copy of the window while it waits", 20)
            # The recorder overwrites the window (it is gone from the recorder entirely).
            replay.close()
            nvr.recordings.clear()
            approved = cli(config, "requests", "approve", "vol-nvr")
            assert approved.returncode == 0, approved.stderr
            done = watch.wait_for(
                lambda m: state("vol-nvr", "completed")(m) or state("vol-nvr", "failed")(m),
                timeout=30,
            )
            assert done.json()["state"] == "completed", done.json()
            assert agent.terminate()[0] == 0
    finally:
        replay.close()
        nvr.close()
    package = tmp_path / "state" / "evidence" / "vol-nvr"
    manifest = json.loads((package / "manifest.json").read_text())
    [entry] = manifest["files"]
    assert entry["start"] <= window["start"] and entry["end"] >= rfc3339(began + 24 * S)
    index = SegmentIndex(tmp_path / "state" / "footage.sqlite")
    try:
        [copy] = index.segments("front")
        assert copy.sha256 == entry["sha256"]
    finally:
        index.close_db()
