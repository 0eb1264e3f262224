"""Sending an exported package for a request: every file, then the signed manifest, each
one tus upload to the request's URL, resumed after a restart from the URL kept in the
request store, each finished file in the audit log."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

from agent.audit import AuditTrail
from agent.evidence.export import Package
from agent.evidence.upload import Uploader, UploadError
from agent.police_requests.store import RequestStore, StoredRequest


class Delivery:
    def __init__(
        self,
        store: RequestStore,
        audit: AuditTrail,
        uploader: Uploader,
    ) -> None:
        self._store = store
        self._audit = audit
        self._uploader = uploader

    def send(
        self,
        request: StoredRequest,
        package: Package,
        progress: Callable[[int, int], None],
        stop: threading.Event,
    ) -> None:
        """Raises UploadError (its `reason`, see evidence.upload) or UploadStopped."""
        if package.signed is None:
            raise UploadError("the package has no signed manifest", reason="protocol")
        parts: list[tuple[Path, str]] = [
            (package.directory / f.name, f.sha256) for f in package.files
        ]
        manifest = package.signed
        parts.append((manifest, hashlib.sha256(manifest.read_bytes()).hexdigest()))
        sizes = [path.stat().st_size for path, _ in parts]
        total = sum(sizes)
        before = 0
        for (path, digest), size in zip(parts, sizes, strict=True):
            kept = self._store.upload_of(request.id, path.name)
            if kept is not None and kept[1]:
                before += size
                continue

            def created(url: str, name: str = path.name) -> None:
                self._store.record_upload(request.id, name, url, done=False)

            def moved(done: int, _total: int, offset: int = before) -> None:
                progress(offset + done, total)

            result = self._uploader.upload(
                path,
                endpoint=request.upload_url,
                bearer_token=request.upload_token,
                metadata={"request_id": request.id, "filename": path.name, "sha256": digest},
                resume_url=kept[0] if kept else None,
                on_created=created,
                on_progress=moved,
                stop=stop,
            )
            self._store.record_upload(request.id, path.name, result.url, done=True)
            self._audit.append(
                "file_uploaded", request.id, {"name": path.name, "sha256": digest, "bytes": size}
            )
            before += size
            progress(before, total)
