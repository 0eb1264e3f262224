"""What arrived for each request, as the police pages show it: the files received (whole,
partial or set aside), the verdict of the package check, and the stored file to download.

Read-only queries of `evidence_uploads` and `evidence_packages`; the intake writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, or_, select

from registry.db.schema import evidence_packages, evidence_uploads, requests
from registry.evidence.placement import PARTIAL_DIR, part_path
from registry.evidence.verify import ID, safe_filename

__all__ = ["PackageRecord", "ReceivedFile", "file_path", "package", "packages_for_case"]


@dataclass(frozen=True)
class ReceivedFile:
    """One file of a request as the intake holds it."""

    name: str
    length: int  # Upload-Length
    received: int  # bytes stored so far
    declared_sha256: str  # what the agent said in Upload-Metadata
    actual_sha256: str | None  # computed when the last byte arrived
    completed_at: float | None
    # Another file holds the name in the package (placement.py); this one is kept apart.
    set_aside: bool = False

    @property
    def complete(self) -> bool:
        return self.completed_at is not None


@dataclass(frozen=True)
class PackageRecord:
    """What arrived for one request and what the check of it found."""

    request_id: str
    agent: str
    case_ref: str
    checked: bool  # False until a signed manifest arrived and the package was checked
    verified: bool
    verdict: str
    checked_at: float | None
    manifest: dict[str, Any] | None
    files: tuple[ReceivedFile, ...]


def file_path(evidence_dir: Path, request_id: str, filename: str) -> Path | None:
    """A stored file of a request for a download, or None (bad names, missing, a link)."""
    if not ID.fullmatch(request_id) or not safe_filename(filename):
        return None
    folder = (evidence_dir / request_id).resolve()
    path = folder / filename
    if path.is_symlink() or not path.is_file() or path.resolve().parent != folder:
        return None
    return path


def _records(engine: Engine, condition: Any, partial: Path | None) -> list[PackageRecord]:
    r, u, p = requests.c, evidence_uploads.c, evidence_packages.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                r.request_id,
                r.agent_id,
                r.case_ref,
                p.verified,
                p.verdict,
                p.checked_at,
                p.manifest_json,
            )
            .select_from(requests.outerjoin(evidence_packages, p.request_id == r.request_id))
            .where(condition)
            .where(
                or_(p.request_id.is_not(None), r.request_id.in_(select(u.request_id).distinct()))
            )
            .order_by(r.prepared_at, r.request_id)
        ).all()
        files: dict[str, list[ReceivedFile]] = {row.request_id: [] for row in rows}
        if files:
            for f in conn.execute(
                select(
                    u.request_id,
                    u.upload_id,
                    u.filename,
                    u.length,
                    u.offset,
                    u.sha256,
                    u.actual_sha256,
                    u.completed_at,
                )
                .where(u.request_id.in_(list(files)))
                .order_by(u.filename, u.created_at, u.upload_id)
            ):
                aside = (
                    partial is not None
                    and f.completed_at is not None
                    and part_path(partial, f.upload_id).exists()
                )
                files[f.request_id].append(ReceivedFile(*f[2:], set_aside=aside))
    return [
        PackageRecord(
            request_id=request_id,
            agent=agent_id,
            case_ref=case_ref,
            checked=verified is not None,
            verified=bool(verified),
            verdict=verdict
            if verdict is not None
            else "not checked yet: the signed manifest has not arrived",
            checked_at=checked_at,
            manifest=json.loads(manifest_json) if manifest_json else None,
            files=tuple(files[request_id]),
        )
        for request_id, agent_id, case_ref, verified, verdict, checked_at, manifest_json in rows
    ]


def packages_for_case(
    engine: Engine, case_ref: str, evidence_dir: Path | None = None
) -> list[PackageRecord]:
    """Every request of a case that has received evidence, oldest request first; with the
    `evidence_dir`, files set aside (placement.py) are marked."""
    return _records(engine, requests.c.case_ref == case_ref, _partial_of(evidence_dir))


def package(
    engine: Engine, request_id: str, evidence_dir: Path | None = None
) -> PackageRecord | None:
    """What arrived for one request, or None if nothing did (or no such request)."""
    found = _records(engine, requests.c.request_id == request_id, _partial_of(evidence_dir))
    return found[0] if found else None


def _partial_of(evidence_dir: Path | None) -> Path | None:
    return None if evidence_dir is None else evidence_dir / PARTIAL_DIR
