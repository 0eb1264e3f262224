"""What the owner page reads from the running agent, and the one thing it does (decide).

Read-only views of the parts `agent.app` wires: each camera's last reported health and
last analysed picture, the footage index, the request store and the audit log. Decisions
go through the request desk, the same way as `camera-agent requests approve|decline`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.audit import AuditEntry, AuditLog
from agent.config import CameraConfig
from agent.police_requests.store import RequestStore, StoredRequest
from agent.quality import dori
from agent.quality.accepted import Acceptance
from agent.quality.assess import ACCEPTABLE_PROBLEMS, Health
from agent.quality.metrics import Planes
from agent.recording.index import FootageSummary, Gap, SegmentIndex
from agent.reporter import CameraChannel

# The page lists this many of the newest gaps per camera; the CLI lists them all.
GAPS_SHOWN = 10
# And this many of the newest audit entries.
AUDIT_SHOWN = 500


@dataclass(frozen=True)
class CameraSource:
    """One configured camera and the reporter's channel of it (its live state)."""

    config: CameraConfig
    channel: CameraChannel

    def health(self) -> Health | None:
        """The last health reported (None: nothing yet); set by the publisher's thread."""
        return self.channel.last

    def picture(self) -> tuple[datetime, Planes] | None:
        return self.channel.assessor.last_picture()


@dataclass(frozen=True)
class CameraRow:
    id: str
    name: str
    status: str
    problems: tuple[str, ...]
    width: int | None
    height: int | None
    fps: float | None
    dori_m: dict[str, float] | None
    range_m: float | None
    footage: FootageSummary | None
    gaps: tuple[Gap, ...]
    picture_at: datetime | None
    # Whether the picture is judged yet (health `judgement`); None before any report.
    judged: bool | None = None
    # The problems the owner accepted as normal for this camera, each with whether it is
    # seen now, and the raised problems that could be accepted (a button beside each).
    accepted: tuple[tuple[str, bool], ...] = ()
    acceptable: frozenset[str] = frozenset()


Decide = Callable[[str, bool], StoredRequest]


class OwnerSources:
    def __init__(
        self,
        *,
        cameras: Sequence[CameraSource],
        index: SegmentIndex | None,
        store: RequestStore,
        audit_path: Path,
        decide: Decide,
        acceptance: Acceptance | None = None,
        agent_id: str,
    ) -> None:
        self.agent_id = agent_id
        self._cameras = {camera.config.id: camera for camera in cameras}
        self._index = index
        self.store = store
        self._audit = AuditLog(audit_path)  # only read: the desk's own log appends
        self.decide = decide
        self.acceptance = acceptance

    def camera_ids(self) -> list[str]:
        return list(self._cameras)

    def camera_rows(self) -> list[CameraRow]:
        return [self._row(camera) for camera in self._cameras.values()]

    def _row(self, camera: CameraSource) -> CameraRow:
        health = camera.health()
        stream = health.stream if health else None
        location = camera.config.location
        fov = location.fov_deg if location else None
        distances = dori.dori_distances(stream.width, fov) if stream and fov else None
        summary: FootageSummary | None = None
        gaps: tuple[Gap, ...] = ()
        if self._index is not None:
            summary = self._index.summary(camera.config.id)
            if summary.oldest is not None and summary.newest is not None:
                found = self._index.gaps(camera.config.id, summary.oldest, summary.newest)
                gaps = tuple(reversed(found[-GAPS_SHOWN:]))
        picture = camera.picture()
        seen = set(health.accepted) if health else set()
        accepted: tuple[tuple[str, bool], ...] = ()
        acceptable: frozenset[str] = frozenset()
        if self.acceptance is not None:
            owned = sorted(self.acceptance.store.of(camera.config.id))
            accepted = tuple((code, code in seen) for code in owned)
            raised = health.problems if health else ()
            acceptable = frozenset(raised) & ACCEPTABLE_PROBLEMS
        judgement = health.judgement if health else None
        return CameraRow(
            id=camera.config.id,
            name=camera.config.name or camera.config.id,
            status=health.status if health else "starting",
            problems=health.problems if health else (),
            width=stream.width if stream else None,
            height=stream.height if stream else None,
            fps=stream.fps if stream else None,
            dori_m=distances,
            range_m=location.range_m if location else None,
            footage=summary,
            gaps=gaps,
            picture_at=picture[0] if picture else None,
            judged=None if judgement is None else judgement.state == "judged",
            accepted=accepted,
            acceptable=acceptable,
        )

    def picture(self, camera_id: str) -> Planes | None:
        camera = self._cameras.get(camera_id)
        taken = camera.picture() if camera else None
        return taken[1] if taken else None

    def requests(self) -> list[StoredRequest]:
        """Newest first."""
        return list(reversed(self.store.all()))

    def audit(self) -> list[AuditEntry]:
        """The newest entries, newest first."""
        return list(reversed(self._audit.entries()[-AUDIT_SHOWN:]))

    def audit_of(self, request_id: str) -> list[AuditEntry]:
        """Every entry of one request, oldest first."""
        return self._audit.entries(request_id)
