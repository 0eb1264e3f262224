"""The claims of a police request: prepared by the server, read and signed by the officer.

The server fills in what it knows (ids, times, where to upload and with which bearer);
the officer signs the result off the server after reading it in plain words. The shape
check here is the signer's guard: a claims file that is not exactly what the server
prepares is refused before anything is shown or signed.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from contract.timestamps import rfc3339
from contract.token_rules import CLOCK_SKEW, KINDS

__all__ = [
    "DEFAULT_MAX_WINDOW",
    "DEFAULT_VALIDITY",
    "ClaimsError",
    "PreparedClaims",
    "check_claims_shape",
    "claims_at_rest",
    "describe_claims",
    "format_duration",
    "new_upload_token",
    "parse_time",
    "prepare_claims",
    "upload_token_sha256",
    "with_upload_token",
]

# DESIGN.md conventions: request ids any case, agent and camera ids lower-case.
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
AGENT_OR_CAMERA_ID = re.compile(r"[a-z0-9_-]{1,64}")
# The agent's default `police.max_window`; a longer window would be refused there anyway.
DEFAULT_MAX_WINDOW = timedelta(hours=1)
# As registry/config.py `evidence.request_validity`.
DEFAULT_VALIDITY = timedelta(hours=24)
# Widths of the request table's columns (registry/db/schema.py) and a sane bound for the rest.
TEXT_LIMITS = {"iss": 200, "case": 200, "requester": 200, "basis": 1000}
MAX_URL = 2000
MAX_CAMERAS = 64
_REQUIRED = (
    "iss",
    "aud",
    "jti",
    "iat",
    "exp",
    "kind",
    "case",
    "basis",
    "requester",
    "cameras",
    "window",
    "upload",
)
_OPTIONAL = ("nbf",)
# Unicode categories that change how text looks without being seen: controls (line
# breaks), format characters (bidi overrides, zero-width), line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})
_KIND_WORDS = {
    "order": "order (the owner's policy may approve it automatically)",
    "voluntary": "voluntary (the owner is asked and may decline)",
}


class ClaimsError(ValueError):
    """The request cannot be prepared or signed as given; the message says which field and
    why, in words fit for the officer (the web API answers it as 400)."""


@dataclass(frozen=True)
class PreparedClaims:
    claims: dict[str, Any]  # with the upload bearer: for the officer, never stored
    # Only the hash of the upload bearer is stored, so a database leak cannot upload.
    upload_token_sha256: str

    @property
    def request_id(self) -> str:
        jti: str = self.claims["jti"]
        return jti


def new_upload_token() -> str:
    """A fresh upload bearer: 256 random bits."""
    return secrets.token_urlsafe(32)


def upload_token_sha256(token: str) -> str:
    """What the registry keeps of an upload bearer, and compares uploads against."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def claims_at_rest(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims as the registry stores them: everything but the upload bearer, which is
    handed to the officer with the claims and kept only as its hash."""
    upload = {k: v for k, v in dict(claims.get("upload") or {}).items() if k != "token"}
    return {**claims, "upload": upload}


def with_upload_token(claims: Mapping[str, Any], token: str) -> dict[str, Any]:
    """Stored claims with an upload bearer put back in, for the officer to sign."""
    return {**claims, "upload": {**dict(claims["upload"]), "token": token}}


def parse_time(text: object, what: str = "time") -> datetime:
    """An RFC 3339 time with a zone (e.g. 2026-11-27T12:00:00Z), as UTC."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ClaimsError(f"{what} must be an RFC 3339 time like 2026-11-27T12:00:00Z")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ClaimsError(f"{what} {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ClaimsError(f"{what} {text!r} has no time zone; add Z for UTC")
    return moment.astimezone(UTC)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ClaimsError(f"{name} must be a non-empty text")
    # A line break, control or bidi-override character could make the officer's summary
    # say something the token does not (an injected "Cameras ..." line, reversed text).
    if any(unicodedata.category(ch) in _HIDDEN for ch in value):
        raise ClaimsError(f"{name} must not contain line breaks or control characters")
    limit = TEXT_LIMITS.get(name)
    if limit is not None and len(value) > limit:
        raise ClaimsError(f"{name} is longer than {limit} characters")
    return value


def _id(name: str, value: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        letters = "a-z" if pattern is AGENT_OR_CAMERA_ID else "A-Z, a-z"
        rule = f"{letters}, 0-9, '-' and '_'"
        raise ClaimsError(f"{name} {value!r} is not an id ({rule}, 1 to 64 characters)")
    return value


def _upload_url(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise ClaimsError("upload url must be a URL text")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ClaimsError(f"upload url {value!r} is not a valid URL") from None
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    # What agents accept (agent/config/police.py upload_allow): https, plain http only on loopback.
    if not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ClaimsError("upload url must be https:// (http:// only for 127.0.0.1 or localhost)")
    if not parts.hostname or "@" in parts.netloc:
        raise ClaimsError("upload url must name a host and carry no user or password")
    return value


def _cameras(value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise ClaimsError("cameras must name at least one camera")
    if len(value) > MAX_CAMERAS:
        raise ClaimsError(f"at most {MAX_CAMERAS} cameras in one request")
    cameras = [_id("camera", camera, AGENT_OR_CAMERA_ID) for camera in value]
    if len(set(cameras)) != len(cameras):
        raise ClaimsError("a camera is named twice")
    return cameras


def _aware(name: str, moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ClaimsError(f"{name} has no time zone")
    return moment.astimezone(UTC)


def prepare_claims(
    *,
    issuer: str,
    agent_id: str,
    cameras: Sequence[str],
    start: datetime,
    end: datetime,
    kind: str,
    case: str,
    basis: str,
    requester: str,
    upload_url: str,
    now: datetime | None = None,
    validity: timedelta = DEFAULT_VALIDITY,
    max_window: timedelta = DEFAULT_MAX_WINDOW,
) -> PreparedClaims:
    """The claims for the officer to sign, with a new request id and upload bearer;
    ClaimsError when the inputs would make a request no agent accepts."""
    now = _aware("now", now or datetime.now(UTC))
    start, end = _aware("window start", start), _aware("window end", end)
    if kind not in KINDS:
        raise ClaimsError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if end <= start:
        raise ClaimsError("the window must end after it starts")
    # Footage of the future does not exist yet; the officer can ask once it has happened.
    if end > now + CLOCK_SKEW:
        raise ClaimsError("the window lies (partly) in the future; ask once it has passed")
    if end - start > max_window:
        raise ClaimsError(
            f"the window is {format_duration(end - start)}, longer than the "
            f"{format_duration(max_window)} allowed; split it into several requests"
        )
    if validity <= timedelta(0):
        raise ClaimsError("validity must be positive")
    upload_token = new_upload_token()
    claims: dict[str, Any] = {
        "iss": _text("iss", issuer),
        "aud": _id("agent", agent_id, AGENT_OR_CAMERA_ID),
        # Lower-case hex after a letter: never starts with '-', which a command line would
        # take for an option (`camera-agent requests show ID`).
        "jti": "req-" + secrets.token_hex(16),
        "iat": math.floor(now.timestamp()),
        "exp": math.floor((now + validity).timestamp()),
        "kind": kind,
        "case": _text("case", case),
        "basis": _text("basis", basis),
        "requester": _text("requester", requester),
        "cameras": _cameras(list(cameras)),
        "window": {"start": rfc3339(start, "auto"), "end": rfc3339(end, "auto")},
        "upload": {"url": _upload_url(upload_url), "token": upload_token},
    }
    return PreparedClaims(
        claims=claims,
        upload_token_sha256=upload_token_sha256(upload_token),
    )


def _number(name: str, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ClaimsError(f"{name} must be a number of seconds since 1970")
    try:
        datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ClaimsError(f"{name} is out of range") from None
    return value


def _exact_keys(
    name: str, value: object, required: Sequence[str], optional: Sequence[str] = ()
) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ClaimsError(f"{name} must be a JSON object")
    missing = [key for key in required if key not in value]
    if missing:
        raise ClaimsError(f"{name}: missing {', '.join(missing)}")
    extra = sorted(key for key in value if key not in required and key not in optional)
    if extra:
        raise ClaimsError(f"{name}: unexpected {', '.join(extra)}; not what the registry prepares")
    return value


def check_claims_shape(claims: object) -> dict[str, Any]:
    """The claims if they have exactly the fields and types the server prepares (optional
    `nbf` allowed); ClaimsError naming the first field that does not."""
    checked = dict(_exact_keys("claims", claims, _REQUIRED, _OPTIONAL))
    for name in ("iss", "case", "basis", "requester"):
        _text(name, checked[name])
    _id("aud", checked["aud"], AGENT_OR_CAMERA_ID)
    _id("jti", checked["jti"], REQUEST_ID)
    iat, exp = _number("iat", checked["iat"]), _number("exp", checked["exp"])
    if "nbf" in checked:
        _number("nbf", checked["nbf"])
    if exp <= iat:
        raise ClaimsError("exp must come after iat")
    if checked["kind"] not in KINDS:
        raise ClaimsError(f"kind must be one of {', '.join(KINDS)}")
    _cameras(checked["cameras"])
    window = _exact_keys("window", checked["window"], ("start", "end"))
    start = parse_time(window["start"], "window start")
    end = parse_time(window["end"], "window end")
    if end <= start:
        raise ClaimsError("the window must end after it starts")
    upload = _exact_keys("upload", checked["upload"], ("url", "token"))
    _upload_url(upload["url"])
    if not isinstance(upload["token"], str) or not upload["token"]:
        raise ClaimsError("upload token must be a non-empty text")
    return checked


def format_duration(length: timedelta) -> str:
    """`5 min`, `1 h 30 min`, `45 s`, `2 d 3 h`: the largest two units that are not zero."""
    seconds = round(length.total_seconds())
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for label, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {label}")
    return " ".join(parts[:2]) or "0 s"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def describe_claims(claims: object) -> list[str]:
    """The claims in plain words, one line each, for the officer to read before signing."""
    checked = check_claims_shape(claims)
    start = parse_time(checked["window"]["start"])
    end = parse_time(checked["window"]["end"])
    # The same day is written once: "2026-11-27 12:00:00 to 12:05:00 UTC".
    until = end.strftime("%H:%M:%S") if end.date() == start.date() else _when(end)
    expires = datetime.fromtimestamp(checked["exp"], UTC)
    lines = [
        f"Request {checked['jti']} from {checked['iss']}",
        f"Agent {checked['aud']}, cameras {', '.join(checked['cameras'])}",
        f"Window {_when(start)} to {until} UTC ({format_duration(end - start)})",
        f"Kind: {_KIND_WORDS[checked['kind']]}",
        f"Case {checked['case']}, legal basis: {checked['basis']}",
        f"Requested by {checked['requester']}",
        f"Uploads to {checked['upload']['url']}",
        f"Issued {_when(datetime.fromtimestamp(checked['iat'], UTC))} UTC",
    ]
    if "nbf" in checked:
        lines.append(f"Not valid before {_when(datetime.fromtimestamp(checked['nbf'], UTC))} UTC")
    lines.append(f"Valid until {_when(expires)} UTC")
    return lines
