"""The package check: once a request's signed manifest and a file have arrived, put the
right file under each name (placement.py), verify the folder against the agent's enrolled
key (verify.py) and replace the request's `evidence_packages` row.

The check runs after the response to the upload is sent (it may hash gigabytes), and once
more at the registry's start for every package that a stop left unchecked. With a
time-stamping authority configured (`evidence.tsa_url`), the agent's signed manifest is
stamped (RFC 3161) the first time a check finds it, and the stamp kept as manifest.tsr.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, and_, delete, func, insert, or_, select

from contract import jws
from registry.db.schema import agents, evidence_packages, evidence_uploads, requests
from registry.evidence.placement import PARTIAL_DIR, Finished, arrange
from registry.evidence.timestamp import STAMP_NAME, TSA_ROOTS_NAME, check_stamp
from registry.evidence.tsa_client import Stamper, StampError
from registry.evidence.verify import (
    KEY_FILE_NAME,
    SIGNED_MANIFEST_NAME,
    Asked,
    Verdict,
    signed_manifest,
    verify_package,
)

__all__ = ["PackageChecks"]

log = logging.getLogger("registry.evidence")


class PackageChecks:
    """The checks of the packages under `evidence_dir`, one at a time per request."""

    def __init__(self, engine: Engine, evidence_dir: Path, stamper: Stamper | None = None) -> None:
        self._engine = engine
        self._stamper = stamper
        self.evidence_dir = evidence_dir
        self._partial = evidence_dir / PARTIAL_DIR
        self._check_locks: dict[str, threading.Lock] = {}
        self._check_locks_guard = threading.Lock()

    def after_completion(self, request_id: str) -> None:
        """Check the package if its signed manifest is complete: a file just completed."""
        try:
            if self._manifest_complete(request_id):
                self.check_package(request_id)
        except Exception:  # a background task: nobody else would see it
            log.exception("checking the evidence package of request %s failed", request_id)

    def _manifest_complete(self, request_id: str) -> bool:
        u = evidence_uploads.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(u.upload_id).where(
                    and_(
                        u.request_id == request_id,
                        u.filename == SIGNED_MANIFEST_NAME,
                        u.completed_at.is_not(None),
                    )
                )
            ).first()
        return row is not None

    def unchecked(self) -> list[str]:
        """Requests whose signed manifest has arrived but whose package was not checked
        since their last file completed: the registry stopped between the two."""
        u, p = evidence_uploads.c, evidence_packages.c
        with self._engine.connect() as conn:
            with_manifest = select(u.request_id).where(
                and_(u.filename == SIGNED_MANIFEST_NAME, u.completed_at.is_not(None))
            )
            newest = (
                select(u.request_id, func.max(u.completed_at).label("completed"))
                .where(u.request_id.in_(with_manifest))
                .group_by(u.request_id)
                .subquery()
            )
            rows = conn.execute(
                select(newest.c.request_id)
                .select_from(
                    newest.outerjoin(evidence_packages, p.request_id == newest.c.request_id)
                )
                .where(or_(p.checked_at.is_(None), p.checked_at < newest.c.completed))
                .order_by(newest.c.request_id)
            )
            return [row.request_id for row in rows]

    def check_unchecked(self) -> int:
        """Check each package `unchecked` names (run once when the registry starts);
        returns how many were checked."""
        pending = self.unchecked()
        for request_id in pending:
            log.info(
                "evidence package of request %s: checking it now (not checked before)", request_id
            )
            try:
                self.check_package(request_id)
            except Exception:  # one bad package must not keep the others unchecked
                log.exception("checking the evidence package of request %s failed", request_id)
        return len(pending)

    def check_lock(self, request_id: str) -> threading.Lock:
        """Held while files move in the request's folder: by a check, or by an upload
        that completed and is moved in (uploads.py)."""
        with self._check_locks_guard:
            return self._check_locks.setdefault(request_id, threading.Lock())

    def check_package(self, request_id: str) -> Verdict:
        """Verify the request's package folder against the agent's enrolled key and
        replace its `evidence_packages` row; also copies the key in as agent-key.pem."""
        u = evidence_uploads.c
        with self.check_lock(request_id):
            with self._engine.connect() as conn:
                row = conn.execute(
                    select(
                        requests.c.agent_id,
                        agents.c.public_key,
                        requests.c.case_ref,
                        requests.c.cameras_json,
                        requests.c.window_start,
                        requests.c.window_end,
                        requests.c.claims_json,
                    )
                    .select_from(
                        requests.outerjoin(agents, agents.c.agent_id == requests.c.agent_id)
                    )
                    .where(requests.c.request_id == request_id)
                ).one()
                finished = [
                    Finished(*f)
                    for f in conn.execute(
                        select(u.upload_id, u.filename, u.actual_sha256, u.completed_at).where(
                            and_(u.request_id == request_id, u.completed_at.is_not(None))
                        )
                    )
                ]
            agent_id, public_key = row.agent_id, row.public_key
            folder = self.evidence_dir / request_id
            folder.mkdir(parents=True, exist_ok=True)
            key = _enrolled_key(public_key)
            arrange(folder, self._partial, finished, key)
            _write_key_file(folder, key)
            roots = None
            if self._stamper is not None:
                roots = list(self._stamper.roots)
                self._stamp(folder, key, self._stamper)
            verdict = verify_package(
                folder,
                key,
                request_id=request_id,
                agent=agent_id,
                asked=_asked(row),
                tsa_roots=roots,
            )
            text = verdict.text()
            if key is None:
                text = (
                    f"agent {agent_id} has no enrolled key: the signature cannot be checked\n{text}"
                )
            with self._engine.begin() as conn:
                conn.execute(
                    delete(evidence_packages).where(evidence_packages.c.request_id == request_id)
                )
                conn.execute(
                    insert(evidence_packages).values(
                        request_id=request_id,
                        agent_id=agent_id,
                        verified=verdict.verified,
                        verdict=text,
                        manifest_json=None
                        if verdict.manifest is None
                        else json.dumps(verdict.manifest),
                        checked_at=time.time(),
                    )
                )
        if verdict.verified:
            log.info("evidence package of request %s verified", request_id)
        else:
            log.warning(
                "evidence package of request %s NOT verified: %s",
                request_id,
                "; ".join(verdict.findings),
            )
        return verdict

    def _stamp(self, folder: Path, key: Ed25519PublicKey | None, stamper: Stamper) -> None:
        """Stamp the agent's signed manifest unless a valid stamp of it is there: only a
        manifest signed with the enrolled key (not one sent by whoever else had the upload
        token), and again when placement put another manifest under the name."""
        manifest = folder / SIGNED_MANIFEST_NAME
        if signed_manifest(manifest, key) is None:
            return
        if check_stamp(folder, list(stamper.roots)).ok:
            return
        try:
            stamp = stamper.stamp(manifest.read_bytes())
        except StampError as exc:
            # The package is still checked; the next check (another file, a restart)
            # asks again, and the verdict says there is no stamp.
            log.warning("evidence package in %s: no time stamp: %s", folder, exc)
            return
        _replace(folder / TSA_ROOTS_NAME, stamper.roots_file.read_bytes())
        _replace(folder / STAMP_NAME, stamp)
        log.info("evidence package in %s: manifest.jws time-stamped by %s", folder, stamper.url)


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _asked(row: Any) -> Asked:
    """What the request asked for, from its row: the window as the claims wrote it (to the
    millisecond, as the agent's manifest does), else from the stored epoch seconds."""
    try:
        window = json.loads(row.claims_json)["window"]
        start, end = (_parse_utc(window[k]) for k in ("start", "end"))
    except (ValueError, KeyError, TypeError):
        start = datetime.fromtimestamp(row.window_start, UTC)
        end = datetime.fromtimestamp(row.window_end, UTC)
    return Asked(
        case=row.case_ref, cameras=tuple(json.loads(row.cameras_json)), start=start, end=end
    )


def _parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.astimezone(UTC)


def _enrolled_key(public_key: str | None) -> Ed25519PublicKey | None:
    if not public_key:
        return None
    try:
        return jws.public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": public_key})
    except ValueError:
        log.error("the enrolled public key in the database is not an Ed25519 key")
        return None


def _write_key_file(folder: Path, key: Ed25519PublicKey | None) -> None:
    """The key the package was checked with, so the folder can be checked offline; none
    when there is no enrolled key (a stale copy would mislead)."""
    path = folder / KEY_FILE_NAME
    if key is None:
        path.unlink(missing_ok=True)
        return
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    temporary = folder / f".{KEY_FILE_NAME}.tmp"
    temporary.write_bytes(pem)
    os.replace(temporary, path)
