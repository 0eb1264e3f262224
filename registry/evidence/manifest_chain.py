"""The manifest's `chain` member (camreg.evidence.v2, docs/evidence.md "The segment chain"):
each file's link to the segment recorded before it on its camera, made by the agent when
the segment was sealed. Checked here so that between a camera's first and last file
nothing is missing but the gaps the chain names and the manifest lists.

Why this proves completeness: file B's link carries the SHA-256 of the segment sealed
before it. If that is the file listed before B, nothing lies between them; if it is not,
a segment recorded between them is not in the package, whatever the times say.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

LINK_KINDS = frozenset({"follows", "gap", "start", "rebuilt", "none"})
LINKED = frozenset({"follows", "gap"})
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A gap link shorter than this needs no listed gap: the agent's recorder lists the holes
# it sees, the chain's tolerance is two seconds (agent/recording/index/chain.py).
UNLISTED_GAP_S = 2.0
# Why a link does not tie a file to the one before, in words.
UNLINKED_WORDS = {
    "start": "the agent's footage index knew no earlier segment of this camera (its first "
    "recording, or the first since the index was rebuilt)",
    "rebuilt": "it was indexed when the footage index was rebuilt from the files on disk, "
    "which cannot tell what lay between them",
    "none": "it has no chain link (indexed before the agent kept a chain, or a file of the "
    "owner's own recorder)",
}


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value[:-1] + "+00:00")


def chain_problems(manifest: dict[str, Any], is_time: Callable[[object], bool]) -> list[str]:
    """What makes `chain` (optional) not what v2 says, in words; [] when absent."""
    if "chain" not in manifest:
        return []
    chain = manifest["chain"]
    if not isinstance(chain, dict) or not isinstance(chain.get("cameras"), dict):
        return ["manifest: chain must be an object with cameras: {camera: [links]}"]
    cameras = manifest.get("cameras")
    listed: list[Any] = cameras if isinstance(cameras, list) else []
    problems: list[str] = []
    for camera, links in chain["cameras"].items():
        where = f"manifest: chain of camera {camera!r}"
        if camera not in listed:
            problems.append(f"{where}: not a camera of the package")
        if not isinstance(links, list):
            problems.append(f"{where}: must be a list of links")
            continue
        for number, link in enumerate(links, 1):
            if not _link_ok(link, is_time):
                problems.append(
                    f"{where}, link {number}: needs name, sha256 (64 hex digits), link (one "
                    f"of {', '.join(sorted(LINK_KINDS))}), prev_sha256 (64 hex digits for "
                    "follows and gap, else null) and, for gap, gap {start, end}"
                )
    return problems


def _link_ok(link: object, is_time: Callable[[object], bool]) -> bool:
    if not isinstance(link, dict) or not isinstance(link.get("name"), str):
        return False
    if not isinstance(link.get("sha256"), str) or not SHA256_HEX.fullmatch(link["sha256"]):
        return False
    kind, prev = link.get("link"), link.get("prev_sha256")
    if kind not in LINK_KINDS:
        return False
    if kind in LINKED and not (isinstance(prev, str) and SHA256_HEX.fullmatch(prev)):
        return False
    if kind not in LINKED and prev is not None:
        return False
    if kind == "gap":
        gap = link.get("gap")
        return isinstance(gap, dict) and is_time(gap.get("start")) and is_time(gap.get("end"))
    return True


def check_chain(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, words): each camera's files against its chain. A manifest without
    `chain` (v1, or v2 from an agent before the chain) gives one line saying so."""
    chain = manifest.get("chain")
    if not isinstance(chain, dict):
        return [], ["no segment chain in this manifest: that no file is missing between the "
                    "first and the last is not proven"]  # fmt: skip
    problems: list[str] = []
    words: list[str] = []
    for camera in manifest["cameras"]:
        files = [f for f in manifest["files"] if f["camera"] == camera]
        links = chain["cameras"].get(camera)
        if links is None:
            if files:
                problems.append(f"chain: camera {camera} has {len(files)} files but no chain")
            continue
        listed = [(f["name"], f["sha256"]) for f in files]
        chained = [(link["name"], link["sha256"]) for link in links]
        if listed != chained:
            problems.append(
                f"chain: camera {camera}: the chain lists {len(chained)} files, "
                f"{_first_difference(listed, chained)}"
            )
            continue
        camera_problems, camera_words = _walk(camera, files, links, manifest["gaps"])
        problems += camera_problems
        words += camera_words
    return problems, words


def _first_difference(listed: list[tuple[str, str]], chained: list[tuple[str, str]]) -> str:
    for number, (file, link) in enumerate(zip(listed, chained, strict=False), 1):
        if file != link:
            return (
                f"and its link {number} names {link[0]} (SHA-256 {link[1]}) where the files "
                f"list {file[0]} (SHA-256 {file[1]})"
            )
    return f"the files list {len(listed)} of this camera: not the same files"


def _walk(
    camera: str, files: list[dict[str, Any]], links: list[dict[str, Any]], gaps: list[Any]
) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    words: list[str] = []
    gap_count = 0
    unproven = 0
    for before, link in itertools.pairwise(links):
        kind = link["link"]
        between = f"between {before['name']} and {link['name']}"
        if kind not in LINKED:
            unproven += 1
            words.append(
                f"camera {camera}: that nothing is missing {between} is not proven: "
                f"{UNLINKED_WORDS[kind]}"
            )
            continue
        if link["prev_sha256"] != before["sha256"]:
            problems.append(
                f"chain: camera {camera}: a segment is missing {between}: {link['name']} was "
                f"recorded after the segment with SHA-256 {link['prev_sha256']}, which is not "
                f"in the package (the one listed before it has {before['sha256']})"
            )
            continue
        if kind == "gap":
            gap_count += 1
            start, end = link["gap"]["start"], link["gap"]["end"]
            if not _listed(camera, start, end, gaps):
                problems.append(
                    f"chain: camera {camera}: the chain has a gap from {start} to {end} "
                    f"{between} that the manifest's gaps do not list"
                )
            else:
                words.append(f"camera {camera}: no footage from {start} to {end} (a listed gap)")
    if files and not problems:
        first, last = files[0], files[-1]
        said = (
            "nothing recorded between them is missing"
            if not unproven
            else f"{unproven} joins are not proven (below), every other one is"
        )
        words.insert(
            0,
            f"camera {camera}: {len(files)} files from {first['name']} ({first['start']}) "
            f"to {last['name']} ({last['end']}), chained by their SHA-256, {gap_count} gaps; "
            f"{said}",
        )
    return problems, words


def _listed(camera: str, start: str, end: str, gaps: list[Any]) -> bool:
    begin, finish = _instant(start), _instant(end)
    if (finish - begin).total_seconds() <= UNLISTED_GAP_S:
        return True
    return any(
        g["camera"] == camera and _instant(g["start"]) < finish and _instant(g["end"]) > begin
        for g in gaps
    )
