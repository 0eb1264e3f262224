"""End to end: a real agent process with a live RTSP camera, a real mosquitto, and the
ingest worker; the camera shows up in the registry database as a user would look for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from agent.config import BrokerConfig
from registry.config import ServerConfig
from registry.db.schema import agents as agents_table
from registry.db.schema import cameras
from registry.ingest.service import IngestService
from registry.police.search import find_cameras
from registry.web.camera_list import camera_rows
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.rtsp import RtspCamera

WAIT_S = 40.0


@pytest.fixture
def ingest(broker: Broker, db_url: str, engine: Engine) -> Iterator[IngestService]:
    config = ServerConfig(mqtt=BrokerConfig(broker=broker.url), database=db_url)
    service = IngestService(config, engine, client_id="ingest-e2e")
    stop = threading.Event()
    service.start(stop)
    yield service
    stop.set()
    service.join()


def test_a_real_agents_camera_appears_in_the_registry(
    broker: Broker,
    rtsp_camera: RtspCamera,
    tmp_path: Path,
    agents: list[AgentProcess],
    ingest: IngestService,
    engine: Engine,
) -> None:
    camera = {
        "id": "front",
        "name": "Voordeur",
        "url": rtsp_camera.url,
        "location": {
            "lat": 52.9925,
            "lon": 6.5649,
            "bearing_deg": 180,
            "fov_deg": 90,
            "range_m": 25,
        },
        "analysis_interval": "1s",
        "recording": {"mode": "record", "segment": "2s", "retention": "7d"},
    }
    config = write_config(tmp_path / "config.yaml", broker_url=broker.url, cameras=[camera])
    agent = AgentProcess(config).start()
    agents.append(agent)

    def reported() -> Any:
        with engine.connect() as connection:
            row = connection.execute(select(cameras)).one_or_none()
        ready = row is not None and row.status == "ok" and row.footage_newest is not None
        return row if ready else None

    row = eventually(reported, "the camera ok with its footage in the registry", WAIT_S, 0.5)
    assert (row.agent_id, row.camera_id, row.name) == ("shop-42", "front", "Voordeur")
    assert (row.lat, row.lon, row.bearing_deg, row.fov_deg, row.range_m) == (
        52.9925,
        6.5649,
        180,
        90,
        25,
    )
    assert row.status == "ok", (row.status, row.problems_json, agent.log[-3000:])
    assert row.footage_oldest is not None and row.footage_newest is not None
    assert row.footage_oldest <= row.footage_newest <= time.time() + 5
    assert row.dori_json is not None  # the birth after the stream's width was known
    assert row.missing == 0 and row.received >= 1

    code, _ = agent.terminate()
    assert code == 0

    def shut_down() -> bool:
        with engine.connect() as connection:
            state = connection.execute(
                select(agents_table.c.state, agents_table.c.offline_reason)
            ).one()
        return tuple(state) == ("offline", "shutdown")

    eventually(shut_down, "the agent's shutdown stored", 10, interval=0.2)


def test_a_camera_not_yet_judged_is_never_shown_as_ok(
    broker: Broker,
    rtsp_camera: RtspCamera,
    tmp_path: Path,
    agents: list[AgentProcess],
    ingest: IngestService,
    engine: Engine,
) -> None:
    """A freshly started camera reports `ok` with its judgement pending: the dashboard's
    list and the police search show it as `pending` until the picture is judged, then
    `ok`; never `ok` before."""
    camera = {
        "id": "front",
        "url": rtsp_camera.url,
        "location": {"lat": 52.9925, "lon": 6.5649, "bearing_deg": 180, "fov_deg": 90},
        "analysis_interval": "1s",
    }
    config = write_config(tmp_path / "config.yaml", broker_url=broker.url, cameras=[camera])
    agents.append(AgentProcess(config).start())
    shown: list[tuple[str, str | None]] = []
    searched: list[str | None] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rows = camera_rows(engine)
        # (the birth makes the row; what it shows counts from the first health report)
        if rows and rows[0]["last_report"] is not None:
            row = rows[0]
            if not shown or shown[-1] != (row["status"], row["judgement"]):
                shown.append((row["status"], row["judgement"]))
            # 10 m south of the camera, in its view; footage not yet known
            found = find_cameras(
                engine, 52.99241, 6.5649, time.time(), include_unknown_footage=True
            )
            searched.extend(match.status for match in found)
            if row["status"] == "ok":
                break
        time.sleep(0.2)
    assert shown and shown[0] == ("pending", "pending"), shown
    assert shown[-1] == ("ok", "judged"), shown
    assert all(status != "ok" for status, judgement in shown if judgement == "pending"), shown
    assert "pending" in searched and set(searched) <= {"pending", "ok"}, searched
