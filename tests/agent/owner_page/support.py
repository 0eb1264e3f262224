"""The owner page in-process on real parts: a real RequestDesk (with its thread), request
store, audit log and footage index in a temporary data directory, and camera channels whose
health and picture a test sets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.audit import AUDIT_FILE, AuditLog
from agent.clock import ClockState
from agent.config import AgentConfig
from agent.evidence.upload import Uploader
from agent.i18n import translator
from agent.owner_page.app import OwnerPage, build_app
from agent.owner_page.auth import local_host_names, parse_networks, set_owner_password
from agent.owner_page.view import CameraSource, OwnerSources
from agent.police_requests.delivery import Delivery
from agent.police_requests.desk import RequestDesk
from agent.police_requests.setup import consent_of, policy_of
from agent.police_requests.store import REQUESTS_FILE, RequestStore
from agent.quality.accepted import Acceptance, AcceptedProblems
from agent.quality.assess import Expectations, Health, StreamAssessor, StreamFacts
from agent.quality.metrics import Planes
from agent.recording.index import SegmentIndex
from agent.reporter import CameraChannel
from tests.support import eventually
from tests.support.asgi_server import serve_asgi
from tests.support.tokens import Police

PASSWORD = "correct horse battery"
LOCAL = ("127.0.0.0/8", "::1/128")


def agent_config(data_dir: Path, police: Police, **owner_page: object) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "agent": {"id": "shop-42", "data_dir": str(data_dir)},
            "registry": {"broker": "mqtt://127.0.0.1:1"},
            "clock": {"require_sync": False},
            "police": {"keys": [{"jwk": police.jwk}], "upload_allow": [police.upload]},
            "cameras": [
                {
                    "id": "front",
                    "name": "Voordeur",
                    "url": "rtsp://192.168.1.20/stream1",
                    "location": {"lat": 52.99, "lon": 6.56, "fov_deg": 90, "range_m": 25},
                },
                {"id": "yard", "name": "Yard", "url": "rtsp://192.168.1.21/stream1"},
            ],
            "owner_page": {"enabled": True, **owner_page},
        }
    )


def test_picture(width: int = 640, height: int = 360) -> Planes:
    """Colour bars, as a camera's YUV 4:2:0 planes."""
    luma = np.tile(np.linspace(30, 220, width, dtype=np.uint8), (height, 1))
    u = np.full((height // 2, width // 2), 90, np.uint8)
    v = np.full((height // 2, width // 2), 170, np.uint8)
    return Planes(luma, u, v)


@dataclass
class OwnerPageUnderTest:
    url: str
    config: AgentConfig
    data_dir: Path
    store: RequestStore
    audit: AuditLog
    index: SegmentIndex
    channels: dict[str, CameraChannel]
    police: Police
    desk: RequestDesk

    def submit(self, token: bytes, request_id: str, state: str = "awaiting_owner") -> None:
        self.desk.token_arrived(token)
        eventually(
            lambda: [r.state for r in self.store.all() if r.id == request_id][:1] == [state],
            f"request {request_id} to reach {state}",
            10,
        )


@contextmanager
def owner_page(
    tmp_path: Path,
    allow: Sequence[str] = LOCAL,
    password: str | None = PASSWORD,
    allowed_hosts: Sequence[str] = (),
    *,
    police: Police | None = None,
    device_key: Ed25519PrivateKey | None = None,
    uploader: Uploader | None = None,
) -> Iterator[OwnerPageUnderTest]:
    """`device_key` and `uploader` make the desk export and deliver (else it refuses to
    export without a key); `police` names where its tokens say to upload."""
    police = police or Police()
    data_dir = tmp_path / "state"
    config = agent_config(data_dir, police, allow=list(allow), allowed_hosts=list(allowed_hosts))
    if password is not None:
        set_owner_password(data_dir, password)
    now = datetime.now(UTC)
    index = SegmentIndex(data_dir / "index.sqlite3")
    segment = tmp_path / "front-0001.mp4"
    segment.write_bytes(b"\0" * 2048)
    for offset in (3600, 1800):
        seg = index.begin("front", segment, now - timedelta(seconds=offset))
        index.close(seg, now - timedelta(seconds=offset - 1500), 2_000_000, "0" * 64)
    index.add_gap(
        "front", now - timedelta(seconds=2100), now - timedelta(seconds=1800), "no_signal"
    )
    store = RequestStore(data_dir / REQUESTS_FILE)
    audit = AuditLog(data_dir / AUDIT_FILE)
    desk = RequestDesk(
        agent_id="shop-42",
        policy=policy_of(config),
        consent=consent_of(config),
        store=store,
        index=index,
        audit=audit,
        publish_status=lambda request_id, body, retain: None,
        clock=lambda: ClockState(True, "test"),
        device_key=device_key,
        evidence_dir=data_dir / "evidence",
        uploader=None if uploader is None else Delivery(store, audit, uploader),
    )
    channels: dict[str, CameraChannel] = {}
    for camera in config.cameras:
        assessor = StreamAssessor(Expectations(), time.monotonic(), keep_picture=True)
        location = camera.location.model_dump() if camera.location else None
        channels[camera.id] = CameraChannel(camera.id, camera.name, location, assessor)
    channels["front"].assessor.picture(time.monotonic(), test_picture())
    facts = StreamFacts("h264", 1920, 1080, "rtsp", 25.0, 4000.0)
    channels["front"].last = Health("failed", ("covered",), {}, facts)
    channels["yard"].last = Health("offline", ("no_signal",), {}, None)
    sources = OwnerSources(
        cameras=[CameraSource(c, channels[c.id]) for c in config.cameras],
        index=index,
        store=store,
        audit_path=data_dir / AUDIT_FILE,
        decide=desk.decide,
        agent_id=config.agent.id,
        acceptance=Acceptance(
            AcceptedProblems(data_dir),
            audit,
            {cid: channel.assessor.accept for cid, channel in channels.items()},
            translator("en"),
        ),
    )
    page = OwnerPage(
        sources=sources,
        data_dir=data_dir,
        locale="en",
        allow=parse_networks(allow),
        hosts=local_host_names(config.owner_page.allowed_hosts),
    )
    stop = threading.Event()
    thread = threading.Thread(target=desk.run, args=(stop,), name="requests", daemon=True)
    thread.start()
    try:
        with serve_asgi(build_app(page)) as url:
            yield OwnerPageUnderTest(
                url, config, data_dir, store, audit, index, channels, police, desk
            )
    finally:
        stop.set()
        desk.wake()
        thread.join(10)
