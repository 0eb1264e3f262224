"""The search at a moment, end to end: a real agent with a simulated RTSP camera, a real
mosquitto, the ingest worker, PostgreSQL and the search over HTTP. The camera is covered
and uncovered, then loses its stream for a while; the search then says what it was like at
each moment, as an officer would read it afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from agent.config import BrokerConfig
from contract.timestamps import rfc3339_epoch
from registry.config import ServerConfig
from registry.db.engine import open_engine
from registry.db.schema import camera_intervals, cameras, metadata
from registry.ingest.intervals import KIND_GAP, STATUS_CODES
from registry.ingest.service import IngestService
from registry.police.search import destination
from registry.web import auth
from registry.web.auth import Role
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.registry_web import RegistryWeb, registry_web, server_config
from tests.support.rtsp import RtspCamera

CAMERA = (52.9925, 6.5649)  # looking south, 90° wide, 25 m
# The agent's own 640-pixel picture over 90°: identify 1.3 m, recognise 2.6 m,
# observe 5.2 m, detect 12.8 m (agent/quality/dori.py).
DORI_POINTS = [(1.0, "identify"), (2.0, "recognise"), (4.0, "observe"), (10.0, "detect")]
INTERVAL_S = 2.0  # the simulated camera's keyframe spacing
WAIT_S = 60.0


@pytest.fixture
def web(tmp_path: Path, postgres_url: str) -> Iterator[RegistryWeb]:
    engine = open_engine(postgres_url)
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()
    with registry_web(server_config(tmp_path / "registry"), database_url=postgres_url) as web:
        web.add_user("piet", Role.POLICE)
        yield web


@pytest.fixture
def ingest(broker: Broker, postgres_url: str, web: RegistryWeb) -> Iterator[IngestService]:
    config = ServerConfig(mqtt=BrokerConfig(broker=broker.url), database=postgres_url)
    service = IngestService(config, web.engine, client_id="ingest-search-at")
    stop = threading.Event()
    service.start(stop)
    yield service
    stop.set()
    service.join()


def iso(epoch: float) -> str:
    text = rfc3339_epoch(epoch, "milliseconds")
    assert text is not None
    return text


class Scene:
    """One agent recording one simulated camera, and the officer's view of the registry."""

    def __init__(
        self, broker: Broker, camera: RtspCamera, tmp_path: Path, web: RegistryWeb, segment_s: int
    ) -> None:
        front = {
            "id": "front",
            "url": camera.url,
            "location": {"lat": CAMERA[0], "lon": CAMERA[1], "bearing_deg": 180, "fov_deg": 90},
            "expect": {"min_fps": 8, "min_width": 640},
            "analysis_interval": f"{INTERVAL_S:g}s",
            "recording": {"mode": "record", "segment": f"{segment_s}s", "retention": "7d"},
        }
        (tmp_path / "agent").mkdir()
        config = write_config(
            tmp_path / "agent" / "config.yaml", broker_url=broker.url, cameras=[front]
        )
        self.agent = AgentProcess(config).start()
        self.web = web
        self.police = {"Authorization": "Bearer " + auth.add_api_token(web.engine, "piet", "t")}

    def row(self) -> Any:
        with self.web.engine.connect() as db:
            return db.execute(select(cameras)).one_or_none()

    def wait_state(self, status: str, what: str, timeout: float = WAIT_S) -> Any:
        def check() -> Any:
            r = self.row()
            return r if r is not None and r.state_code == STATUS_CODES[status] else None

        return eventually(check, what, timeout, 0.3, context=lambda: self.agent.log)

    def search(self, meters: float, **times: float) -> dict[str, Any]:
        """The camera as the search at `at` (or `at` to `until`) shows it, `meters` south."""
        lat, lon = destination(*CAMERA, 180.0, meters)
        body = {"lat": lat, "lon": lon, "reason": "case 2026-9"}
        body.update({name: iso(value) for name, value in times.items()})
        answer = requests.post(
            self.web.url + "/api/v1/search", json=body, headers=self.police, timeout=10
        )
        assert answer.status_code == 200, answer.text
        found = [("cameras", c) for c in answer.json()["cameras"]]
        found += [("excluded", c) for c in answer.json()["excluded"]]
        [(listed, match)] = found
        return {**match, "listed": listed}


def test_covered_between_t1_and_t2_and_the_dori_level_with_a_real_agent(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
    web: RegistryWeb,
    ingest: IngestService,
) -> None:
    camera = make_rtsp_camera(scene="synthetic", fps=10)
    scene = Scene(broker, camera, tmp_path, web, segment_s=2)
    agents.append(scene.agent)
    judged_ok = scene.wait_state("ok", "the camera ok and judged")
    camera.inject("covered")
    t1 = scene.wait_state("failed", "covered reported", 30).state_start
    time.sleep(3 * INTERVAL_S)  # the camera stays covered a while, on purpose
    camera.inject("clear")
    t2 = scene.wait_state("ok", "uncovered reported", 30).state_start

    # covered between T1 and T2: unusable inside, usable outside
    inside = scene.search(5, at=(t1 + t2) / 2)
    assert inside["listed"] == "excluded", inside
    assert inside["state"] == "failed" and "covered" in inside["problems"]
    before = scene.search(5, at=(judged_ok.state_start + t1) / 2)
    after = scene.search(5, at=t2 + 1)
    for outside in (before, after):
        assert outside["listed"] == "cameras" and outside["state"] == "usable", outside
    # the DORI level at the point, at four distances
    for meters, level in DORI_POINTS:
        assert scene.search(meters, at=t2 + 1)["dori_level"] == level, meters


def test_a_recording_gap_and_the_live_recording_with_a_real_agent(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
    web: RegistryWeb,
    ingest: IngestService,
) -> None:
    camera = make_rtsp_camera(scene="synthetic", fps=10)
    # Segments longer than 30 s, as by default (60 s): a search for 30 s ago can be past the
    # newest segment the agent has closed.
    segment_s = 40
    scene = Scene(broker, camera, tmp_path, web, segment_s)
    agents.append(scene.agent)
    scene.wait_state("ok", "the camera ok and judged")
    # the stream is lost for a while: a recording gap
    camera.stop()
    lost = time.time()
    scene.wait_state("offline", "the loss reported", 30)
    time.sleep(4.0)  # the outage lasts a while, on purpose
    camera.start()
    back = scene.wait_state("ok", "the stream back")

    # 30 s ago, after the stream came back and past the newest closed segment
    def past_newest() -> Any:
        r = scene.row()
        moment = time.time() - 30
        after_loss = moment > back.state_start + 2 and r.footage_newest is not None
        return moment if after_loss and r.footage_newest < moment else None

    moment = eventually(past_newest, "a moment past the newest segment", segment_s + 10, 0.3)
    recent = scene.search(5, at=moment)
    assert recent["listed"] == "cameras", recent
    assert (recent["state"], recent["footage"]) == ("usable", "live")

    # once the first segment after the loss is reported, the gap is placed
    def gap() -> Any:
        with web.engine.connect() as db:
            rows = db.execute(
                select(camera_intervals).where(camera_intervals.c.kind == KIND_GAP)
            ).all()
        return rows or None

    [gap_row] = eventually(gap, "the recording gap", segment_s + 10, 0.5)
    assert gap_row.start_ts <= lost + 1 and gap_row.end_ts >= back.state_start - 1
    in_gap = scene.search(5, at=lost + 2)
    assert in_gap["listed"] == "excluded", in_gap
    assert in_gap["footage"] == "gap"
    assert scene.search(5, at=time.time() - 5)["listed"] == "cameras"
