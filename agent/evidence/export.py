"""Export of original segments for a time window, byte-identical, with a manifest.

The owner's `footage export` and the evidence of a police request share this path:
every segment is copied and hashed in one read and must hash to what was recorded when
it was written, so what leaves is provably what was recorded. The manifest lists every
file with its hash and the gaps, and (camreg.evidence.v2) the segment chain over the
files (each file's link to the one recorded before it, so a verifier sees that none is
missing between them), the device's clock state when the package was made, and how far
each camera's own clock was off the agent's around the window; signed with the device key
it is `manifest.jws`, a compact JWS (EdDSA, typ camreg-manifest+jwt) whose payload is
manifest.json's bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.audit import REQUEST_ID_RE
from agent.clock import ClockEstimate, clock_estimate
from agent.errors import AgentError
from agent.recording.index import Segment, SegmentIndex
from agent.recording.plain_file import NotPlainFile, open_plain
from contract import jws
from contract.timestamps import rfc3339

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "camreg.evidence.v1"
# v1 with optional members added (DESIGN.md, "Extending the contract"). Every package has
# the segment chain and the device clock now, so every package is v2; verifiers still
# accept v1 from older agents.
MANIFEST_SCHEMA_V2 = "camreg.evidence.v2"
MANIFEST_NAME = "manifest.json"
SIGNED_MANIFEST_NAME = "manifest.jws"
MANIFEST_TYPE = "camreg-manifest+jwt"
_COPY_CHUNK = 1 << 20


class ExportError(AgentError):
    """The export could not be completed; `reason` is a status reason of DESIGN.md."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ExportedFile:
    name: str
    camera: str
    sha256: str
    bytes: int
    start: datetime
    end: datetime


def package_folder(root: Path, request_id: str) -> Path:
    """Where a request's package is made: `root/<request id>`. ValueError for anything
    but an id of the contract: the folder is emptied before an export, and `..` would
    empty another one (the device key's)."""
    if not REQUEST_ID_RE.fullmatch(request_id):
        raise ValueError(f"{request_id!r} is not a request id; no evidence folder for it")
    return root / request_id


def _copy_hashed(source: Path, target: Path, limit: int) -> tuple[int, str]:
    """Copy and hash in one pass (the hash is of the bytes written); the copy is fsynced
    before it counts. At most `limit` + 1 bytes are copied: a file that grew past what was
    recorded is refused anyway, and must not fill the disk first. The source is opened
    without following a symbolic link and must be a regular file (plain_file.py)."""
    digest = hashlib.sha256()
    size = 0
    with open_plain(source) as src, open(target, "xb") as dst:
        while size <= limit and (chunk := src.read(min(_COPY_CHUNK, limit + 1 - size))):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return size, digest.hexdigest()


def export_window(
    index: SegmentIndex,
    agent: str,
    camera: str,
    start: datetime,
    end: datetime,
    directory: Path,
    *,
    key: Ed25519PrivateKey | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Path:
    """The owner's export of one camera: see export_evidence."""
    return export_evidence(
        index, agent, [camera], start, end, directory, key=key, progress=progress
    ).manifest


@dataclass(frozen=True)
class Package:
    """An exported evidence package in one folder."""

    directory: Path
    files: list[ExportedFile]
    manifest: Path  # manifest.json, what was signed
    signed: Path | None  # manifest.jws
    manifest_sha256: str  # of manifest.jws (what is sent); of manifest.json if unsigned


def export_evidence(
    index: SegmentIndex,
    agent: str,
    cameras: Sequence[str],
    start: datetime,
    end: datetime,
    directory: Path,
    *,
    request_id: str | None = None,
    case: str | None = None,
    key: Ed25519PrivateKey | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    device_clock: ClockEstimate | None = None,
) -> Package:
    """Copy the cameras' segments overlapping [start, end) into `directory` with a
    manifest, signed with the device key when one is given; `device_clock` is read from
    the kernel unless given. Raises ExportError (footage_missing, footage_altered) and
    writes no manifest when any original fails its check."""
    if end <= start:
        raise ExportError("the end of the window must be after its start", "window_invalid")
    segments: list[Segment] = []
    for camera in cameras:
        overlapping = index.segments(camera, start, end)
        for segment in overlapping:
            if segment.state == "altered":
                # Known to differ from what was recorded: leaving it out would hide that.
                raise ExportError(
                    f"{segment.path} no longer matches the hash recorded when it was written",
                    "footage_altered",
                )
        segments += [s for s in overlapping if s.state in ("closed", "partial")]
    if not segments:
        raise ExportError(
            f"camera {', '.join(cameras)} has no footage between {rfc3339(start)} and "
            f"{rfc3339(end)}",
            "footage_missing",
        )
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ExportError(f"{directory} is not empty; export into a new folder", "export_exists")
    total = sum(s.bytes for s in segments)
    done = 0
    files: list[ExportedFile] = []
    for segment in segments:
        files.append(_export_one(segment, directory))
        done += segment.bytes
        progress(done, total)
    gaps = [
        {"camera": g.camera, "start": rfc3339(max(g.start, start)), "end": rfc3339(min(g.end, end))}
        for camera in cameras
        for g in index.gaps(camera, start, end)
    ]
    clocks = camera_clocks(index, cameras, start, end)
    device_clock = device_clock or clock_estimate()
    manifest: dict[str, object] = {
        "schema": MANIFEST_SCHEMA_V2,
        "request_id": request_id,
        "agent": agent,
        "case": case,
        "cameras": list(cameras),
        "window": {"start": rfc3339(start), "end": rfc3339(end)},
        "files": [
            {
                "name": f.name,
                "camera": f.camera,
                "sha256": f.sha256,
                "bytes": f.bytes,
                "start": rfc3339(f.start),
                "end": rfc3339(f.end),
            }
            for f in files
        ],
        "gaps": gaps,
        "created": rfc3339(datetime.now(UTC)),
        "chain": {"cameras": segment_chain(index, cameras, segments, files)},
        "device_clock": device_clock.as_manifest(),
    }
    if clocks:
        manifest["clocks"] = {"cameras": clocks}
    body = (json.dumps(manifest, indent=2) + "\n").encode()
    path = directory / MANIFEST_NAME
    path.write_bytes(body)
    signed = None
    digest = hashlib.sha256(body).hexdigest()
    if key is not None:
        signed = directory / SIGNED_MANIFEST_NAME
        token = (jws.sign(body, key, MANIFEST_TYPE) + "\n").encode("ascii")
        signed.write_bytes(token)
        digest = hashlib.sha256(token).hexdigest()  # of what is sent: manifest.jws
    return Package(directory, files, path, signed, digest)


def segment_chain(
    index: SegmentIndex,
    cameras: Sequence[str],
    segments: Sequence[Segment],
    files: Sequence[ExportedFile],
) -> dict[str, list[dict[str, object]]]:
    """The manifest's `chain.cameras`: per camera, one link per exported file in the
    files' order (index/chain.py, docs/evidence.md)."""
    links = index.chain_links([s.id for s in segments])
    found: dict[str, list[dict[str, object]]] = {camera: [] for camera in cameras}
    for segment, exported in zip(segments, files, strict=True):
        link = links[segment.id]
        entry: dict[str, object] = {
            "name": exported.name,
            "sha256": exported.sha256,
            "link": link.kind,
            "prev_sha256": link.prev_sha256,
        }
        if link.gap_start is not None and link.gap_end is not None:
            entry["gap"] = {"start": rfc3339(link.gap_start), "end": rfc3339(link.gap_end)}
        found[segment.camera].append(entry)
    return found


def camera_clocks(
    index: SegmentIndex, cameras: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[dict[str, object]]]:
    """The manifest's `clocks.cameras`: per camera whose clock was read, the readings from
    the last before `start` to the first after `end` (docs/evidence.md). Only readings
    taken while the agent's clock was synchronised are ever kept."""
    found: dict[str, list[dict[str, object]]] = {}
    for camera in cameras:
        readings = index.clock_readings(camera, start, end)
        if readings:
            found[camera] = [
                {
                    "at": rfc3339(r.at),
                    "offset_s": r.offset_s,
                    "uncertainty_s": r.uncertainty_s,
                    "source": r.source,
                }
                for r in readings
            ]
    return found


def _export_one(segment: Segment, directory: Path) -> ExportedFile:
    if not os.path.lexists(segment.path):  # a link where it was is refused below
        raise ExportError(f"{segment.path} is gone from disk", "footage_missing")
    name = f"{segment.camera}_{segment.start.strftime('%Y%m%dT%H%M%S.%fZ')}{segment.path.suffix}"
    target = directory / name
    # One read: the bytes hashed are the bytes written, and they must hash to what was
    # recorded when the segment was closed, or the copy is removed again.
    try:
        size, digest = _copy_hashed(segment.path, target, segment.bytes)
    except NotPlainFile as exc:
        target.unlink(missing_ok=True)
        raise ExportError(
            f"{segment.path} is now {exc.strerror}, not the file recorded there; "
            "nothing was copied from it",
            "footage_altered",
        ) from None
    if (size, digest) != (segment.bytes, segment.sha256):
        target.unlink(missing_ok=True)
        raise ExportError(
            f"{segment.path} no longer matches the hash recorded when it was written",
            "footage_altered",
        )
    log.debug("exported %s (%d bytes, sha256 %s)", name, size, digest)
    return ExportedFile(
        name, segment.camera, digest, size, segment.start, segment.end or segment.start
    )


def load_package(directory: Path) -> Package:
    """A package exported earlier (before a restart), from its manifest."""
    path = directory / MANIFEST_NAME
    try:
        body = path.read_bytes()
        manifest = json.loads(body)
        files = [
            ExportedFile(
                f["name"],
                f["camera"],
                f["sha256"],
                int(f["bytes"]),
                datetime.fromisoformat(f["start"].replace("Z", "+00:00")),
                datetime.fromisoformat(f["end"].replace("Z", "+00:00")),
            )
            for f in manifest["files"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{path}: not a usable manifest: {exc}", "footage_missing") from None
    signed = directory / SIGNED_MANIFEST_NAME
    if signed.exists():
        digest = hashlib.sha256(signed.read_bytes()).hexdigest()
        return Package(directory, files, path, signed, digest)
    return Package(directory, files, path, None, hashlib.sha256(body).hexdigest())
