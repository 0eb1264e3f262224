"""Evidence upload: one file, one tus 1.0 upload, resumable, bandwidth-capped.

A client of our own on `requests` rather than tuspy, which has no bandwidth cap, keeps
resume URLs in a fingerprint store of its own (ours live in the agent's state, written
before the first byte goes), sends sha1 checksums only and without asking the server
(OPTIONS) whether it supports them, retries a fixed number of times after a fixed delay
whatever the error, and lets requests follow redirects. What this module does instead:

- creation: POST with Upload-Length and Upload-Metadata, and `on_created(url)` before any
  data is sent, so an agent killed at any moment resumes the same upload;
- resume: HEAD the saved URL for the server's offset; an upload the server no longer
  has (404/410), or one of another file, is created anew;
- PATCH chunks from the server's offset, each with `Upload-Checksum: sha256 ...` when
  OPTIONS lists the checksum extension with sha256;
- network errors, 5xx, 408, 423 and 429 are retried with capped, jittered backoff, the
  offset re-read with HEAD first; 409 and 460 (offset or checksum mismatch) re-read it at
  once; any other 4xx, a redirect, or a Location outside the endpoint's origin is a
  permanent UploadError;
- a token bucket caps the bytes sent, and `stop` ends the upload between chunks.
After a crash at most the chunk in flight is sent again.

The parts: wire.py (one request and its reply, headers, metadata, URLs, TLS trust) and
transfer.py (the upload loop, its retries and the file's offset). Import from here.
"""

from agent.evidence.upload import transfer, wire
from agent.evidence.upload.transfer import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    CHUNK_SECONDS,
    CONNECT_TIMEOUT_S,
    DEFAULT_CHUNK_SIZE,
    GIVE_UP_AFTER_S,
    MAX_CONFLICTS,
    MAX_PIECE,
    MAX_RECREATIONS,
    MIN_CHUNK_SIZE,
    MIN_PIECE,
    READ_TIMEOUT_S,
    MiB,
    Uploader,
    UploadResult,
    UploadStopped,
)
from agent.evidence.upload.wire import (
    FILE_CHANGED,
    FOREIGN_LOCATION,
    MAX_NUMBER_DIGITS,
    OFFSET_CONTENT_TYPE,
    PROTOCOL,
    REJECTED,
    TOO_LARGE,
    TUS_VERSION,
    UNAUTHORIZED,
    UNREACHABLE,
    UNTRUSTED,
    UploadError,
    decode_metadata,
    encode_metadata,
    loggable,
    origin,
    session_trusting,
)

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "CHUNK_SECONDS",
    "CONNECT_TIMEOUT_S",
    "DEFAULT_CHUNK_SIZE",
    "FILE_CHANGED",
    "FOREIGN_LOCATION",
    "GIVE_UP_AFTER_S",
    "MAX_CONFLICTS",
    "MAX_NUMBER_DIGITS",
    "MAX_PIECE",
    "MAX_RECREATIONS",
    "MIN_CHUNK_SIZE",
    "MIN_PIECE",
    "OFFSET_CONTENT_TYPE",
    "PROTOCOL",
    "READ_TIMEOUT_S",
    "REJECTED",
    "TOO_LARGE",
    "TUS_VERSION",
    "UNAUTHORIZED",
    "UNREACHABLE",
    "UNTRUSTED",
    "MiB",
    "UploadError",
    "UploadResult",
    "UploadStopped",
    "Uploader",
    "decode_metadata",
    "encode_metadata",
    "loggable",
    "origin",
    "session_trusting",
]

# Not in __all__: the loop's state and signals, which the tus fuzz target (bench/fuzz/tus.py)
# drives directly.
_Transfer = transfer._Transfer
_BearerAuth = wire._BearerAuth
_Transient = wire._Transient
_Conflict = wire._Conflict
_Gone = wire._Gone
