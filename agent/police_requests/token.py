"""Verifying a police request token, in the order and with the reasons of DESIGN.md.

Nothing about the request is believed before every check has passed, and no footage is
read here. Each failure raises Rejected with its reason code; the first failing check
wins, in this order: size, structure, algorithm, type, key, signature, claims
(their shape, audience, time, replay, cameras, window, upload URL).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.audit import REQUEST_ID_RE
from contract import jws
from contract.keyset import KeySet
from contract.timestamps import rfc3339
from contract.token_rules import (
    CLOCK_SKEW,
    KINDS,
    MAX_PRESERVE,
    MAX_TOKEN_BYTES,
    PRESERVE,
    TOKEN_TYPE,
)

MAX_JSON_DEPTH = 6
_TEXT_CLAIMS = ("iss", "aud", "jti", "case", "basis", "requester")
_TIME_CLAIMS = ("iat", "exp")


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Request:
    """A request whose token passed every check."""

    id: str  # jti
    issuer: str
    kind: str
    case: str
    basis: str
    requester: str
    cameras: tuple[str, ...]
    start: datetime
    end: datetime
    upload_url: str
    upload_token: str
    issued: datetime
    expires: datetime
    claims: dict[str, Any]
    # The token as it arrived: checked again once the clock is synchronised (desk).
    token: bytes = b""

    def summary(self) -> str:
        """For the log: what it asks, without its upload URL or bearer."""
        return (
            f"{self.kind}, case {self.case}, by {self.requester}: cameras "
            f"{', '.join(self.cameras)}, {rfc3339(self.start)} to {rfc3339(self.end)}"
        )

    def audit_detail(self) -> dict[str, object]:
        """The `received` entry's detail (docs/audit.md)."""
        return {
            "kind": self.kind,
            "case": self.case,
            "basis": self.basis,
            "requester": self.requester,
            "issuer": self.issuer,
            "cameras": list(self.cameras),
            "window": {"start": rfc3339(self.start), "end": rfc3339(self.end)},
        }


class KeyRing(Protocol):
    """The police key set held (agent/police_requests/keyset.py)."""

    def current(self) -> KeySet | None: ...

    def apply_arrived(self) -> None: ...


@dataclass(frozen=True)
class Policy:
    """What this agent accepts; built from the config."""

    agent_id: str
    police_keys: Mapping[str, Ed25519PublicKey]  # kid (RFC 7638 thumbprint) -> key
    cameras: frozenset[str]
    max_window: timedelta
    upload_allow: tuple[str, ...]
    # The keys the police published in a root-signed key set, when the owner pinned a root.
    key_sets: KeyRing | None = None


def status_id(token: bytes) -> str:
    """Where a rejected token's status goes: its own hash, so a replay cannot overwrite
    the status of the request it copies."""
    return hashlib.sha256(token).hexdigest()[:16]


def verify(
    token: bytes,
    policy: Policy,
    *,
    now: datetime,
    seen: Callable[[str], bool],
    oldest_footage: datetime | None,
) -> Request:
    """The request, or Rejected. `seen(jti)` says whether the id was used before;
    `oldest_footage` is the oldest moment any footage could exist (None: none yet)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise Rejected("too_large", f"{len(token)} bytes, more than {MAX_TOKEN_BYTES}")
    try:
        parsed = jws.parse_compact(token, MAX_JSON_DEPTH)
    except jws.MalformedJws as exc:
        raise Rejected("malformed", str(exc)) from None
    header, claims = parsed.header, parsed.claims
    signing_input, signature = parsed.signing_input, parsed.signature
    if header.get("alg") != "EdDSA":
        raise Rejected("bad_algorithm", f"alg {header.get('alg')!r}; only EdDSA is accepted")
    if header.get("typ") != TOKEN_TYPE:
        raise Rejected("bad_type", f"typ {header.get('typ')!r}, not {TOKEN_TYPE}")
    key = police_key(header.get("kid"), policy, now)
    if not jws.verify_signature(signing_input, signature, key):
        raise Rejected("bad_signature", "the signature does not verify with that police key")
    request = _check_claims(claims, policy, now, seen, oldest_footage)
    return replace(request, token=token)


def police_key(kid: object, policy: Policy, now: datetime) -> Ed25519PublicKey:
    """The key a token names: pinned in the config, or in the held key set while it is not
    stale. A kid the set revokes is refused even when pinned: the police revoke a key
    that leaked, and an owner's old pin must not keep it alive (docs/requests.md)."""
    if not isinstance(kid, str):
        raise Rejected("unknown_key", f"kid {kid!r} is not a pinned police key")
    held = policy.key_sets.current() if policy.key_sets is not None else None
    if held is not None and kid in held.revoked:
        raise Rejected("revoked_key", f"kid {kid!r} is revoked by police key set {held.version}")
    key = policy.police_keys.get(kid)
    if key is not None:
        return key
    if held is not None and kid in held.keys:
        if held.stale(now):
            raise Rejected(
                "unknown_key",
                f"kid {kid!r} is only in police key set {held.version}, stale since "
                f"{held.expires.isoformat()}",
            )
        return held.keys[kid]
    raise Rejected("unknown_key", f"kid {kid!r} is not a pinned police key")


def check_audience_and_times(
    audience: str,
    policy: Policy,
    now: datetime,
    issued: datetime,
    expires: datetime,
    not_before: datetime,
) -> None:
    """For this agent, and valid now (within the clock skew)? Else Rejected; the request
    token and the withdrawal check these in the same order with the same reasons."""
    if audience != policy.agent_id:
        raise Rejected("wrong_audience", f"for agent {audience!r}, not this one")
    if expires <= now - CLOCK_SKEW:
        raise Rejected("expired", f"expired at {expires.isoformat()}")
    if not_before > now + CLOCK_SKEW or issued > now + CLOCK_SKEW:
        raise Rejected("not_yet_valid", f"not valid before {not_before.isoformat()}")


def _instant(value: Any) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _check_claims(
    claims: dict[str, Any],
    policy: Policy,
    now: datetime,
    seen: Callable[[str], bool],
    oldest_footage: datetime | None,
) -> Request:
    for name in _TEXT_CLAIMS:
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise Rejected("claims_invalid", f"{name} missing or not a non-empty string")
    # The request id names a folder of evidence and an MQTT topic level: only the id
    # shape of the contract, never a path (`../keys`) or a wildcard (`+`, `#`).
    if not REQUEST_ID_RE.fullmatch(claims["jti"]):
        raise Rejected("claims_invalid", "jti must match ^[A-Za-z0-9_-]{1,64}$")
    for name in (*_TIME_CLAIMS, *(("nbf",) if "nbf" in claims else ())):
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Rejected("claims_invalid", f"{name} missing or not a number")
    if claims.get("kind") not in (*KINDS, PRESERVE):
        raise Rejected("claims_invalid", f"kind must be one of {', '.join(KINDS)}, {PRESERVE}")
    cameras = claims.get("cameras")
    if (
        not isinstance(cameras, list)
        or not cameras
        or not all(isinstance(c, str) and c for c in cameras)
    ):
        raise Rejected("claims_invalid", "cameras must be a non-empty list of camera ids")
    if len(set(cameras)) != len(cameras):
        raise Rejected("claims_invalid", "a camera id is listed twice")
    window, upload = claims.get("window"), claims.get("upload")
    if claims["kind"] == PRESERVE:
        # A preservation sends nothing: an upload in it would be a request in disguise.
        if upload is not None:
            raise Rejected("claims_invalid", "a preservation carries no upload")
        upload = {"url": "", "token": ""}
        if claims["exp"] - claims["iat"] > MAX_PRESERVE.total_seconds():
            days = MAX_PRESERVE.days
            raise Rejected("claims_invalid", f"a preservation holds footage {days} days at most")
    if not isinstance(window, dict) or not isinstance(upload, dict):
        raise Rejected("claims_invalid", "window and upload must be objects")
    if not isinstance(upload.get("url"), str) or not isinstance(upload.get("token"), str):
        raise Rejected("claims_invalid", "upload needs url and token strings")
    try:
        issued, expires = _instant(claims["iat"]), _instant(claims["exp"])
        not_before = _instant(claims["nbf"]) if "nbf" in claims else issued
    except (OverflowError, OSError, ValueError):
        raise Rejected("claims_invalid", "a time claim is out of range") from None

    check_audience_and_times(claims["aud"], policy, now, issued, expires, not_before)
    if seen(claims["jti"]):
        raise Rejected("replayed", f"request id {claims['jti']!r} was used before")
    unknown = [c for c in cameras if c not in policy.cameras]
    if unknown:
        raise Rejected("unknown_camera", f"no camera {', '.join(map(repr, unknown))} here")
    start, end = _window(window, now, oldest_footage)
    length, longest = (end - start).total_seconds(), policy.max_window.total_seconds()
    if length > longest:
        raise Rejected("window_too_long", f"{length:.0f} s, more than {longest:.0f} s")
    if claims["kind"] != PRESERVE and not upload_allowed(upload["url"], policy.upload_allow):
        raise Rejected("upload_not_allowed", "the upload URL is not under an allowed prefix")
    return Request(
        id=claims["jti"],
        issuer=claims["iss"],
        kind=claims["kind"],
        case=claims["case"],
        basis=claims["basis"],
        requester=claims["requester"],
        cameras=tuple(cameras),
        start=start,
        end=end,
        upload_url=upload["url"],
        upload_token=upload["token"],
        issued=issued,
        expires=expires,
        claims=claims,
    )


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.astimezone(UTC)


def _window(
    window: dict[str, Any], now: datetime, oldest_footage: datetime | None
) -> tuple[datetime, datetime]:
    try:
        start, end = _parse_time(window.get("start")), _parse_time(window.get("end"))
    except (ValueError, OverflowError):  # Overflow: in UTC before year 1 or after 9999
        raise Rejected("window_invalid", "start and end must be RFC 3339 times") from None
    if end <= start:
        raise Rejected("window_invalid", "the window ends before it starts")
    check_window_time(start, end, now, oldest_footage)
    return start, end


def check_window_time(
    start: datetime, end: datetime, now: datetime, oldest_footage: datetime | None
) -> None:
    """The window's checks that depend on the time: Rejected (window_invalid) or None."""
    if start > now + CLOCK_SKEW:
        raise Rejected("window_invalid", "the window lies in the future")
    if end > now + CLOCK_SKEW:
        # Footage that does not exist yet cannot be exported; a window that ends later
        # would be cut short without anyone noticing.
        raise Rejected("window_invalid", "the window ends in the future")
    if oldest_footage is None or end <= oldest_footage:
        raise Rejected("window_invalid", "the window ends before any footage here begins")


def upload_allowed(url: str, allow: tuple[str, ...]) -> bool:
    """True when `url`, normalised, lies under one of the allow-listed prefixes: same
    scheme, same host and port exactly, path under the prefix's path; no userinfo, no
    `..`, no encoded tricks."""
    try:
        target = urlsplit(url)
        port = target.port
    except ValueError:
        return False
    if target.username is not None or target.password is not None or "@" in target.netloc:
        return False
    if "\\" in url or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return False
    path = unquote(target.path)
    if ".." in path.split("/") or "%" in path:  # double encoding
        return False
    normal = posixpath.normpath(path) if path else "/"
    where = (target.scheme, (target.hostname or "").lower(), port or _default_port(target.scheme))
    for prefix in allow:
        base = urlsplit(prefix)
        allowed = (
            base.scheme,
            (base.hostname or "").lower(),
            base.port or _default_port(base.scheme),
        )
        if where != allowed:
            continue
        if target.scheme != "https" and (base.hostname or "") not in ("127.0.0.1", "localhost"):
            continue
        root = posixpath.normpath(unquote(base.path) or "/")
        if normal == root or normal.startswith(root.rstrip("/") + "/"):
            return True
    return False


def _default_port(scheme: str) -> int | None:
    return {"https": 443, "http": 80}.get(scheme)
