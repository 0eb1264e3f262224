"""The registry's evidence intake: a tus 1.0 server (core, creation, checksum, termination)
for the agents' uploads, and the check of every package that arrives.

Why our own server rather than a tus library: each upload is bound to one police request
(its bearer token, its folder), evidence is never overwritten, and a finished package is
verified against the agent's enrolled key; that is most of the code either way.

Decisions (docs/evidence.md has the user's view):
- Auth: every request carries `Authorization: Bearer <upload token>`, compared by SHA-256
  with `requests.upload_token_sha256` of the upload's request (OPTIONS: of any request).
- Admission (registry/evidence/admission.py): a new upload and every byte written need a
  live request (sent to its agent, not expired, package not yet verified) and stay within
  the request's byte budget. HEAD, and creating a file that already arrived whole, always
  answer, so an agent that lost its state learns that it is done.
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
- A PATCH without a checksum that is cut off keeps what arrived (tus allows it, the client
  resumes from HEAD); with a checksum the partial chunk cannot be checked and is dropped.
- One PATCH per upload at a time (an flock on the .part file, so it holds across worker
  processes on one machine); a second one gets 423 and the client retries.
- When a file completes and the request's manifest.jws is complete, the package is checked
  (after the response is sent; it may hash gigabytes) and its `evidence_packages` row
  replaced.

Over 500 lines, not split in the issue 14 change: its one class holds the tus routes, the
partial files, the database rows and the page queries (issue 17 splits them; admission.py
and placement.py already left it).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import anyio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from agent.crypto import jws
from registry.db.schema import agents, evidence_packages, evidence_uploads, requests
from registry.evidence.admission import RequestFacts, load_facts
from registry.evidence.placement import Finished, arrange, part_path
from registry.evidence.verify import (
    ID,
    KEY_FILE_NAME,
    SIGNED_MANIFEST_NAME,
    Asked,
    Verdict,
    safe_filename,
    sha256_file,
    verify_package,
)

log = logging.getLogger("registry.evidence")

TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = "creation,checksum,termination"
OFFSET_CONTENT_TYPE: Final = "application/offset+octet-stream"
STATUS_CHECKSUM_MISMATCH: Final = 460  # tus checksum extension
CHECKSUMS: Final[dict[str, Callable[[], Any]]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
PARTIAL_DIR: Final = ".partial"  # cannot be a request id (no dots in ids)
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Bytes gathered before one write: few thread hops per chunk, little memory per upload.
WRITE_BUFFER: Final = 1 << 20
# A client that stops sending mid-body would hold the upload's lock for ever; after this
# long without a byte the PATCH ends as if the connection had dropped.
BODY_IDLE_TIMEOUT_S: Final = 60.0
MAX_METADATA_CHARS: Final = 4096
# Offsets and lengths are bytes of one file: 20 digits pass 2^64. More is no number a
# client means, and Python refuses to read one of over 4,300 digits (a ValueError, a 500).
MAX_NUMBER_DIGITS: Final = 20


class TusError(Exception):
    """An answer other than success: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True)
class _Upload:
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


def _tus_response(
    status: int, headers: dict[str, str] | None = None, background: BackgroundTask | None = None
) -> Response:
    return Response(
        status_code=status,
        headers={"Tus-Resumable": TUS_VERSION, **(headers or {})},
        background=background,
    )


def _error_response(exc: TusError) -> Response:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **exc.headers}
    return PlainTextResponse(str(exc) + "\n", status_code=exc.status, headers=headers)


def _require_tus(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusError(
            412,
            f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}",
            {"Tus-Version": TUS_VERSION},
        )


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TusError(
            401,
            "an evidence upload needs 'Authorization: Bearer <the upload token of the request>'",
            {"WWW-Authenticate": 'Bearer realm="evidence"'},
        )
    return token.strip()


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name, "").strip()
    if not value.isdigit() or not value.isascii() or len(value) > MAX_NUMBER_DIGITS:
        raise TusError(400, f"{name} must be a non-negative whole number")
    return int(value)


def _declared_length(request: Request) -> int | None:
    """Content-Length as a number, or None when it is missing or not one (then the body
    itself is held to the upload's length)."""
    value = request.headers.get("content-length", "").strip()
    if not value.isdigit() or not value.isascii() or len(value) > MAX_NUMBER_DIGITS:
        return None
    return int(value)


def parse_metadata(header: str) -> dict[str, str]:
    """Upload-Metadata, strictly: `key base64(value)` pairs; TusError(400) otherwise."""
    if len(header) > MAX_METADATA_CHARS:
        raise TusError(400, "Upload-Metadata is too long")
    result: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key or not key.isascii() or not key.isprintable() or key in result:
            raise TusError(400, "Upload-Metadata: empty, odd or repeated key")
        try:
            result[key] = jws.b64_decode(value.strip()).decode("utf-8")
        except ValueError:  # not base64, or not UTF-8
            raise TusError(400, f"Upload-Metadata: {key} is not base64 of UTF-8 text") from None
    return result


def _metadata_header(upload: _Upload) -> str:
    values = {"request_id": upload.request_id, "filename": upload.filename, "sha256": upload.sha256}
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode('ascii')}" for k, v in values.items()
    )


def _parse_checksum(request: Request) -> tuple[str, bytes] | None:
    header = request.headers.get("upload-checksum")
    if header is None:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise TusError(400, f"Upload-Checksum: {algorithm!r} is not supported (sha1, sha256)")
    try:
        return algorithm, jws.b64_decode(value.strip())
    except ValueError:  # binascii.Error, and non-ASCII text (a header is read as Latin-1)
        raise TusError(400, "Upload-Checksum: the digest is not base64") from None


def _write_all(fd: int, data: bytes, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EvidenceIntake:
    """The tus endpoint mounted at `/files` and the package checks behind it."""

    def __init__(self, engine: Engine, evidence_dir: Path, max_file_bytes: int) -> None:
        if max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")
        self._engine = engine
        self.evidence_dir = evidence_dir
        self.max_file_bytes = max_file_bytes
        self._partial = evidence_dir / PARTIAL_DIR
        self._partial.mkdir(parents=True, exist_ok=True)
        self._create_lock = threading.Lock()  # one creation decision per name at a time
        self._check_locks: dict[str, threading.Lock] = {}
        self._check_locks_guard = threading.Lock()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self._collection, methods=["OPTIONS", "POST"]),
            Route("/{upload_id}", self._one, methods=["HEAD", "PATCH", "DELETE"]),
        ]

    def file_path(self, request_id: str, filename: str) -> Path | None:
        """The stored file for a download, or None; never a path outside the request's
        folder, a partial upload, or a link."""
        return file_path(self.evidence_dir, request_id, filename)

    # --- HTTP -----------------------------------------------------------------------------

    async def _collection(self, request: Request) -> Response:
        try:
            if request.method == "OPTIONS":
                return await self._options(request)
            return await self._post(request)
        except TusError as exc:
            return _error_response(exc)

    async def _one(self, request: Request) -> Response:
        try:
            upload_id = request.path_params["upload_id"]
            _require_tus(request)
            token = _bearer(request)
            upload = await run_in_threadpool(self._load, upload_id)
            self._authorise(request, token, upload.request_id, upload.token_sha256)
            if request.method == "HEAD":
                return await self._head(upload)
            if request.method == "DELETE":
                return await self._delete(upload)
            return await self._patch(request, upload)
        except TusError as exc:
            return _error_response(exc)

    def _authorise(self, request: Request, token: str, request_id: str, expected: str) -> None:
        if not hmac.compare_digest(_token_sha256(token), expected):
            client = request.client.host if request.client else "?"
            log.warning(
                "evidence upload refused: wrong upload token for request %s from %s",
                request_id,
                client,
            )
            raise TusError(403, f"the upload token is not the one of request {request_id}")

    async def _options(self, request: Request) -> Response:
        token = _bearer(request)
        known = await run_in_threadpool(self._token_known, _token_sha256(token))
        if not known:
            client = request.client.host if request.client else "?"
            log.warning("evidence OPTIONS refused: unknown upload token from %s", client)
            raise TusError(403, "the upload token is not the one of any request")
        return _tus_response(
            204,
            {
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(self.max_file_bytes),
                "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
            },
        )

    async def _post(self, request: Request) -> Response:
        _require_tus(request)
        token = _bearer(request)
        metadata = parse_metadata(request.headers.get("upload-metadata", ""))
        request_id = metadata.get("request_id", "")
        if not ID.fullmatch(request_id):
            raise TusError(400, "Upload-Metadata needs request_id, the id of the request")
        facts = await run_in_threadpool(self._facts, request_id)
        # An unknown request gets the same answer as a wrong token: ids are not probed.
        self._authorise(request, token, request_id, facts.token_sha256 if facts else "")
        if facts is None:  # not reached: no token hashes to ""
            raise TusError(403, f"the upload token is not the one of request {request_id}")
        if "upload-defer-length" in request.headers:
            raise TusError(400, "Upload-Defer-Length is not supported; send Upload-Length")
        length = _int_header(request, "Upload-Length")
        if length > self.max_file_bytes:
            raise TusError(
                413,
                f"{length} bytes is over this server's limit of "
                f"{self.max_file_bytes} bytes per file",
            )
        filename = metadata.get("filename", "")
        if not safe_filename(filename) or filename == KEY_FILE_NAME:
            raise TusError(
                400,
                "Upload-Metadata filename must be a plain file name: 1-128 of "
                "A-Z a-z 0-9 . _ -, not starting with a dot",
            )
        sha256 = metadata.get("sha256", "").lower()
        if not SHA256_HEX.fullmatch(sha256):
            raise TusError(400, "Upload-Metadata sha256 must be the file's SHA-256 in hex")
        upload_id, new = await run_in_threadpool(self._create, facts, filename, sha256, length)
        base = str(request.url.replace(query="", fragment=""))
        location = (base if base.endswith("/") else base + "/") + upload_id
        background = None
        if new:
            log.info(
                "evidence upload %s created: request %s, %s, %d bytes",
                upload_id,
                request_id,
                filename,
                length,
            )
            if length == 0:  # nothing to send: complete on creation
                await run_in_threadpool(self._finish, upload_id)
                background = BackgroundTask(self._after_completion, request_id)
        return _tus_response(201, {"Location": location}, background)

    async def _head(self, upload: _Upload) -> Response:
        background = None
        if upload.finished and upload.completed_at is None:  # a crash while finishing
            await run_in_threadpool(self._finish, upload.upload_id)
            background = BackgroundTask(self._after_completion, upload.request_id)
        return _tus_response(
            200,
            {
                "Upload-Offset": str(upload.offset),
                "Upload-Length": str(upload.length),
                "Upload-Metadata": _metadata_header(upload),
                "Cache-Control": "no-store",
            },
            background,
        )

    async def _delete(self, upload: _Upload) -> Response:
        if upload.finished:
            raise TusError(403, "a finished evidence file is kept; it cannot be deleted here")
        await run_in_threadpool(self._drop, upload.upload_id)
        log.info("evidence upload %s terminated by the client", upload.upload_id)
        return _tus_response(204)

    async def _patch(self, request: Request, upload: _Upload) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_CONTENT_TYPE:
            raise TusError(415, f"PATCH needs Content-Type: {OFFSET_CONTENT_TYPE}")
        offset = _int_header(request, "Upload-Offset")
        checksum = _parse_checksum(request)
        if upload.finished:
            if offset != upload.offset:
                raise TusError(
                    409,
                    f"Upload-Offset is {offset}, the upload is complete at {upload.offset}",
                    {"Upload-Offset": str(upload.offset)},
                )
            return _tus_response(204, {"Upload-Offset": str(upload.offset)})
        facts = await run_in_threadpool(self._facts, upload.request_id)
        closed = facts.closed(time.time()) if facts else (404, "no such upload")
        if closed is not None:
            log.warning("evidence upload %s refused: %s", upload.upload_id, closed[1])
            raise TusError(*closed)
        try:
            fd = os.open(self._partial / f"{upload.upload_id}.part", os.O_RDWR)
        except FileNotFoundError:
            raise TusError(404, "the upload is gone; create it again") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TusError(
                    423, "another PATCH of this upload is in progress", {"Retry-After": "1"}
                ) from None
            upload = await run_in_threadpool(self._load, upload.upload_id)  # under the lock
            # Bytes past the recorded offset were never confirmed (a crash before the
            # database moved): they are dropped and the client sends them again.
            current = min(upload.offset, os.fstat(fd).st_size)
            os.ftruncate(fd, current)
            if offset != current:
                raise TusError(
                    409,
                    f"Upload-Offset is {offset}, the server has {current}",
                    {"Upload-Offset": str(current)},
                )
            declared = _declared_length(request)
            if declared is not None and current + declared > upload.length:
                raise TusError(413, "the chunk goes past Upload-Length")
            received = await self._receive(request, fd, upload, current, checksum)
            new_offset = current + received
            await run_in_threadpool(self._advance, upload, new_offset)
        finally:
            os.close(fd)  # also releases the flock
        background = None
        if new_offset >= upload.length:
            await run_in_threadpool(self._finish, upload.upload_id)
            background = BackgroundTask(self._after_completion, upload.request_id)
        return _tus_response(204, {"Upload-Offset": str(new_offset)}, background)

    async def _receive(
        self,
        request: Request,
        fd: int,
        upload: _Upload,
        start: int,
        checksum: tuple[str, bytes] | None,
    ) -> int:
        """Stream the body to the file at `start`; returns the bytes kept (fsynced)."""
        hasher = CHECKSUMS[checksum[0]]() if checksum else None
        room = upload.length - start
        written = 0
        buffer = bytearray()
        cut_off = False
        chunks = request.stream().__aiter__()
        try:
            while True:
                with anyio.fail_after(BODY_IDLE_TIMEOUT_S):
                    piece = await chunks.__anext__()
                if written + len(buffer) + len(piece) > room:
                    os.ftruncate(fd, start)
                    raise TusError(413, "the chunk goes past Upload-Length; none of it was kept")
                buffer += piece
                if hasher is not None:
                    hasher.update(piece)
                if len(buffer) >= WRITE_BUFFER:
                    await run_in_threadpool(_write_all, fd, bytes(buffer), start + written)
                    written += len(buffer)
                    buffer.clear()
        except StopAsyncIteration:
            pass
        except (ClientDisconnect, TimeoutError):
            cut_off = True
        if buffer:
            await run_in_threadpool(_write_all, fd, bytes(buffer), start + written)
            written += len(buffer)
        if cut_off and checksum is not None:
            # Nothing to check a partial chunk against: keep none of it.
            os.ftruncate(fd, start)
            log.info("evidence upload %s: PATCH cut off; partial chunk dropped", upload.upload_id)
            return 0
        if hasher is not None and checksum is not None and hasher.digest() != checksum[1]:
            os.ftruncate(fd, start)
            log.warning(
                "evidence upload %s: %s checksum mismatch at offset %d; chunk dropped",
                upload.upload_id,
                checksum[0],
                start,
            )
            raise TusError(
                STATUS_CHECKSUM_MISMATCH,
                "the chunk does not match its Upload-Checksum; none of it was kept",
                {"Upload-Offset": str(start)},
            )
        await run_in_threadpool(os.fsync, fd)
        if cut_off:
            log.info(
                "evidence upload %s: PATCH cut off after %d bytes; kept", upload.upload_id, written
            )
        return written

    # --- the database and the files (blocking; called in the thread pool) -----------------

    def _token_known(self, token_sha256: str) -> bool:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(requests.c.upload_token_sha256).where(
                    requests.c.upload_token_sha256 == token_sha256
                )
            ).all()
        return any(hmac.compare_digest(row[0], token_sha256) for row in rows)

    def _facts(self, request_id: str) -> RequestFacts | None:
        with self._engine.connect() as conn:
            return load_facts(conn, request_id)

    def _load(self, upload_id: str) -> _Upload:
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
        return _Upload(*row)

    def _create(
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

    def _advance(self, upload: _Upload, new_offset: int) -> None:
        u = evidence_uploads.c
        with self._engine.begin() as conn:
            moved = conn.execute(
                update(evidence_uploads)
                .where(and_(u.upload_id == upload.upload_id, u.offset == upload.offset))
                .values(offset=new_offset)
            ).rowcount
        if moved != 1:  # replaced or terminated while this PATCH ran
            raise TusError(404, "the upload was replaced or terminated meanwhile")

    def _drop(self, upload_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(evidence_uploads).where(evidence_uploads.c.upload_id == upload_id))
        (self._partial / f"{upload_id}.part").unlink(missing_ok=True)

    def _place(self, upload: _Upload) -> Path:
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
            _fsync_dir(folder)
            part.unlink()
            _fsync_dir(self._partial)
            return target

    def _finish(self, upload_id: str) -> None:
        """Move a complete upload into its request's folder and record its SHA-256.
        Idempotent, so a crash half-way is finished by the next HEAD or PATCH."""
        upload = self._load(upload_id)
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

    # --- checking packages -----------------------------------------------------------------

    def _after_completion(self, request_id: str) -> None:
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

    def _check_lock(self, request_id: str) -> threading.Lock:
        with self._check_locks_guard:
            return self._check_locks.setdefault(request_id, threading.Lock())

    def check_package(self, request_id: str) -> Verdict:
        """Verify the request's package folder against the agent's enrolled key and
        replace its `evidence_packages` row; also copies the key in as agent-key.pem."""
        u = evidence_uploads.c
        with self._check_lock(request_id):
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
            verdict = verify_package(
                folder, key, request_id=request_id, agent=agent_id, asked=_asked(row)
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


# --- queries for the web pages --------------------------------------------------------------


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
