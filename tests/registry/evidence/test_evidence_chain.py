"""The segment chain, attacked and honoured: footage recorded by the agent's real recorder
from a real H.264 stream, exported with `camera-agent footage export`, checked with
`camera-registry evidence verify`. A package missing a segment between its first and last
file fails; a real camera gap passes and is named."""

from __future__ import annotations

import io
import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.cli import main as agent_main
from agent.crypto import device_key
from agent.recording.index import SegmentIndex
from agent.recording.rebuild import rebuild
from agent.recording.recorder import CameraRecorder
from agent.streams.source import StreamSource
from contract import jws
from registry.cli import main as registry_main
from tests.support.agent_proc import write_config

SEGMENT_S = 1.0


def run(main: object, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))  # type: ignore[operator]
    return code, out.getvalue() + err.getvalue()


class Site:
    """An agent's config, footage and index, recorded into by the real recorder."""

    def __init__(self, tmp_path: Path, clip: Path) -> None:
        self.clip = clip
        self.config = write_config(
            tmp_path / "config.yaml",
            broker_url="mqtt://127.0.0.1:1",
            cameras=[{"id": "front", "url": str(clip)}],
        )
        self.state = tmp_path / "state"
        self.footage = tmp_path / "footage"
        self.index_path = self.state / "footage.sqlite"
        self.tmp = tmp_path
        self.exports = 0

    def record(self, seconds: float) -> None:
        """Record the stream in real time for `seconds`, as one connection of the camera
        (the recorder is made anew each time, as an agent start makes it)."""
        index = SegmentIndex(self.index_path)
        recorder = CameraRecorder("front", self.footage, index, SEGMENT_S)
        stop = threading.Event()
        with StreamSource(str(self.clip), realtime=True) as source:
            recorder.connected(source.video_stream)
            until = time.monotonic() + seconds
            for packet in source.packets(stop):
                recorder.packet(packet)
                if time.monotonic() >= until:
                    break
            recorder.disconnected()
        index.close_db()

    def index(self) -> SegmentIndex:
        return SegmentIndex(self.index_path)

    def export(self) -> Path:
        index = self.index()
        segments = [s for s in index.segments("front") if s.state in ("closed", "partial")]
        index.close_db()
        start = segments[0].start + timedelta(milliseconds=1)
        end = datetime.now(UTC) + timedelta(seconds=1)
        self.exports += 1
        folder = self.tmp / f"package-{self.exports}"
        code, said = run(
            agent_main,
            "footage",
            "export",
            "--config",
            str(self.config),
            "front",
            start.isoformat().replace("+00:00", "Z"),
            end.isoformat().replace("+00:00", "Z"),
            str(folder),
        )
        assert code == 0, said
        key = device_key.load_or_create(self.state)
        (folder / "agent-key.pem").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return folder

    def resign(self, folder: Path, manifest: dict[str, object]) -> None:
        """Sign an edited manifest with the device's own key: what only the agent can do,
        so the chain must hold even against its key's holder editing the file list."""
        key = device_key.load_or_create(self.state)
        token = jws.sign(json.dumps(manifest).encode(), key, "camreg-manifest+jwt")
        (folder / "manifest.jws").write_text(token + "\n")


def verify(folder: Path) -> tuple[int, str]:
    return run(registry_main, "evidence", "verify", str(folder))


def manifest_of(folder: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((folder / "manifest.json").read_bytes())
    return data


@pytest.fixture
def site(tmp_path: Path, tmp_h264: object) -> Iterator[Site]:
    clip = tmp_h264(2, width=160, height=90, fps=10, gop=5)  # type: ignore[operator]
    yield Site(tmp_path, clip)


def files_of(folder: Path) -> list[dict[str, object]]:
    files = manifest_of(folder)["files"]
    assert isinstance(files, list)
    return files


def test_an_unbroken_recording_is_chained_and_verifies(site: Site) -> None:
    site.record(4.5)
    folder = site.export()
    manifest = manifest_of(folder)
    assert manifest["schema"] == "camreg.evidence.v2"
    files = files_of(folder)
    assert len(files) >= 4
    chain = manifest["chain"]["cameras"]["front"]  # type: ignore[index]
    assert [link["sha256"] for link in chain] == [f["sha256"] for f in files]
    # Each link carries the hash of the file before it.
    for before, link in itertools.pairwise(chain):
        assert (link["link"], link["prev_sha256"]) == ("follows", before["sha256"])
    code, said = verify(folder)
    assert code == 0, said
    assert (
        f"chain    camera front: {len(files)} files from {files[0]['name']}" in said
        and "chained by their SHA-256, 0 gaps; nothing recorded between them is missing" in said
    ), said


def test_a_segment_dropped_from_the_index_before_export_fails(site: Site) -> None:
    # Someone with the device's disk deletes a minute from the index (and its file) so the
    # export leaves it out: the next file's link still names its hash.
    site.record(4.5)
    index = site.index()
    segments = index.segments("front")
    victim = segments[2]
    victim.path.unlink()
    index.remove(victim.id)
    index.close_db()
    folder = site.export()
    names = [f["name"] for f in files_of(folder)]
    code, said = verify(folder)
    assert code == 1, said
    assert (
        f"FINDING  chain: camera front: a segment is missing between {names[1]} and "
        f"{names[2]}: {names[2]} was recorded after the segment with SHA-256 "
        f"{victim.sha256}, which is not in the package" in said
    ), said
    assert said.strip().endswith("NOT VERIFIED")


def test_a_link_altered_in_the_index_fails(site: Site) -> None:
    site.record(3.5)
    index = site.index()
    third = index.segments("front")[2]
    index.close_db()
    with sqlite3.connect(site.index_path) as db:
        db.execute("UPDATE segments SET chain_prev = ? WHERE id = ?", ("ab" * 32, third.id))
    folder = site.export()
    code, said = verify(folder)
    assert code == 1
    assert f"was recorded after the segment with SHA-256 {'ab' * 32}, which is not" in said


def test_a_file_removed_from_the_package_or_its_manifest_fails(site: Site) -> None:
    site.record(4.5)
    folder = site.export()
    files = files_of(folder)
    middle = files[2]

    # The file taken out of the folder.
    moved = folder.parent / "aside.ts"
    (folder / str(middle["name"])).rename(moved)
    code, said = verify(folder)
    assert code == 1 and f"FINDING  {middle['name']}: missing (listed in the manifest)" in said
    moved.rename(folder / str(middle["name"]))

    # Its entry taken out of the file list, the chain left as signed.
    manifest = manifest_of(folder)
    manifest["files"] = [f for f in files if f["name"] != middle["name"]]
    site.resign(folder, manifest)
    code, said = verify(folder)
    assert code == 1
    assert "FINDING  chain: camera front: the chain lists" in said
    assert f"and its link 3 names {middle['name']}" in said

    # Taken out of both: the link of the file after it still names it.
    chain = manifest["chain"]["cameras"]["front"]  # type: ignore[index]
    manifest["chain"]["cameras"]["front"] = [  # type: ignore[index]
        link for link in chain if link["name"] != middle["name"]
    ]
    site.resign(folder, manifest)
    code, said = verify(folder)
    assert code == 1
    assert (
        f"a segment is missing between {files[1]['name']} and {files[3]['name']}: "
        f"{files[3]['name']} was recorded after the segment with SHA-256 {middle['sha256']}" in said
    ), said


def test_a_real_camera_gap_passes_and_is_named(site: Site) -> None:
    site.record(2.5)
    time.sleep(3.5)  # the camera is away: the time passes on purpose
    site.record(2.5)
    folder = site.export()
    manifest = manifest_of(folder)
    chain = manifest["chain"]["cameras"]["front"]  # type: ignore[index]
    gap_links = [link for link in chain if link["link"] == "gap"]
    assert len(gap_links) == 1, chain
    gap = gap_links[0]["gap"]
    # The recorder listed the gap with its reason; the manifest carries it.
    assert any(
        g["start"] <= gap["start"] and g["end"] >= gap["end"]
        for g in manifest["gaps"]  # type: ignore[attr-defined]
    ), (manifest["gaps"], gap)
    code, said = verify(folder)
    assert code == 0, said
    assert "1 gaps; nothing recorded between them is missing" in said
    assert f"chain    camera front: no footage from {gap['start']} to {gap['end']} (a listed gap)"


def test_a_gap_link_the_gap_list_leaves_out_fails(site: Site) -> None:
    site.record(2.5)
    time.sleep(3.5)  # the camera is away: the time passes on purpose
    site.record(2.5)
    folder = site.export()
    manifest = manifest_of(folder)
    manifest["gaps"] = []
    site.resign(folder, manifest)
    code, said = verify(folder)
    assert code == 1
    assert "that the manifest's gaps do not list" in said


def test_the_chain_survives_a_restart_and_a_rebuild_says_what_it_cannot_prove(
    site: Site,
) -> None:
    site.record(2.5)
    site.record(2.5)  # a new recorder and index object: the agent restarted at once
    folder = site.export()
    chain = manifest_of(folder)["chain"]["cameras"]["front"]  # type: ignore[index]
    assert [link["link"] for link in chain[1:]].count("start") == 0, chain
    code, said = verify(folder)
    assert code == 0, said

    # The index is lost and rebuilt from the files: the links are gone, and say so.
    site.index_path.unlink()
    for extra in site.state.glob("footage.sqlite-*"):
        extra.unlink()
    index = site.index()
    done = rebuild(index, site.footage, [])
    index.close_db()
    assert done.segments == len(chain)
    folder = site.export()
    code, said = verify(folder)
    assert code == 0, said
    assert (
        "is not proven: it was indexed when the footage index was rebuilt from the files "
        "on disk" in said
    )
