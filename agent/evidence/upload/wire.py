"""tus 1.0 on the wire, as the agent's client speaks it: one request and its reply sorted
into outcomes, and the headers, metadata, URLs and TLS trust it needs.

`send` makes one request with no redirects followed and turns what comes back into a
response (2xx), a permanent UploadError, or the signals the upload loop (transfer.py)
handles: _Transient (wait and retry), _Conflict (re-read the offset), _Gone (create anew).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from agent.errors import AgentError
from agent.evidence.bandwidth import TokenBucket
from contract import jws

TUS_VERSION: Final = "1.0.0"
OFFSET_CONTENT_TYPE: Final = "application/offset+octet-stream"
_ERROR_BODY_CHARS = 200
# Offsets and sizes count the bytes of one file: more than 20 digits (2^64) is no number a
# server means, and Python refuses to read one of over 4,300 digits.
MAX_NUMBER_DIGITS: Final = 20
_TRANSIENT_STATUS = frozenset({408, 423, 429})
_CONFLICT_STATUS = frozenset({409, 460})
_GONE_STATUS = frozenset({404, 410})

# UploadError reasons.
UNAUTHORIZED: Final = "unauthorized"  # 401/403: the request's upload token is refused
REJECTED: Final = "rejected"  # another 4xx, or a redirect
TOO_LARGE: Final = "too_large"  # 413, or over the server's Tus-Max-Size
FOREIGN_LOCATION: Final = "foreign_location"  # an upload URL outside the endpoint's origin
PROTOCOL: Final = "protocol"  # the server broke tus 1.0 (offsets, headers)
UNREACHABLE: Final = "unreachable"  # no progress for give_up_after_s
FILE_CHANGED: Final = "file_changed"  # the local file changed size while being sent
UNTRUSTED: Final = "untrusted_certificate"  # the server's TLS certificate did not verify


class UploadError(AgentError):
    """The upload cannot succeed as asked; `reason` is one of this module's reasons."""

    def __init__(self, message: str, reason: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class _Transient(Exception):
    """Worth retrying after a backoff: network trouble or the server's temporary error."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Conflict(Exception):
    """The server's offset differs from ours, or a chunk's checksum failed: re-read it."""


class _Gone(Exception):
    """The server does not have the upload (any more)."""


class _BearerAuth(requests.auth.AuthBase):
    """Bearer token as `auth`, so requests never replaces it with credentials from ~/.netrc."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class _ThrottledBody:
    """A chunk as a request body: pieces cleared by the bucket, counted as they go.

    `__len__` makes requests send a Content-Length instead of chunked encoding.
    """

    def __init__(self, data: bytes, bucket: TokenBucket | None, piece: int) -> None:
        self._data = data
        self._bucket = bucket
        self._piece = piece
        self.sent = 0

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self._data)
        for start in range(0, len(view), self._piece):
            piece = view[start : start + self._piece]
            if self._bucket is not None:
                self._bucket.take(len(piece))
            self.sent += len(piece)
            yield bytes(piece)


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """Upload-Metadata: `key base64(value)` pairs, comma-separated (tus 1.0)."""
    pairs = []
    for key, value in metadata.items():
        if not key or not key.isascii() or any(ch in key for ch in " ,") or not key.isprintable():
            raise ValueError(f"invalid tus metadata key {key!r}")
        pairs.append(f"{key} {base64.b64encode(value.encode()).decode('ascii')}")
    return ",".join(pairs)


def decode_metadata(header: str) -> dict[str, str]:
    """The inverse of encode_metadata; values that are not base64 UTF-8 are left out."""
    result: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key:
            continue
        try:
            result[key] = jws.b64_decode(value.strip()).decode()
        except ValueError:
            continue
    return result


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in; ValueError if not http(s)
    or if it carries userinfo."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {loggable(url)}")
    if "@" in parts.netloc:
        raise ValueError("URL with userinfo")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def loggable(url: str) -> str:
    """Scheme, host and path only: no userinfo, query or fragment in logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


class _ExtraCaAdapter(requests.adapters.HTTPAdapter):
    """HTTPS that trusts one more CA besides the usual ones (requests' `verify=path` would
    trust that CA instead of them)."""

    def __init__(self, ca_file: Path) -> None:
        self._context = ssl.create_default_context()
        self._context.load_verify_locations(cafile=str(ca_file))
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def session_trusting(ca_file: Path | None) -> requests.Session:
    """A session for uploads; with `ca_file`, servers signed by that CA are trusted too."""
    session = requests.Session()
    if ca_file is not None:
        session.mount("https://", _ExtraCaAdapter(ca_file))
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    headers: dict[str, str],
    body: _ThrottledBody | None = None,
    *,
    auth: _BearerAuth,
    timeout: tuple[float, float],
) -> requests.Response:
    """One tus request: the 2xx response, or UploadError, _Transient, _Conflict, _Gone."""
    headers = {"Tus-Resumable": TUS_VERSION, **headers}
    try:
        response = session.request(
            method,
            url,
            headers=headers,
            data=body,
            auth=auth,
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.exceptions.SSLError as exc:
        why = _certificate_problem(exc)
        if why is None:  # a TLS handshake cut short: the network, not the certificate
            raise _Transient(f"{method} failed: TLS error") from exc
        # A certificate that does not verify is a setting to fix, not a network blip:
        # retrying for an hour would only hide it.
        raise UploadError(
            f"{method} {loggable(url)}: the server's TLS certificate is not trusted: {why} "
            "(a private CA goes in police.upload_ca_file)",
            UNTRUSTED,
        ) from exc
    except (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
    ) as exc:
        raise _Transient(f"{method} failed: {type(exc).__name__}") from exc
    except requests.RequestException as exc:
        raise UploadError(f"{method} {loggable(url)}: {exc}", PROTOCOL) from exc
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = f"{method} {loggable(url)}: HTTP {status} {_body_excerpt(response)}".rstrip()
    if status >= 500 or status in _TRANSIENT_STATUS:
        raise _Transient(f"HTTP {status}", _retry_after(response))
    if status in _CONFLICT_STATUS:
        raise _Conflict(f"HTTP {status}")
    if status in _GONE_STATUS and method in ("HEAD", "PATCH"):
        raise _Gone
    if status in (401, 403):
        raise UploadError(f"the upload token was refused: {detail}", UNAUTHORIZED, status)
    if status == 413:
        raise UploadError(f"the file is too large for the server: {detail}", TOO_LARGE, status)
    if 300 <= status < 400:
        raise UploadError(f"redirect refused: {detail}", REJECTED, status)
    raise UploadError(f"the server refused the upload: {detail}", REJECTED, status)


def _certificate_problem(exc: BaseException) -> str | None:
    """The verification failure inside requests' wrapped exceptions, if that is the cause."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or current)
        pending += [a for a in current.args if isinstance(a, BaseException)]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return None


def _header_list(response: requests.Response, name: str) -> list[str]:
    items = (item.strip().lower() for item in response.headers.get(name, "").split(","))
    return [item for item in items if item]


def _whole_number(value: str) -> int | None:
    """A header's non-negative whole number, or None: ASCII digits only ('²'.isdigit() is
    True, but int('²') raises), at most MAX_NUMBER_DIGITS of them."""
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > MAX_NUMBER_DIGITS:
        return None
    return int(value)


def _int_header(response: requests.Response, name: str) -> int | None:
    return _whole_number(response.headers.get(name, ""))


def _retry_after(response: requests.Response) -> float | None:
    seconds = _whole_number(response.headers.get("Retry-After", ""))
    return float(seconds) if seconds is not None else None


def _body_excerpt(response: requests.Response) -> str:
    # Read as UTF-8 whatever charset the reply names: an excerpt for a log needs no more,
    # and requests' .text raises on a charset it cannot look up as a name (one with a NUL).
    text = response.content[: _ERROR_BODY_CHARS * 4].decode("utf-8", "replace")
    return " ".join(text[:_ERROR_BODY_CHARS].split())
