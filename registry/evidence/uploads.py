"""The uploads of evidence files, on disk and in `evidence_uploads`: a partial file per
upload, one PATCH at a time, and the move of a whole file into its request's folder.

Decisions (docs/evidence.md has the user's view):
- Creating a file again (same name, sha256 and length) answers with the URL of the upload
  of it that exists, finished or not (the agent lost its state and resumes from HEAD's
  offset). With another sha256 a new upload is made beside the others: the token is a
  bearer, and a file someone else sent, first or meanwhile, must neither block nor
  destroy the agent's (registry/evidence/placement.py decides which one the package
  holds; none is deleted).
- Bytes go to `<evidence_dir>/.partial/<upload_id>.part` and are moved to
  `<evidence_dir>/<request_id>/<filename>` when complete and the name is free, so a
  package folder holds only whole files. The database offset moves only after the bytes
  are fsynced.
- One PATCH per upload at a time (an flock on the .part file, so it holds across worker
  processes on one machine); a second one gets 423 and the client retries.

Blocking (files and the database): the tus routes call it in the thread pool.
"""

from __future__ import annotations

import fcntl
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, and_, delete, insert, select, update

from contract.common.files import fsync_dir, sha256_file
from registry.db.schema import evidence_uploads, requests
from registry.evidence.admission import RequestFacts, load_facts
from registry.evidence.placement import PARTIAL_DIR, part_path
from registry.evidence.tus import TusError

__all__ = ["Upload", "Uploads"]

log = logging.getLogger("registry.evidence")

UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Upload:
    """One row of `evidence_uploads`, with the SHA-256 of its request's upload token."""

    upload_id: str
    request_id: str
    filename: str
    sha256: str
    length: int
    offset: int
    completed_at: float | None
    token_sha256: str

    @property
    def finished(self) -> bool:
        return self.offset >= self.length


class Uploads:
    """The uploads under `<evidence_dir>/.partial` and their rows."""

    def __init__(
        self, engine: Engine, evidence_dir: Path, check_lock: Callable[[str], threading.Lock]
    ) -> None:
        self._engine = engine
        self.evidence_dir = evidence_dir
        self._partial = evidence_dir / PARTIAL_DIR
        self._partial.mkdir(parents=True, exist_ok=True)
        self._create_lock = threading.Lock()  # one creation decision per name at a time
        self._check_lock = check_lock  # the package check's lock of a request's folder

    def token_known(self, token_sha256: str) -> bool:
        """Whether the upload token of any request has this SHA-256 (for OPTIONS)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(requests.c.upload_token_sha256).where(
                    requests.c.upload_token_sha256 == token_sha256
                )
            ).all()
        return any(hmac.compare_digest(row[0], token_sha256) for row in rows)

    def facts(self, request_id: str) -> RequestFacts | None:
        with self._engine.connect() as conn:
            return load_facts(conn, request_id)

    def load(self, upload_id: str) -> Upload:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise TusError(404, "no such upload")
        u = evidence_uploads.c
        query = (
            select(
                u.upload_id,
                u.request_id,
                u.filename,
                u.sha256,
                u.length,
                u.offset,
                u.completed_at,
                requests.c.upload_token_sha256,
            )
            .join(requests, requests.c.request_id == u.request_id)
            .where(u.upload_id == upload_id)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            raise TusError(404, "no such upload")
        return Upload(*row)

    def create(
        self, facts: RequestFacts, filename: str, sha256: str, length: int
    ) -> tuple[str, bool]:
        """(upload id, whether new): see the module docstring for the rules."""
        u = evidence_uploads.c
        request_id = facts.request_id
        with self._create_lock, self._engine.begin() as conn:
            uploads = conn.execute(
                select(u.upload_id, u.filename, u.sha256, u.length, u.offset).where(
                    u.request_id == request_id
                )
            ).all()
            same_name = [row for row in uploads if row.filename == filename]
            same_file = [row for row in same_name if (row.sha256, row.length) == (sha256, length)]
            for row in same_file:
                if row.offset >= row.length:
                    return row.upload_id, False  # arrived whole already
            closed = facts.closed(time.time())
            if closed is not None:
                log.warning("evidence upload of %s refused: %s", filename, closed[1])
                raise TusError(*closed)
            if same_file:  # the agent lost its state: it resumes from HEAD's offset
                return same_file[0].upload_id, False
            declared = sum(row.length for row in uploads)
            if declared + length > facts.budget:
                log.warning(
                    "evidence upload of %s refused: request %s over its budget of %d bytes",
                    filename,
                    request_id,
                    facts.budget,
                )
                raise TusError(
                    413,
                    f"request {request_id} may receive at most {facts.budget} bytes in all "
                    f"(its window and cameras at the documented bitrate ceiling); "
                    f"{declared} are declared already, {length} more is too much",
                )
            if same_name:
                log.warning(
                    "evidence %s of request %s arrives again with another SHA-256; it is "
                    "received beside the other, and the package check decides which one "
                    "the package holds",
                    filename,
                    request_id,
                )
            upload_id = secrets.token_hex(16)
            (self._partial / f"{upload_id}.part").touch(exist_ok=False)
            conn.execute(
                insert(evidence_uploads).values(
                    upload_id=upload_id,
                    request_id=request_id,
                    filename=filename,
                    sha256=sha256,
                    length=length,
                    offset=0,
                    created_at=time.time(),
                )
            )
        return upload_id, True

    def advance(self, upload: Upload, new_offset: int) -> None:
        """Record the bytes fsynced up to `new_offset`; TusError 404 if the upload changed."""
        u = evidence_uploads.c
        with self._engine.begin() as conn:
            moved = conn.execute(
                update(evidence_uploads)
                .where(and_(u.upload_id == upload.upload_id, u.offset == upload.offset))
                .values(offset=new_offset)
            ).rowcount
        if moved != 1:  # replaced or terminated while this PATCH ran
            raise TusError(404, "the upload was replaced or terminated meanwhile")

    def drop(self, upload_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(evidence_uploads).where(evidence_uploads.c.upload_id == upload_id))
        (self._partial / f"{upload_id}.part").unlink(missing_ok=True)

    @contextmanager
    def locked(self, upload_id: str) -> Iterator[int]:
        """The upload's .part file open for writing, under its flock; TusError 404 when it
        is gone, 423 while another PATCH holds it."""
        try:
            fd = os.open(self._partial / f"{upload_id}.part", os.O_RDWR)
        except FileNotFoundError:
            raise TusError(404, "the upload is gone; create it again") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TusError(
                    423, "another PATCH of this upload is in progress", {"Retry-After": "1"}
                ) from None
            yield fd
        finally:
            os.close(fd)  # also releases the flock

    def _place(self, upload: Upload) -> Path:
        """Where the complete upload now is: under its name in the request's folder, or
        left at its .part when another file holds the name (set aside)."""
        folder = self.evidence_dir / upload.request_id
        target = folder / upload.filename
        part = part_path(self._partial, upload.upload_id)
        with self._check_lock(upload.request_id):  # placement.arrange moves files too
            if not part.exists():
                return target
            folder.mkdir(parents=True, exist_ok=True)
            try:
                os.link(part, target)  # never over a file that holds the name
            except FileExistsError:
                if not os.path.samefile(part, target):
                    log.warning(
                        "evidence upload %s: %s of request %s is held by another file; "
                        "this one is set aside until the package check decides",
                        upload.upload_id,
                        upload.filename,
                        upload.request_id,
                    )
                    return part
            fsync_dir(folder)
            part.unlink()
            fsync_dir(self._partial)
            return target

    def finish(self, upload_id: str) -> None:
        """Move a complete upload into its request's folder and record its SHA-256.
        Idempotent, so a crash half-way is finished by the next HEAD or PATCH."""
        upload = self.load(upload_id)
        path = self._place(upload)
        if not path.is_file():
            log.error("evidence upload %s: the complete file %s is missing", upload_id, path)
            return
        size, digest = sha256_file(path)
        with self._engine.begin() as conn:
            conn.execute(
                update(evidence_uploads)
                .where(evidence_uploads.c.upload_id == upload_id)
                .values(completed_at=time.time(), actual_sha256=digest)
            )
        if (size, digest) != (upload.length, upload.sha256):
            log.warning(
                "evidence %s of request %s: received %d bytes with SHA-256 %s, the "
                "agent declared %s",
                upload.filename,
                upload.request_id,
                size,
                digest,
                upload.sha256,
            )
        else:
            log.info(
                "evidence %s of request %s received (%d bytes)",
                upload.filename,
                upload.request_id,
                size,
            )
