"""`camera-agent footage` and `footage export` on segments the real writer recorded."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.cli import main
from agent.recording.index import SegmentIndex
from agent.recording.segments import SegmentWriter
from agent.streams.source import StreamSource
from contract import jws
from tests.support.agent_proc import write_config
from tests.support.media import write_h264


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, SegmentIndex]:
    """Four 2 s segments of a real H.264 clip, written through SegmentWriter, then a gap."""
    clip = write_h264(tmp_path / "clip.mp4", 8, fps=15, width=640, height=360, gop=15)
    config = write_config(
        tmp_path / "config.yaml",
        broker_url="mqtt://127.0.0.1:1",
        cameras=[{"id": "front", "url": str(clip)}],
    )
    index = SegmentIndex(tmp_path / "state" / "footage.sqlite")
    with StreamSource(str(clip), realtime=False) as source:
        writer = SegmentWriter("front", tmp_path / "footage", index, 2.0, source.video_stream)
        for packet in source.packets(threading.Event()):
            writer.packet(packet)
        writer.close()
    second = index.segments("front")[1]
    assert second.end is not None
    index.add_gap("front", second.end - timedelta(seconds=1), second.end, "no_signal")
    return config, index


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def window(index: SegmentIndex) -> tuple[str, str]:
    segments = index.segments("front")
    start = segments[0].start - timedelta(seconds=1)
    end = datetime.now(UTC) + timedelta(seconds=1)
    return start.isoformat().replace("+00:00", "Z"), end.isoformat().replace("+00:00", "Z")


def test_footage_lists_what_is_held_with_gaps(recorded: tuple[Path, SegmentIndex]) -> None:
    config, index = recorded
    code, out, _ = run("footage", "--config", str(config))
    assert code == 0
    count = len(index.segments("front"))
    first = index.segments("front")[0].start.strftime("%Y-%m-%dT%H:%M:%S")
    assert out.startswith(f"front: {first}")
    assert f"{count} segments" in out and "1 gap (" in out
    assert "(no_signal)" in out


def test_export_copies_byte_identical_originals_with_a_manifest(
    recorded: tuple[Path, SegmentIndex], tmp_path: Path
) -> None:
    config, index = recorded
    start, end = window(index)
    target = tmp_path / "export"
    code, _out, err = run(
        "footage", "export", "front", start, end, str(target), "--config", str(config)
    )
    assert code == 0, err
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["schema"] == "camreg.evidence.v2" and manifest["cameras"] == ["front"]
    originals = index.segments("front")
    assert len(manifest["files"]) == len(originals) >= 4
    for entry, original in zip(manifest["files"], originals, strict=True):
        copy = (target / entry["name"]).read_bytes()
        assert copy == original.path.read_bytes()
        assert entry["sha256"] == hashlib.sha256(copy).hexdigest() == original.sha256
        assert entry["bytes"] == len(copy)
    assert [g["camera"] for g in manifest["gaps"]] == ["front"]
    # Signed by the device key: manifest.jws carries manifest.json's exact bytes.
    head, body, signature = (target / "manifest.jws").read_text().strip().split(".")
    device = jws.public_key_from_pem((config.parent / "state" / "keys" / "device.pub").read_bytes())
    assert jws.b64url_decode(body) == (target / "manifest.json").read_bytes()
    assert jws.verify_signature(f"{head}.{body}".encode(), jws.b64url_decode(signature), device)


def test_an_altered_original_stops_the_export(
    recorded: tuple[Path, SegmentIndex], tmp_path: Path
) -> None:
    config, index = recorded
    victim = index.segments("front")[1].path
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    start, end = window(index)
    code, _, err = run(
        "footage", "export", "front", start, end, str(tmp_path / "out"), "--config", str(config)
    )
    assert code == 69
    assert "footage_altered" in err and victim.name in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def written_bytes() -> int:
    """Bytes this process has written so far (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def test_an_original_grown_huge_is_refused_before_it_fills_the_disk(
    recorded: tuple[Path, SegmentIndex], tmp_path: Path
) -> None:
    """A recorded file swollen after it was hashed (here 512 MB more, sparse) is refused
    after one byte too many, not after copying it all into the export folder."""
    config, index = recorded
    victim = index.segments("front")[1].path
    with open(victim, "r+b") as fh:
        fh.truncate(victim.stat().st_size + 512 * 1024 * 1024)
    start, end = window(index)
    before = written_bytes()
    code, _, err = run(
        "footage", "export", "front", start, end, str(tmp_path / "out"), "--config", str(config)
    )
    assert code == 69
    assert "footage_altered" in err and victim.name in err
    recorded_total = sum(s.bytes for s in index.segments("front"))
    assert written_bytes() - before < recorded_total + 2 * 1024 * 1024


def test_an_original_replaced_by_a_fifo_is_refused_without_waiting(
    recorded: tuple[Path, SegmentIndex], tmp_path: Path
) -> None:
    config, index = recorded
    victim = index.segments("front")[0].path
    victim.unlink()
    os.mkfifo(victim)  # opening it for reading would wait for a writer for ever
    start, end = window(index)
    code, _, err = run(
        "footage", "export", "front", start, end, str(tmp_path / "out"), "--config", str(config)
    )
    assert code == 69
    assert "footage_altered" in err and "not the file recorded there" in err


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-27T10:00:00", "2026-11-27T11:00:00Z", "give a time zone"),
        ("yesterday", "2026-11-27T11:00:00Z", "not a time"),
    ],
)
def test_bad_times_are_refused(
    recorded: tuple[Path, SegmentIndex], tmp_path: Path, start: str, end: str, message: str
) -> None:
    config, _ = recorded
    with pytest.raises(SystemExit) as exit_info, redirect_stderr(io.StringIO()) as err:
        main(
            ["footage", "export", "front", start, end, str(tmp_path / "o"), "--config", str(config)]
        )
    assert exit_info.value.code == 2
    assert message in err.getvalue()


def test_a_window_without_footage_says_so(
    recorded: tuple[Path, SegmentIndex], tmp_path: Path
) -> None:
    config, _ = recorded
    code, _, err = run(
        "footage",
        "export",
        "front",
        "2020-01-01T00:00:00Z",
        "2020-01-01T01:00:00Z",
        str(tmp_path / "o"),
        "--config",
        str(config),
    )
    assert code == 69 and "footage_missing" in err
