"""One resumable upload: the loop of tus exchanges from creation or resume to the last
byte, its retries with capped, jittered backoff, and the file's offset as the server
confirmed it.

`Uploader` holds what uploads share (session, bandwidth cap, chunk size, timeouts,
backoff); `_Transfer` is the state of one upload() call. What goes over the wire and how
a reply is sorted into outcomes is wire.py's.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final
from urllib.parse import urljoin

import requests

from agent.errors import AgentError
from agent.evidence.bandwidth import BURST_SECONDS, TokenBucket
from agent.evidence.upload.wire import (
    FILE_CHANGED,
    FOREIGN_LOCATION,
    OFFSET_CONTENT_TYPE,
    PROTOCOL,
    REJECTED,
    TOO_LARGE,
    TUS_VERSION,
    UNREACHABLE,
    UploadError,
    _BearerAuth,
    _Conflict,
    _Gone,
    _header_list,
    _int_header,
    _ThrottledBody,
    _Transient,
    _whole_number,
    decode_metadata,
    encode_metadata,
    loggable,
    origin,
    send,
)
from contract.common.backoff import Backoff

log = logging.getLogger(__name__)

MiB: Final = 1 << 20
# Big enough that one request per chunk costs nothing next to the data, small enough to
# hold in memory on a Pi (the checksum header needs the whole chunk before it is sent).
DEFAULT_CHUNK_SIZE: Final = 4 * MiB
# Under a low bandwidth cap chunks shrink so one lasts at most this long: `stop` is
# honoured between chunks, a crash re-sends at most one, and servers cut request bodies
# that take minutes (Node's http server after 300 s).
CHUNK_SECONDS: Final = 10.0
MIN_CHUNK_SIZE: Final = 64 * 1024
# Pieces handed to the socket between bucket checks.
MAX_PIECE: Final = 64 * 1024
MIN_PIECE: Final = 4 * 1024
# A network outage is waited out with delays growing to BACKOFF_CAP_S; after
# GIVE_UP_AFTER_S without progress the upload fails (the agent retries it after a
# restart, from the server's offset).
BACKOFF_BASE_S: Final = 1.0
BACKOFF_CAP_S: Final = 30.0
GIVE_UP_AFTER_S: Final = 3600.0
CONNECT_TIMEOUT_S: Final = 10.0
READ_TIMEOUT_S: Final = 60.0
# Offset or checksum mismatches in a row without progress before the server is not
# believed any more; uploads re-created in one run (the server dropping them) likewise.
MAX_CONFLICTS: Final = 5
MAX_RECREATIONS: Final = 3


class UploadStopped(AgentError):
    """`stop` was set; the upload at `url` can be resumed from the server's offset."""

    def __init__(self, url: str | None, offset: int) -> None:
        super().__init__(f"upload stopped at byte {offset}")
        self.url = url
        self.offset = offset


@dataclass(frozen=True)
class UploadResult:
    url: str
    bytes_sent: int  # PATCH body bytes sent in this call, re-sent ones included
    total: int
    resumed_from: int  # the server's offset when this call began sending


class Uploader:
    """Uploads files with tus 1.0; one upload at a time per Uploader, the cap shared."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        rate_limit_bytes_per_s: int | None = None,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        give_up_after_s: float = GIVE_UP_AFTER_S,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
        url_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        """`url_allowed`, when given, must also approve every upload URL (the caller's
        allow-list); an origin other than the endpoint's is refused regardless."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.give_up_after_s = give_up_after_s
        self.url_allowed = url_allowed
        self.bucket: TokenBucket | None = None
        self.chunk_size = chunk_size
        self.piece_size = MAX_PIECE
        if rate_limit_bytes_per_s is not None:
            if rate_limit_bytes_per_s <= 0:
                raise ValueError("rate_limit_bytes_per_s must be positive")
            self.piece_size = max(MIN_PIECE, min(MAX_PIECE, rate_limit_bytes_per_s // 20))
            self.bucket = TokenBucket(
                rate_limit_bytes_per_s,
                burst=max(self.piece_size, rate_limit_bytes_per_s * BURST_SECONDS),
            )
            longest = max(MIN_CHUNK_SIZE, int(rate_limit_bytes_per_s * CHUNK_SECONDS))
            self.chunk_size = min(chunk_size, longest)

    def upload(
        self,
        path: Path,
        *,
        endpoint: str,
        bearer_token: str,
        metadata: Mapping[str, str],
        resume_url: str | None = None,
        on_created: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> UploadResult:
        """Send `path` to the tus `endpoint`, resuming `resume_url` if the server still
        has it. `on_created(url)` runs before the first byte is sent: persist the URL
        there. Raises UploadError (permanent) or UploadStopped."""
        transfer = _Transfer(
            self,
            path,
            endpoint=endpoint,
            auth=_BearerAuth(bearer_token),
            metadata=dict(metadata),
            on_created=on_created or (lambda _url: None),
            on_progress=on_progress or (lambda _done, _total: None),
            stop=stop or threading.Event(),
        )
        return transfer.run(resume_url)


class _Transfer:
    """The state of one upload() call."""

    def __init__(
        self,
        uploader: Uploader,
        path: Path,
        *,
        endpoint: str,
        auth: _BearerAuth,
        metadata: dict[str, str],
        on_created: Callable[[str], None],
        on_progress: Callable[[int, int], None],
        stop: threading.Event,
    ) -> None:
        self._up = uploader
        self._path = path
        self._endpoint = endpoint
        self._auth = auth
        self._metadata = metadata
        self._metadata_header = encode_metadata(metadata)
        self._on_created = on_created
        self._on_progress = on_progress
        self._stop = stop
        self._total = path.stat().st_size
        try:
            self._origin = origin(endpoint)
        except ValueError as exc:
            raise UploadError(f"bad tus endpoint: {exc}", REJECTED) from None
        self._checksum: bool | None = None  # learnt from OPTIONS
        self._url: str | None = None
        self._offset: int | None = None  # None: ask the server
        self._confirmed = 0  # the last offset the server confirmed
        self._resumed_from: int | None = None
        self._sent = 0
        self._backoff = Backoff(uploader.backoff_base_s, uploader.backoff_cap_s)
        self._last_progress = time.monotonic()
        self._conflicts = 0
        self._recreations = 0

    # --- the loop ------------------------------------------------------------------------

    def run(self, resume_url: str | None) -> UploadResult:
        if resume_url is not None:
            self._url = self._checked_url(resume_url, "the saved upload URL")
        with open(self._path, "rb") as file:
            while True:
                if self._stop.is_set():
                    raise UploadStopped(self._url, self._confirmed)
                try:
                    if self._step(file):
                        break
                except _Transient as exc:
                    self._wait_out(exc)
                except _Conflict as exc:
                    self._conflict(exc)
                except _Gone:
                    self._gone()
        assert self._url is not None
        log.info(
            "uploaded %s (%d bytes, %d sent now) to %s",
            self._path.name,
            self._total,
            self._sent,
            loggable(self._url),
        )
        return UploadResult(self._url, self._sent, self._total, self._resumed_from or 0)

    def _step(self, file: IO[bytes]) -> bool:
        """One exchange with the server; True once it holds the whole file."""
        if self._checksum is None:
            self._checksum = self._discover()
        if self._url is None:
            self._url = self._create()
            self._offset = self._confirmed = 0
            self._on_created(self._url)
        if self._offset is None:
            self._offset = self._confirmed = self._head(self._url)
            self._on_progress(self._offset, self._total)
        if self._resumed_from is None:
            self._resumed_from = self._offset
        if self._offset >= self._total:
            return True
        before = self._offset
        self._offset = self._confirmed = self._patch(file, self._url, self._offset)
        if self._offset > before:
            self._progressed()
        self._on_progress(self._offset, self._total)
        return self._offset >= self._total

    def _progressed(self) -> None:
        self._last_progress = time.monotonic()
        self._backoff.reset()
        self._conflicts = 0

    def _wait_out(self, exc: _Transient) -> None:
        self._offset = None  # the server may have stored part of what was in flight
        stalled = time.monotonic() - self._last_progress
        if stalled > self._up.give_up_after_s:
            raise UploadError(
                f"no upload progress for {stalled:.0f}s, giving up: {exc}", UNREACHABLE
            ) from exc
        delay = self._backoff.next()
        if exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, self._up.backoff_cap_s))
        log.warning("upload of %s: %s; retrying in %.1fs", self._path.name, exc, delay)
        if self._stop.wait(delay):
            raise UploadStopped(self._url, self._confirmed)

    def _conflict(self, exc: _Conflict) -> None:
        self._offset = None
        self._conflicts += 1
        if self._conflicts > MAX_CONFLICTS:
            raise UploadError(
                f"{self._conflicts} offset/checksum mismatches in a row: {exc}", PROTOCOL
            )
        log.warning("upload of %s: %s; re-reading the server's offset", self._path.name, exc)

    def _gone(self) -> None:
        self._recreations += 1
        if self._recreations > MAX_RECREATIONS:
            raise UploadError("the server keeps dropping the upload", PROTOCOL)
        log.info("upload of %s: the server no longer has it; creating it anew", self._path.name)
        self._url = None
        self._offset = None

    # --- the requests --------------------------------------------------------------------

    def _request(
        self, method: str, url: str, headers: dict[str, str], body: _ThrottledBody | None = None
    ) -> requests.Response:
        return send(
            self._up.session,
            method,
            url,
            headers,
            body,
            auth=self._auth,
            timeout=self._up.timeout,
        )

    def _discover(self) -> bool:
        """OPTIONS: whether to send sha256 checksums; a server without OPTIONS gets none."""
        try:
            response = self._request("OPTIONS", self._endpoint, {})
        except UploadError as exc:
            log.info("tus OPTIONS refused (%s); sending without checksums", exc)
            return False
        versions = _header_list(response, "Tus-Version")
        if versions and TUS_VERSION not in versions:
            raise UploadError(f"the server speaks tus {versions}, not {TUS_VERSION}", PROTOCOL)
        max_size = _whole_number(response.headers.get("Tus-Max-Size", ""))
        if max_size is not None and self._total > max_size:
            raise UploadError(
                f"{self._total} bytes is over the server's Tus-Max-Size {max_size}", TOO_LARGE
            )
        return "checksum" in _header_list(response, "Tus-Extension") and "sha256" in (
            _header_list(response, "Tus-Checksum-Algorithm")
        )

    def _create(self) -> str:
        headers = {"Upload-Length": str(self._total)}
        if self._metadata_header:  # an empty Upload-Metadata header is invalid
            headers["Upload-Metadata"] = self._metadata_header
        response = self._request("POST", self._endpoint, headers)
        location = response.headers.get("Location")
        if response.status_code != 201 or not location:
            raise UploadError(
                f"creation answered HTTP {response.status_code} without a Location", PROTOCOL
            )
        try:
            joined = urljoin(self._endpoint, location)
        except ValueError as exc:  # not a URL at all, e.g. an unclosed '[' of an IPv6 host
            raise UploadError(
                f"the server's Location is refused: {exc}", FOREIGN_LOCATION
            ) from None
        url = self._checked_url(joined, "the server's Location")
        log.info("upload of %s created at %s", self._path.name, loggable(url))
        return url

    def _checked_url(self, url: str, what: str) -> str:
        try:
            same = origin(url) == self._origin
        except ValueError as exc:
            raise UploadError(f"{what} is refused: {exc}", FOREIGN_LOCATION) from None
        if not same:
            raise UploadError(
                f"{what} {loggable(url)} is outside the endpoint's origin "
                f"{loggable(self._endpoint)}; refusing to send evidence there",
                FOREIGN_LOCATION,
            )
        if self._up.url_allowed is not None and not self._up.url_allowed(url):
            raise UploadError(f"{what} {loggable(url)} is not allow-listed", FOREIGN_LOCATION)
        return url

    def _head(self, url: str) -> int:
        response = self._request("HEAD", url, {})
        offset = _int_header(response, "Upload-Offset")
        length = _int_header(response, "Upload-Length")
        if offset is None:
            raise UploadError("HEAD answered without a valid Upload-Offset", PROTOCOL)
        if length is not None and length != self._total:
            log.warning(
                "upload at %s is %d bytes long, the file %d; not resuming it",
                loggable(url),
                length,
                self._total,
            )
            raise _Gone
        theirs = decode_metadata(response.headers.get("Upload-Metadata", "")).get("sha256")
        ours = self._metadata.get("sha256")
        if theirs is not None and ours is not None and theirs != ours:
            log.warning("upload at %s is of another file; not resuming it", loggable(url))
            raise _Gone
        if offset > self._total:
            raise UploadError(f"the server's offset {offset} is past the end", PROTOCOL)
        return offset

    def _patch(self, file: IO[bytes], url: str, offset: int) -> int:
        end = min(offset + self._up.chunk_size, self._total)
        file.seek(offset)
        data = file.read(end - offset)
        if len(data) != end - offset:
            raise UploadError(f"{self._path} shrank while being uploaded", FILE_CHANGED)
        headers = {"Upload-Offset": str(offset), "Content-Type": OFFSET_CONTENT_TYPE}
        if self._checksum:
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
            headers["Upload-Checksum"] = f"sha256 {digest}"
        body = _ThrottledBody(data, self._up.bucket, self._up.piece_size)
        try:
            response = self._request("PATCH", url, headers, body)
        finally:
            self._sent += body.sent
        new_offset = _int_header(response, "Upload-Offset")
        if new_offset is None:
            raise _Conflict("PATCH answered without a valid Upload-Offset")
        if new_offset == offset:
            raise _Conflict("PATCH accepted none of the chunk")
        if not offset < new_offset <= end:
            raise UploadError(
                f"the server moved the offset from {offset} to {new_offset} for bytes up to {end}",
                PROTOCOL,
            )
        return new_offset
