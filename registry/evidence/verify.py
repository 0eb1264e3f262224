"""Verification of an evidence package folder: manifest.jws and the files it lists.

Pure (no database, no network), so the registry's intake and the offline
`camera-registry evidence verify` used for court reach the same verdict from the same
folder. The contract is DESIGN.md "Evidence package": a compact JWS (EdDSA, typ
camreg-manifest+jwt, kid = the device key's RFC 7638 thumbprint) whose payload is the
manifest JSON, schema camreg.evidence.v1 or v2, listing every file with its SHA-256 and
size. v2 is v1 with optional members added (the cameras' `clocks`, manifest_clocks.py;
the segment `chain`, manifest_chain.py; the `device_clock`, manifest_device_clock.py);
unknown members are ignored in both, so later v2 additions verify here too.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract import jws
from contract.common.files import sha256_file
from contract.strict_json import no_duplicate_keys
from registry.evidence.manifest_chain import chain_problems, check_chain
from registry.evidence.manifest_clocks import clock_problems, clock_words
from registry.evidence.manifest_device_clock import device_clock_problems, device_clock_words
from registry.evidence.timestamp import STAMP_NAME, TSA_ROOTS_NAME, check_stamp

MANIFEST_SCHEMA = "camreg.evidence.v1"
MANIFEST_SCHEMA_V2 = "camreg.evidence.v2"
MANIFEST_SCHEMAS = (MANIFEST_SCHEMA, MANIFEST_SCHEMA_V2)
MANIFEST_TYPE = "camreg-manifest+jwt"
SIGNED_MANIFEST_NAME = "manifest.jws"
UNSIGNED_MANIFEST_NAME = "manifest.json"  # the agent's unsigned copy; manifest.jws counts
KEY_FILE_NAME = "agent-key.pem"  # the registry's copy of the enrolled key, for offline checks
# Names that belong to a package besides its evidence files (the registry writes the last
# three: nobody may upload them).
PACKAGE_NAMES = frozenset(
    {SIGNED_MANIFEST_NAME, UNSIGNED_MANIFEST_NAME, KEY_FILE_NAME, STAMP_NAME, TSA_ROOTS_NAME}
)
REGISTRY_NAMES = frozenset({KEY_FILE_NAME, STAMP_NAME, TSA_ROOTS_NAME})

FILENAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A manifest lists files, not footage: 32 MiB is tens of thousands of entries, and the
# limit keeps a hostile file from being read into memory whole.
MAX_MANIFEST_BYTES = 32 << 20
WINDOW_TOLERANCE_S = 0.001


def safe_filename(name: str) -> bool:
    """A plain file name: no path parts, no leading dot (hidden files, `.`, `..`)."""
    return FILENAME.fullmatch(name) is not None and not name.startswith(".")


@dataclass(frozen=True)
class Verdict:
    """The outcome: `verified` only if every check passed. `findings` are problems (and
    notes on files outside the signed evidence), `checked` what was found in order."""

    verified: bool
    findings: tuple[str, ...]
    checked: tuple[str, ...]
    manifest: dict[str, Any] | None
    key_thumbprint: str | None  # of the key the signature was checked against
    # What a v2 manifest says of each camera's own clock, in words (manifest_clocks.py).
    clocks: tuple[str, ...] = ()
    # What the segment chain proves, per camera (manifest_chain.py).
    chain: tuple[str, ...] = ()
    # The device's own clock when the package was made (manifest_device_clock.py).
    device_clock: tuple[str, ...] = ()
    # What the RFC 3161 time stamp says (timestamp.py), or that there is none.
    stamp: tuple[str, ...] = ()

    def text(self) -> str:
        """Plain words for people: the outcome, then every finding, then what held."""
        head = "verified" if self.verified else "NOT verified"
        lines = [f"{head}: {len(self.checked)} checks passed, {len(self.findings)} findings"]
        lines += [f"- {finding}" for finding in self.findings]
        lines += [f"ok: {line}" for line in self.checked]
        lines += [f"time stamp: {line}" for line in self.stamp]
        lines += [f"chain: {line}" for line in self.chain]
        lines += [f"device clock: {line}" for line in self.device_clock]
        lines += [f"clock: {line}" for line in self.clocks]
        return "\n".join(lines)


class _Findings:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.checked: list[str] = []


def _strict_json(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys)


def _read_jws(path: Path, found: _Findings) -> tuple[dict[str, Any], bytes, bytes, bytes] | None:
    """(header, payload, signing input, signature) or None with the reason recorded."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        found.problems.append(f"{SIGNED_MANIFEST_NAME} is missing: nothing is signed")
        return None
    if not stat.S_ISREG(info.st_mode):
        found.problems.append(f"{SIGNED_MANIFEST_NAME} is not a regular file")
        return None
    if info.st_size > MAX_MANIFEST_BYTES:
        found.problems.append(f"{SIGNED_MANIFEST_NAME} is {info.st_size} bytes, over the limit")
        return None
    raw = path.read_bytes()
    # The agent ends the file with a newline; nothing else around the token is allowed.
    text = raw[:-1] if raw.endswith(b"\n") else raw
    try:
        parts = text.decode("ascii").split(".")
        if len(parts) != 3:
            raise ValueError("not three base64url parts")
        header_b, payload, signature = (jws.b64url_decode(part) for part in parts)
        header = _strict_json(header_b)
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        found.problems.append(f"{SIGNED_MANIFEST_NAME} is not a compact JWS: {exc}")
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return header, payload, signing_input, signature


def _check_signature(
    header: dict[str, Any],
    signing_input: bytes,
    signature: bytes,
    key: Ed25519PublicKey | None,
    found: _Findings,
) -> None:
    ok = True
    if header.get("alg") != "EdDSA":
        found.problems.append(f"manifest signature: alg is {header.get('alg')!r}, not 'EdDSA'")
        ok = False
    if header.get("typ") != MANIFEST_TYPE:
        found.problems.append(
            f"manifest signature: typ is {header.get('typ')!r}, not {MANIFEST_TYPE!r}"
        )
        ok = False
    if "crit" in header:
        # Extensions we do not understand must not be silently ignored (RFC 7515 4.1.11).
        found.problems.append("manifest signature: the header has 'crit' extensions")
        ok = False
    if key is None:
        found.problems.append(
            "manifest signature: not checked, there is no public key of the agent to check "
            "it against"
        )
        return
    expected_kid = jws.thumbprint(key)
    if header.get("kid") != expected_kid:
        found.problems.append(
            f"manifest signature: signed with key {header.get('kid')!r}, not the agent's key "
            f"{expected_kid} (forged, or the device key changed)"
        )
        ok = False
    if not jws.verify_signature(signing_input, signature, key):
        found.problems.append(
            "manifest signature: does not verify with the agent's key (manifest altered or forged)"
        )
        ok = False
    if ok:
        found.checked.append(f"manifest signature valid (EdDSA, key {expected_kid})")


def signed_manifest(path: Path, key: Ed25519PublicKey | None) -> dict[str, Any] | None:
    """The manifest in the compact JWS at `path` if it is signed by `key` (right header,
    kid and signature) and its payload is a JSON object; None otherwise. The intake uses
    it to tell the agent's manifest from one sent by whoever else had the upload token."""
    found = _Findings()
    parsed = _read_jws(path, found)
    if parsed is None or key is None:
        return None
    header, payload, signing_input, signature = parsed
    _check_signature(header, signing_input, signature, key, found)
    if found.problems:
        return None
    try:
        body = _strict_json(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _is_time(value: object) -> bool:
    if not isinstance(value, str) or not value.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return False
    return True


def _schema_problems(manifest: object) -> list[str]:
    """What makes the payload not a camreg.evidence.v1 or v2 manifest, in words."""
    if not isinstance(manifest, dict):
        return ["manifest: not a JSON object"]
    problems: list[str] = []
    if manifest.get("schema") not in MANIFEST_SCHEMAS:
        problems.append(
            f"manifest: schema is {manifest.get('schema')!r}, not "
            f"{' or '.join(repr(s) for s in MANIFEST_SCHEMAS)}"
        )
    elif manifest["schema"] == MANIFEST_SCHEMA_V2:
        problems += clock_problems(manifest, _is_time)
        problems += chain_problems(manifest, _is_time)
        problems += device_clock_problems(manifest)
    for field in ("request_id", "case"):  # null in the owner's own exports
        value = manifest.get(field)
        if value is not None and not isinstance(value, str):
            problems.append(f"manifest: {field} must be a string or null")
    request_id = manifest.get("request_id")
    if isinstance(request_id, str) and not ID.fullmatch(request_id):
        problems.append(f"manifest: request_id {request_id!r} is not a valid id")
    agent = manifest.get("agent")
    if not isinstance(agent, str) or not ID.fullmatch(agent):
        problems.append("manifest: agent missing or not a valid id")
    cameras = manifest.get("cameras")
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        problems.append("manifest: cameras must be a list of ids")
    window = manifest.get("window")
    if not isinstance(window, dict) or not all(_is_time(window.get(k)) for k in ("start", "end")):
        problems.append("manifest: window must have RFC 3339 UTC start and end")
    if not _is_time(manifest.get("created")):
        problems.append("manifest: created must be an RFC 3339 UTC time")
    gaps = manifest.get("gaps")
    if not isinstance(gaps, list) or not all(
        isinstance(g, dict)
        and isinstance(g.get("camera"), str)
        and _is_time(g.get("start"))
        and _is_time(g.get("end"))
        for g in gaps
    ):
        problems.append("manifest: gaps must be a list of {camera, start, end}")
    files = manifest.get("files")
    if not isinstance(files, list):
        return [*problems, "manifest: files must be a list"]
    for number, entry in enumerate(files, 1):
        problems += _file_entry_problems(number, entry)
    return problems


def _file_entry_problems(number: int, entry: object) -> list[str]:
    where = f"manifest: file {number}"
    if not isinstance(entry, dict):
        return [f"{where} is not an object"]
    problems = []
    if not isinstance(entry.get("name"), str):
        problems.append(f"{where}: name missing")
    if not isinstance(entry.get("camera"), str):
        problems.append(f"{where}: camera missing")
    if not isinstance(entry.get("sha256"), str) or not SHA256_HEX.fullmatch(entry["sha256"]):
        problems.append(f"{where}: sha256 must be 64 lower-case hex digits")
    size = entry.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problems.append(f"{where}: bytes must be a whole number")
    if not (_is_time(entry.get("start")) and _is_time(entry.get("end"))):
        problems.append(f"{where}: start and end must be RFC 3339 UTC times")
    return problems


def _check_files(directory: Path, files: list[dict[str, Any]], found: _Findings) -> set[str]:
    """Every listed file present, the right size and SHA-256; returns the names listed."""
    listed: set[str] = set()
    for entry in files:
        name: str = entry["name"]
        if not safe_filename(name) or name in PACKAGE_NAMES:
            found.problems.append(
                f"{name!r}: not an acceptable file name (path parts or a reserved name); not read"
            )
            continue
        if name in listed:
            found.problems.append(f"{name}: listed twice in the manifest")
            continue
        listed.add(name)
        path = directory / name
        try:
            info = path.lstat()
        except FileNotFoundError:
            found.problems.append(f"{name}: missing (listed in the manifest)")
            continue
        if not stat.S_ISREG(info.st_mode):
            found.problems.append(f"{name}: not a regular file (a link or a folder)")
            continue
        if info.st_size != entry["bytes"]:
            found.problems.append(
                f"{name}: {info.st_size} bytes, the manifest says {entry['bytes']} "
                "(incomplete or altered)"
            )
            continue
        size, digest = sha256_file(path)
        if size != entry["bytes"]:
            found.problems.append(f"{name}: changed while it was being checked")
        elif digest != entry["sha256"]:
            found.problems.append(f"{name}: SHA-256 differs from the manifest (file altered?)")
        else:
            found.checked.append(f"{name}: {size} bytes, SHA-256 {digest} as in the manifest")
    return listed


def _check_extras(
    directory: Path, listed: set[str], payload: bytes, ignore: Iterable[str], found: _Findings
) -> None:
    skip = set(ignore) | {SIGNED_MANIFEST_NAME} | REGISTRY_NAMES
    for name in sorted(os.listdir(directory)):
        if name in listed or name in skip:
            continue
        if name == UNSIGNED_MANIFEST_NAME:
            if (directory / name).read_bytes() != payload:
                found.notes.append(
                    f"{name}: differs from the signed manifest (manifest.jws is what counts)"
                )
            continue
        found.notes.append(
            f"{name}: not listed in the manifest, so not part of the signed evidence"
        )


@dataclass(frozen=True)
class Asked:
    """What the request asked for, which a manifest for it must say it delivers."""

    case: str
    cameras: tuple[str, ...]
    start: datetime  # aware, UTC
    end: datetime


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value[:-1] + "+00:00")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _same_moment(a: datetime, b: datetime) -> bool:
    # Tokens and manifests write times to the millisecond; a float column may be off by
    # a rounding error below that.
    return abs((a - b).total_seconds()) < WINDOW_TOLERANCE_S


def _check_asked(manifest: dict[str, Any], asked: Asked, found: _Findings) -> None:
    """The manifest's case, cameras and window are the request's, and every file and gap
    is of a requested camera and touches the window: a validly signed manifest of another
    request, window or camera is not evidence for this one."""
    problems = len(found.problems)
    if manifest["case"] != asked.case:
        found.problems.append(
            f"manifest: case is {manifest['case']!r}, the request's is {asked.case!r}"
        )
    cameras = set(manifest["cameras"])
    if cameras != set(asked.cameras):
        found.problems.append(
            f"manifest: cameras are {', '.join(sorted(cameras)) or 'none'}, the request "
            f"named {', '.join(sorted(asked.cameras))}"
        )
    start, end = _instant(manifest["window"]["start"]), _instant(manifest["window"]["end"])
    if not (_same_moment(start, asked.start) and _same_moment(end, asked.end)):
        found.problems.append(
            f"manifest: window is {_utc(start)} to {_utc(end)}, the request's is "
            f"{_utc(asked.start)} to {_utc(asked.end)}"
        )
    for number, entry in enumerate(manifest["files"], 1):
        where = f"manifest: file {number} ({entry['name']!r})"
        if entry["camera"] not in asked.cameras:
            found.problems.append(f"{where} is of camera {entry['camera']!r}, not a requested one")
        if _instant(entry["end"]) < asked.start or _instant(entry["start"]) > asked.end:
            found.problems.append(f"{where} lies outside the requested window")
    for gap in manifest["gaps"]:
        if gap["camera"] not in asked.cameras:
            found.problems.append(
                f"manifest: a gap of camera {gap['camera']!r}, not a requested one"
            )
    if len(found.problems) == problems:
        found.checked.append("manifest is for the requested case, cameras and window")


def verify_package(
    directory: Path,
    key: Ed25519PublicKey | None,
    *,
    request_id: str | None = None,
    agent: str | None = None,
    asked: Asked | None = None,
    ignore: Iterable[str] = (),
    tsa_roots: list[x509.Certificate] | None = None,
) -> Verdict:
    """Check the package in `directory` against the agent's public `key` (None: the
    signature cannot be checked and the package is not verified). `request_id`, `agent`
    and what was `asked`, when given, must be what the manifest says; names in `ignore`
    are not reported as extra files. A time stamp (manifest.tsr) is checked against
    `tsa_roots`; one that fails fails the package, none at all is said in words."""
    found = _Findings()
    thumb = jws.thumbprint(key) if key is not None else None
    if not directory.is_dir():
        found.problems.append(f"{directory} is not a folder")
        return Verdict(False, tuple(found.problems), (), None, thumb)
    parsed = _read_jws(directory / SIGNED_MANIFEST_NAME, found)
    manifest: dict[str, Any] | None = None
    if parsed is not None:
        header, payload, signing_input, signature = parsed
        _check_signature(header, signing_input, signature, key, found)
        try:
            body = _strict_json(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            found.problems.append(f"manifest: the signed payload is not JSON: {exc}")
            body = None
        if body is not None:
            problems = _schema_problems(body)
            found.problems += problems
            if not problems:
                manifest = body
                found.checked.append(f"manifest follows {body['schema']}")
    if manifest is not None:
        assert parsed is not None
        for field, expected in (("request_id", request_id), ("agent", agent)):
            if expected is not None and manifest[field] != expected:
                found.problems.append(
                    f"manifest: {field} is {manifest[field]!r}, expected {expected!r}"
                )
        if asked is not None:
            _check_asked(manifest, asked, found)
        listed = _check_files(directory, manifest["files"], found)
        _check_extras(directory, listed, parsed[1], ignore, found)
        chain_found, chain_words = check_chain(manifest)
        found.problems += chain_found
    stamp = check_stamp(directory, tsa_roots)
    if stamp.ok:
        found.checked.append("RFC 3161 time stamp over manifest.jws verified")
    elif stamp.present and tsa_roots is not None:
        found.problems.append(stamp.words)
    verified = not found.problems
    return Verdict(
        verified,
        tuple(found.problems + found.notes),
        tuple(found.checked),
        manifest,
        thumb,
        tuple(clock_words(manifest)) if manifest is not None else (),
        tuple(chain_words) if manifest is not None else (),
        tuple(device_clock_words(manifest)) if manifest is not None else (),
        (stamp.words,),
    )
