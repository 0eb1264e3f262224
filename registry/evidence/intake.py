"""The registry's evidence intake: a tus 1.0 server (core, creation, checksum, termination)
for the agents' uploads, and the check of every package that arrives.

Why our own server rather than a tus library: each upload is bound to one police request
(its bearer token, its folder), evidence is never overwritten, and a finished package is
verified against the agent's enrolled key; that is most of the code either way.

This module holds the routes: what each tus request is answered. The headers are read and
written by tus.py, the partial files and their rows kept by uploads.py, packages checked by
packages.py, and what arrived is read for the police pages by records.py (its names are
importable from here too).

Decisions (docs/evidence.md has the user's view):
- Auth: every request carries `Authorization: Bearer <upload token>`, compared by SHA-256
  with `requests.upload_token_sha256` of the upload's request (OPTIONS: of any request).
- Admission (registry/evidence/admission.py): a new upload and every byte written need a
  live request (sent to its agent, not expired, package not yet verified) and stay within
  the request's byte budget. HEAD, and creating a file that already arrived whole, always
  answer, so an agent that lost its state learns that it is done.
- A PATCH without a checksum that is cut off keeps what arrived (tus allows it, the client
  resumes from HEAD); with a checksum the partial chunk cannot be checked and is dropped.
- When a file completes and the request's manifest.jws is complete, the package is checked
  (after the response is sent; it may hash gigabytes) and its `evidence_packages` row
  replaced.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import time
from pathlib import Path
from typing import Final

import anyio
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from contract.common.files import write_all
from registry.evidence.packages import PackageChecks
from registry.evidence.records import (
    PackageRecord,
    ReceivedFile,
    file_path,
    package,
    packages_for_case,
)
from registry.evidence.tsa_client import Stamper
from registry.evidence.tus import (
    CHECKSUMS,
    OFFSET_CONTENT_TYPE,
    STATUS_CHECKSUM_MISMATCH,
    TUS_EXTENSIONS,
    TUS_VERSION,
    TusError,
    bearer,
    declared_length,
    error_response,
    int_header,
    parse_checksum,
    parse_metadata,
    require_tus,
    token_sha256,
    tus_response,
)
from registry.evidence.uploads import Upload, Uploads
from registry.evidence.verify import ID, REGISTRY_NAMES, SHA256_HEX, Verdict, safe_filename

__all__ = [
    "EvidenceIntake",
    "PackageRecord",
    "ReceivedFile",
    "TusError",
    "file_path",
    "package",
    "packages_for_case",
    "parse_metadata",
]

log = logging.getLogger("registry.evidence")

# Bytes gathered before one write: few thread hops per chunk, little memory per upload.
WRITE_BUFFER: Final = 1 << 20
# A client that stops sending mid-body would hold the upload's lock for ever; after this
# long without a byte the PATCH ends as if the connection had dropped.
BODY_IDLE_TIMEOUT_S: Final = 60.0


def _metadata_header(upload: Upload) -> str:
    values = {"request_id": upload.request_id, "filename": upload.filename, "sha256": upload.sha256}
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode('ascii')}" for k, v in values.items()
    )


class EvidenceIntake:
    """The tus endpoint mounted at `/files` and the package checks behind it."""

    def __init__(
        self,
        engine: Engine,
        evidence_dir: Path,
        max_file_bytes: int,
        stamper: Stamper | None = None,
    ) -> None:
        if max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be positive")
        self.evidence_dir = evidence_dir
        self.max_file_bytes = max_file_bytes
        self._checks = PackageChecks(engine, evidence_dir, stamper)
        self._uploads = Uploads(engine, evidence_dir, self._checks.check_lock)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self._collection, methods=["OPTIONS", "POST"]),
            Route("/{upload_id}", self._one, methods=["HEAD", "PATCH", "DELETE"]),
        ]

    def file_path(self, request_id: str, filename: str) -> Path | None:
        """The stored file for a download, or None; never a path outside the request's
        folder, a partial upload, or a link."""
        return file_path(self.evidence_dir, request_id, filename)

    def unchecked(self) -> list[str]:
        """Requests whose signed manifest has arrived but whose package was not checked
        since their last file completed: the registry stopped between the two."""
        return self._checks.unchecked()

    def check_unchecked(self) -> int:
        """Check each package `unchecked` names (run once when the registry starts);
        returns how many were checked."""
        return self._checks.check_unchecked()

    def check_package(self, request_id: str) -> Verdict:
        """Verify the request's package folder against the agent's enrolled key and
        replace its `evidence_packages` row; also copies the key in as agent-key.pem."""
        return self._checks.check_package(request_id)

    # --- HTTP -----------------------------------------------------------------------------

    async def _collection(self, request: Request) -> Response:
        try:
            if request.method == "OPTIONS":
                return await self._options(request)
            return await self._post(request)
        except TusError as exc:
            return error_response(exc)

    async def _one(self, request: Request) -> Response:
        try:
            upload_id = request.path_params["upload_id"]
            require_tus(request)
            token = bearer(request)
            upload = await run_in_threadpool(self._uploads.load, upload_id)
            self._authorise(request, token, upload.request_id, upload.token_sha256)
            if request.method == "HEAD":
                return await self._head(upload)
            if request.method == "DELETE":
                return await self._delete(upload)
            return await self._patch(request, upload)
        except TusError as exc:
            return error_response(exc)

    def _authorise(self, request: Request, token: str, request_id: str, expected: str) -> None:
        if not hmac.compare_digest(token_sha256(token), expected):
            client = request.client.host if request.client else "?"
            log.warning(
                "evidence upload refused: wrong upload token for request %s from %s",
                request_id,
                client,
            )
            raise TusError(403, f"the upload token is not the one of request {request_id}")

    async def _options(self, request: Request) -> Response:
        token = bearer(request)
        known = await run_in_threadpool(self._uploads.token_known, token_sha256(token))
        if not known:
            client = request.client.host if request.client else "?"
            log.warning("evidence OPTIONS refused: unknown upload token from %s", client)
            raise TusError(403, "the upload token is not the one of any request")
        return tus_response(
            204,
            {
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(self.max_file_bytes),
                "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
            },
        )

    async def _post(self, request: Request) -> Response:
        require_tus(request)
        token = bearer(request)
        metadata = parse_metadata(request.headers.get("upload-metadata", ""))
        request_id = metadata.get("request_id", "")
        if not ID.fullmatch(request_id):
            raise TusError(400, "Upload-Metadata needs request_id, the id of the request")
        facts = await run_in_threadpool(self._uploads.facts, request_id)
        # An unknown request gets the same answer as a wrong token: ids are not probed.
        self._authorise(request, token, request_id, facts.token_sha256 if facts else "")
        if facts is None:  # not reached: no token hashes to ""
            raise TusError(403, f"the upload token is not the one of request {request_id}")
        if "upload-defer-length" in request.headers:
            raise TusError(400, "Upload-Defer-Length is not supported; send Upload-Length")
        length = int_header(request, "Upload-Length")
        if length > self.max_file_bytes:
            raise TusError(
                413,
                f"{length} bytes is over this server's limit of "
                f"{self.max_file_bytes} bytes per file",
            )
        filename = metadata.get("filename", "")
        if not safe_filename(filename) or filename in REGISTRY_NAMES:
            raise TusError(
                400,
                "Upload-Metadata filename must be a plain file name: 1-128 of "
                "A-Z a-z 0-9 . _ -, not starting with a dot, and not one the registry "
                f"writes itself ({', '.join(sorted(REGISTRY_NAMES))})",
            )
        sha256 = metadata.get("sha256", "").lower()
        if not SHA256_HEX.fullmatch(sha256):
            raise TusError(400, "Upload-Metadata sha256 must be the file's SHA-256 in hex")
        upload_id, new = await run_in_threadpool(
            self._uploads.create, facts, filename, sha256, length
        )
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
                await run_in_threadpool(self._uploads.finish, upload_id)
                background = BackgroundTask(self._checks.after_completion, request_id)
        return tus_response(201, {"Location": location}, background)

    async def _head(self, upload: Upload) -> Response:
        background = None
        if upload.finished and upload.completed_at is None:  # a crash while finishing
            await run_in_threadpool(self._uploads.finish, upload.upload_id)
            background = BackgroundTask(self._checks.after_completion, upload.request_id)
        return tus_response(
            200,
            {
                "Upload-Offset": str(upload.offset),
                "Upload-Length": str(upload.length),
                "Upload-Metadata": _metadata_header(upload),
                "Cache-Control": "no-store",
            },
            background,
        )

    async def _delete(self, upload: Upload) -> Response:
        if upload.finished:
            raise TusError(403, "a finished evidence file is kept; it cannot be deleted here")
        await run_in_threadpool(self._uploads.drop, upload.upload_id)
        log.info("evidence upload %s terminated by the client", upload.upload_id)
        return tus_response(204)

    async def _patch(self, request: Request, upload: Upload) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_CONTENT_TYPE:
            raise TusError(415, f"PATCH needs Content-Type: {OFFSET_CONTENT_TYPE}")
        offset = int_header(request, "Upload-Offset")
        checksum = parse_checksum(request)
        if upload.finished:
            if offset != upload.offset:
                raise TusError(
                    409,
                    f"Upload-Offset is {offset}, the upload is complete at {upload.offset}",
                    {"Upload-Offset": str(upload.offset)},
                )
            return tus_response(204, {"Upload-Offset": str(upload.offset)})
        facts = await run_in_threadpool(self._uploads.facts, upload.request_id)
        closed = facts.closed(time.time()) if facts else (404, "no such upload")
        if closed is not None:
            log.warning("evidence upload %s refused: %s", upload.upload_id, closed[1])
            raise TusError(*closed)
        with self._uploads.locked(upload.upload_id) as fd:
            upload = await run_in_threadpool(self._uploads.load, upload.upload_id)  # under the lock
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
            declared = declared_length(request)
            if declared is not None and current + declared > upload.length:
                raise TusError(413, "the chunk goes past Upload-Length")
            received = await self._receive(request, fd, upload, current, checksum)
            new_offset = current + received
            await run_in_threadpool(self._uploads.advance, upload, new_offset)
        background = None
        if new_offset >= upload.length:
            await run_in_threadpool(self._uploads.finish, upload.upload_id)
            background = BackgroundTask(self._checks.after_completion, upload.request_id)
        return tus_response(204, {"Upload-Offset": str(new_offset)}, background)

    async def _receive(
        self,
        request: Request,
        fd: int,
        upload: Upload,
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
                    await run_in_threadpool(write_all, fd, bytes(buffer), start + written)
                    written += len(buffer)
                    buffer.clear()
        except StopAsyncIteration:
            pass
        except (ClientDisconnect, TimeoutError):
            cut_off = True
        if buffer:
            await run_in_threadpool(write_all, fd, bytes(buffer), start + written)
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
