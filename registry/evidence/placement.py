"""Which received file holds a name in a package folder when more than one arrived for it.

The upload token is a bearer: whoever has it (leaked, or sent by a broken client) can
upload a file of the same name before the agent does. Such a file must neither be lost
(received evidence is kept) nor block the agent's own. So a second finished upload of a
name stays at `.partial/<upload id>.part`, "set aside", and the package check decides
which one the folder holds: for `manifest.jws` the one signed with the agent's enrolled
key, for every other name the one whose SHA-256 that signed manifest lists. Without a
better candidate the file that arrived first keeps the name.

A swap is two renames on one file system; a crash between them leaves the name empty
with every candidate set aside, and the next check places one again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.common.files import fsync_dir
from registry.evidence.verify import SHA256_HEX, SIGNED_MANIFEST_NAME, signed_manifest

__all__ = ["PARTIAL_DIR", "Finished", "arrange", "part_path"]

log = logging.getLogger("registry.evidence")

PARTIAL_DIR: Final = ".partial"  # cannot be a request id (no dots in ids)
PART_SUFFIX: Final = ".part"


@dataclass(frozen=True)
class Finished:
    """A finished upload of a request: its id, file name, SHA-256 as received, when."""

    upload_id: str
    name: str
    sha256: str | None
    completed_at: float


def part_path(partial: Path, upload_id: str) -> Path:
    return partial / f"{upload_id}{PART_SUFFIX}"


def _settle(
    folder: Path,
    partial: Path,
    candidates: list[Finished],
    good: Callable[[Finished, Path], bool],
) -> None:
    """Give the name the first good candidate (the one holding it if it is good, then the
    newest set-aside one); with none good and the name empty, the earliest one."""
    target = folder / candidates[0].name
    aside = [c for c in candidates if part_path(partial, c.upload_id).exists()]
    if not aside:
        return
    holders = [c for c in candidates if c not in aside]
    holder = holders[0] if holders and target.exists() else None
    if holder is not None and good(holder, target):
        return
    newest_first = sorted(aside, key=lambda c: c.completed_at, reverse=True)
    chosen = next((c for c in newest_first if good(c, part_path(partial, c.upload_id))), None)
    if chosen is None:
        if holder is not None:
            return
        chosen = newest_first[-1]  # the name is empty: first come keeps it
    if holder is not None:
        os.replace(target, part_path(partial, holder.upload_id))
    os.replace(part_path(partial, chosen.upload_id), target)
    fsync_dir(partial)
    fsync_dir(folder)
    log.warning(
        "evidence %s of %s: upload %s now holds the name%s",
        target.name,
        folder.name,
        chosen.upload_id,
        f"; upload {holder.upload_id} is set aside (not the agent's)" if holder else "",
    )


def _listed(manifest: dict[str, object]) -> dict[str, str]:
    files = manifest.get("files")
    result: dict[str, str] = {}
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict):
            name, digest = entry.get("name"), entry.get("sha256")
            if isinstance(name, str) and isinstance(digest, str) and SHA256_HEX.fullmatch(digest):
                result.setdefault(name, digest)
    return result


def arrange(
    folder: Path,
    partial: Path,
    finished: Iterable[Finished],
    key: Ed25519PublicKey | None,
) -> None:
    """Put the right file under each name of the package folder (see the module doc)."""
    by_name: dict[str, list[Finished]] = {}
    for upload in finished:
        by_name.setdefault(upload.name, []).append(upload)
    folder.mkdir(parents=True, exist_ok=True)
    manifests = by_name.pop(SIGNED_MANIFEST_NAME, [])
    if manifests:
        _settle(folder, partial, manifests, lambda _c, path: signed_manifest(path, key) is not None)
    manifest = signed_manifest(folder / SIGNED_MANIFEST_NAME, key)
    listed = _listed(manifest) if manifest is not None else {}
    for name, candidates in sorted(by_name.items()):
        _settle(folder, partial, candidates, _matches(listed.get(name)))


def _matches(expected: str | None) -> Callable[[Finished, Path], bool]:
    return lambda candidate, _path: expected is not None and candidate.sha256 == expected
