"""A request's window packed as evidence on the device: fetched first from the owner's
recorder where that is the footage source, then exported (copied, re-hashed, signed)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.evidence.export import Package, export_evidence
from agent.police_requests.early_copy import FetchFootage
from agent.police_requests.store import StoredRequest
from agent.recording.index import SegmentIndex


def pack_window(
    request: StoredRequest,
    directory: Path,
    *,
    agent_id: str,
    index: SegmentIndex,
    key: Ed25519PrivateKey | None,
    fetch: FetchFootage | None,
    stop: threading.Event,
) -> Package:
    """Export `request`'s window into `directory`, replacing a half-made export from before
    a crash. Raises FetchError (the recorder) or ExportError (the footage), with a reason."""
    if directory.exists():
        shutil.rmtree(directory)
    if fetch is not None:
        fetch(request.cameras, request.start, request.end, stop)
    return export_evidence(
        index,
        agent_id,
        request.cameras,
        request.start,
        request.end,
        directory,
        request_id=request.id,
        case=request.case,
        key=key,
    )


def package_bytes(package: Package) -> int:
    """What an upload of `package` sends: its files, and the signed manifest if any."""
    total = sum(f.bytes for f in package.files)
    return total + (package.signed.stat().st_size if package.signed is not None else 0)
