"""tus 1.0 on the wire, as the registry's intake speaks it: the version and extensions it
offers, the request headers it reads (each refused with a 4xx, never a 500, however odd),
and its answers.

Pure functions of a starlette Request, so bench/fuzz/tus.py feeds them raw headers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from contract import jws

__all__ = [
    "CHECKSUMS",
    "OFFSET_CONTENT_TYPE",
    "STATUS_CHECKSUM_MISMATCH",
    "TUS_EXTENSIONS",
    "TUS_VERSION",
    "TusError",
    "bearer",
    "declared_length",
    "error_response",
    "int_header",
    "parse_checksum",
    "parse_metadata",
    "require_tus",
    "token_sha256",
    "tus_response",
]

TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = "creation,checksum,termination"
OFFSET_CONTENT_TYPE: Final = "application/offset+octet-stream"
STATUS_CHECKSUM_MISMATCH: Final = 460  # tus checksum extension
CHECKSUMS: Final[dict[str, Callable[[], Any]]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
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


def tus_response(
    status: int, headers: dict[str, str] | None = None, background: BackgroundTask | None = None
) -> Response:
    return Response(
        status_code=status,
        headers={"Tus-Resumable": TUS_VERSION, **(headers or {})},
        background=background,
    )


def error_response(exc: TusError) -> Response:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **exc.headers}
    return PlainTextResponse(str(exc) + "\n", status_code=exc.status, headers=headers)


def require_tus(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusError(
            412,
            f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}",
            {"Tus-Version": TUS_VERSION},
        )


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TusError(
            401,
            "an evidence upload needs 'Authorization: Bearer <the upload token of the request>'",
            {"WWW-Authenticate": 'Bearer realm="evidence"'},
        )
    return token.strip()


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def int_header(request: Request, name: str) -> int:
    value = request.headers.get(name, "").strip()
    if not value.isdigit() or not value.isascii() or len(value) > MAX_NUMBER_DIGITS:
        raise TusError(400, f"{name} must be a non-negative whole number")
    return int(value)


def declared_length(request: Request) -> int | None:
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


def parse_checksum(request: Request) -> tuple[str, bytes] | None:
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
