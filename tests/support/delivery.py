"""The agent's side of an evidence upload, for tests and benches of the registry's intake:
a request in the `uploading` state and the agent's own Delivery sending a package."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.evidence.export import Package
from agent.evidence.upload import Uploader
from agent.police_requests.delivery import Delivery
from agent.police_requests.store import RequestStore, StoredRequest
from contract.request_states import RequestState

KiB = 1024


def fast_uploader(**settings: object) -> Uploader:
    return Uploader(backoff_base_s=0.05, backoff_cap_s=0.2, chunk_size=64 * KiB, **settings)  # type: ignore[arg-type]


class Audit:
    """The agent's audit trail, kept in memory."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, Mapping[str, object]]] = []

    def append(self, event: str, request_id: str | None, detail: Mapping[str, object]) -> None:
        self.events.append((event, request_id, detail))


def uploading_request(
    request_id: str,
    endpoint: str,
    token: str,
    *,
    case: str = "2026-ZZ-0042",
    requester: str = "det. Jansen",
    window: tuple[datetime, datetime] | None = None,
) -> StoredRequest:
    """An order for camera front, accepted by the agent and ready to upload to `endpoint`."""
    now = datetime.now(UTC)
    start, end = window or (now, now)
    return StoredRequest(
        id=request_id,
        state=RequestState.UPLOADING,
        reason=None,
        kind="order",
        case=case,
        basis="Sv 126nd",
        requester=requester,
        issuer="police",
        cameras=("front",),
        start=start,
        end=end,
        upload_url=endpoint,
        upload_token=token,
        expires=now + timedelta(hours=2),
        received=now,
        updated=now,
        owner_deadline=None,
        bytes_sent=0,
        bytes_total=0,
        manifest_sha256=None,
    )


def send_package(folder: Path, request: StoredRequest, pkg: Package) -> None:
    """Every file of the package, then manifest.jws, as the agent delivers them."""
    store = RequestStore(folder / "agent-requests.sqlite")
    try:
        Delivery(store, Audit(), fast_uploader()).send(
            request, pkg, lambda done, total: None, threading.Event()
        )
    finally:
        store.close()
