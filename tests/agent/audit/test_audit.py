"""The audit log: real files, every kind of tampering caught by `verify` and by the CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.audit import (
    AUDIT_FILE,
    GENESIS,
    REJECTIONS_SUMMARISED,
    REQUEST_EVENTS,
    TORN_TAIL,
    AuditEntry,
    AuditError,
    AuditLog,
    describe,
)
from tests.support import REPO_ROOT
from tests.support.agent_proc import write_config
from tests.support.schemas import assert_valid

REQUEST = "2026-0042-a"
REJECTED = "3f2a9c0d41b7e815"
SHA = hashlib.sha256(b"segment").hexdigest()

# One accepted request from arrival to completion, and one rejected token in between.
EVENTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "received",
        REQUEST,
        {
            "kind": "order",
            "case": "2026-NN-0042",
            "cameras": ["front"],
            "window": {"start": "2026-11-27T09:55:00Z", "end": "2026-11-27T10:00:00Z"},
        },
    ),
    ("rejected", REJECTED, {"reason": "bad_signature"}),
    ("held", REQUEST, {"cameras": ["front"]}),
    ("approved", REQUEST, {"by": "policy"}),
    ("exported", REQUEST, {"files": 2, "bytes": 4_000_000}),
    ("file_uploaded", REQUEST, {"name": "front-1.ts", "sha256": SHA, "bytes": 2_000_000}),
    ("completed", REQUEST, {}),
]


def independent_hash(entry: dict[str, Any]) -> str:
    """The contract's hash rule, written out here rather than taken from agent.audit."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rehash(entry: dict[str, Any]) -> bytes:
    """A line as a forger with the hash rule would write it."""
    entry = {**entry, "hash": independent_hash(entry)}
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        broker_url="mqtt://127.0.0.1:1",
        cameras=[{"id": "front", "url": "rtsp://127.0.0.1:1/stream"}],
    )


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Where `config`'s agent keeps its audit log."""
    return tmp_path / "state" / AUDIT_FILE


@pytest.fixture
def written(log_path: Path) -> list[AuditEntry]:
    audit = AuditLog(log_path)
    return [audit.append(*event) for event in EVENTS]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()  # bytes.splitlines: only \n and \r here


def write_lines(path: Path, new: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in new))


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "audit", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


# --- writing and reading back -------------------------------------------------------------


def test_append_then_verify_round_trip(log_path: Path, written: list[AuditEntry]) -> None:
    result = AuditLog(log_path).verify()
    assert result.intact and result.breaks == ()
    assert (result.entries, result.head, result.head_seq) == (7, written[-1].hash, 7)
    assert [e.seq for e in written] == list(range(1, 8))
    assert written[0].prev == GENESIS
    assert [e.prev for e in written[1:]] == [e.hash for e in written[:-1]]
    assert AuditLog(log_path).entries() == written
    raw = lines(log_path)
    assert raw == [entry.line() for entry in written]
    for line in raw:
        entry = json.loads(line)
        assert entry["hash"] == independent_hash(entry)
        assert list(entry) == ["seq", "ts", "event", "request_id", "detail", "prev", "hash"]
        assert entry["ts"].endswith("Z") and len(entry["ts"]) == len("2026-11-27T10:02:00.000Z")


def test_the_file_is_private_and_ends_each_entry_with_a_newline(
    log_path: Path, written: list[AuditEntry]
) -> None:
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert log_path.read_bytes().endswith(b"\n")
    assert log_path.read_bytes().count(b"\n") == len(written)


def test_every_entry_is_valid_against_the_schema(log_path: Path, written: list[AuditEntry]) -> None:
    for line in lines(log_path):
        assert_valid("audit-entry", json.loads(line))


def test_entries_of_one_request(log_path: Path, written: list[AuditEntry]) -> None:
    audit = AuditLog(log_path)
    assert [e.event for e in audit.entries(REJECTED)] == ["rejected"]
    assert len(audit.entries(REQUEST)) == 6
    assert audit.entries("no-such-request") == []


def test_reopening_continues_the_chain(log_path: Path, written: list[AuditEntry]) -> None:
    again = AuditLog(log_path)
    entry = again.append("received", "2026-0043-b", {"kind": "voluntary"})
    assert (entry.seq, entry.prev) == (8, written[-1].hash)
    result = AuditLog(log_path).verify()
    assert result.intact and result.entries == 8


def test_two_writers_on_one_file_keep_one_chain(log_path: Path) -> None:
    """As the daemon and the owner's CLI acting without it would: each sees the other's
    entries before adding its own."""
    first, second = AuditLog(log_path), AuditLog(log_path)
    for n in range(6):
        (first if n % 2 else second).append("held", f"r{n}", {})
    result = first.verify()
    assert result.intact and result.entries == 6


def test_concurrent_appends_from_threads_keep_the_chain_valid(log_path: Path) -> None:
    audit = AuditLog(log_path)
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for i in range(25):
            audit.append("file_uploaded", f"r{n}", {"name": f"{i}.ts", "sha256": SHA, "bytes": i})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    result = audit.verify()
    assert result.intact, result.breaks
    assert result.entries == 200
    assert [e.seq for e in audit.entries()] == list(range(1, 201))


def test_concurrent_appends_from_another_process(log_path: Path) -> None:
    """A second process appends while this one does: flock keeps one chain."""
    script = (
        "import sys; from pathlib import Path; from agent.audit import AuditLog\n"
        "log = AuditLog(Path(sys.argv[1]))\n"
        "for i in range(40): log.append('held', 'other', {'n': i})\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, str(log_path)], cwd=REPO_ROOT, stderr=subprocess.PIPE
    )
    audit = AuditLog(log_path)
    for i in range(40):
        audit.append("held", "this", {"n": i})
    _, err = other.communicate(timeout=30)
    assert other.returncode == 0, err
    result = audit.verify()
    assert result.intact, result.breaks
    assert result.entries == 80


def test_on_append_gets_each_entry_as_written_in_order(log_path: Path) -> None:
    seen: list[AuditEntry] = []
    audit = AuditLog(log_path, on_append=seen.append)
    for event in EVENTS:
        audit.append(*event)
    assert seen == audit.entries()
    assert [e.line() for e in seen] == lines(log_path)  # the MQTT payload is the line


@pytest.mark.allow_logged_exceptions
def test_a_failing_on_append_does_not_lose_the_entry(
    log_path: Path, logged_exceptions: list[logging.LogRecord]
) -> None:
    def broken(entry: AuditEntry) -> None:
        raise RuntimeError("outbox gone")

    audit = AuditLog(log_path, on_append=broken)
    entry = audit.append("received", REQUEST, {})
    assert audit.entries() == [entry]
    assert "entry 1 is written" in logged_exceptions[0].getMessage()


def test_detail_is_copied_sorted_and_non_ascii_kept(log_path: Path) -> None:
    detail: dict[str, Any] = {"z": 1, "case": "Zaak café Noord, 東京", "a": [1, {"b": 2}]}
    entry = AuditLog(log_path).append("received", REQUEST, detail)
    detail["z"] = 2  # the caller's dict is not the entry's
    assert entry.detail["z"] == 1
    line = lines(log_path)[0]
    assert "café Noord, 東京".encode() in line  # as is, not \u escaped
    assert line.index(b'"a":') < line.index(b'"case":') < line.index(b'"z":')
    assert AuditLog(log_path).verify().intact


# --- what the request code may not write ----------------------------------------------------


@pytest.mark.parametrize(
    ("event", "request_id", "detail", "words"),
    [
        ("recieved", REQUEST, {}, "unknown audit event"),
        (TORN_TAIL, None, {}, "written by the audit log itself"),
        ("received", None, {}, "needs a request id"),
        ("received", "../etc", {}, "needs a request id"),
        ("rejected", REJECTED, {}, "detail.reason"),
        ("rejected", REJECTED, {"reason": "Bad Signature"}, "reason code"),
        ("approved", REQUEST, {"by": "registry"}, "detail.by"),
        ("declined", REQUEST, {"reason": "expired"}, "owner_declined"),
        ("exported", REQUEST, {"files": 2}, "detail.bytes"),
        ("exported", REQUEST, {"files": True, "bytes": 1}, "detail.files"),
        ("exported", REQUEST, {"files": 2, "bytes": -1}, "negative"),
        ("file_uploaded", REQUEST, {"name": "a.ts", "sha256": "x", "bytes": 1}, "64 hex"),
        ("received", REQUEST, {"upload": {"url": "https://e/", "token": "s3cret"}}, "secret"),
        ("received", REQUEST, {"Password": "x"}, "secret"),
        ("received", REQUEST, {"raw": "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiIxIn0.c2ln"}, "token"),
        ("received", REQUEST, {"score": 0.5}, "integers"),
        ("received", REQUEST, {"when": object()}, "not JSON"),
        ("received", REQUEST, {1: "x"}, "not text"),
        ("received", REQUEST, {"text": "\ud800"}, "Unicode"),
        ("received", REQUEST, {"big": "x" * 70_000}, "over"),
        ("received", REQUEST, {"deep": [[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}, "nested"),
    ],
)
def test_a_wrong_entry_is_refused_and_nothing_written(
    log_path: Path, event: str, request_id: str | None, detail: dict[Any, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        AuditLog(log_path).append(event, request_id, detail)
    assert not log_path.exists()


# --- tampering ------------------------------------------------------------------------------


def edit_field(raw: list[bytes]) -> list[bytes]:
    raw[1] = raw[1].replace(b"bad_signature", b"expired")
    return raw


def edit_and_rehash(raw: list[bytes]) -> list[bytes]:
    entry = json.loads(raw[2])
    entry["detail"] = {"cameras": ["back"]}
    raw[2] = rehash(entry)
    return raw


def delete_line(raw: list[bytes]) -> list[bytes]:
    del raw[3]
    return raw


def delete_first(raw: list[bytes]) -> list[bytes]:
    return raw[1:]


def swap_lines(raw: list[bytes]) -> list[bytes]:
    raw[2], raw[3] = raw[3], raw[2]
    return raw


def last_to_front(raw: list[bytes]) -> list[bytes]:
    return [raw[-1], *raw[:-1]]


def insert_forged(raw: list[bytes]) -> list[bytes]:
    forged = {**json.loads(raw[3]), "event": "declined", "detail": {"reason": "owner_declined"}}
    forged["prev"] = "ab" * 32
    return [*raw[:3], rehash(forged), *raw[3:]]


def insert_forged_with_right_prev(raw: list[bytes]) -> list[bytes]:
    forged = {**json.loads(raw[3]), "event": "declined", "detail": {"reason": "owner_declined"}}
    return [*raw[:3], rehash(forged), *raw[3:]]


def append_forged(raw: list[bytes]) -> list[bytes]:
    last = json.loads(raw[-1])
    forged = {**last, "seq": last["seq"] + 1, "event": "completed", "prev": "cd" * 32}
    return [*raw, rehash(forged)]


def append_garbage(raw: list[bytes]) -> list[bytes]:
    return [*raw, b"approved by me, the owner"]


def reformat(raw: list[bytes]) -> list[bytes]:
    raw[4] = json.dumps(json.loads(raw[4])).encode()  # same content, default spacing
    return raw


def duplicate_key(raw: list[bytes]) -> list[bytes]:
    raw[1] = raw[1].replace(b'{"seq":2,', b'{"seq":2,"seq":2,')
    return raw


def empty_line(raw: list[bytes]) -> list[bytes]:
    return [*raw[:2], b"", *raw[2:]]


def deeply_nested(raw: list[bytes]) -> list[bytes]:
    return [*raw[:6], b"[" * 100_000 + b"]" * 100_000, raw[6]]


def not_utf8(raw: list[bytes]) -> list[bytes]:
    raw[5] = raw[5].replace(b"front-1.ts", b"front-\xff.ts")
    return raw


# (what is done, the line the break is on, words of its description)
TAMPERING: list[tuple[Callable[[list[bytes]], list[bytes]], int, str]] = [
    (edit_field, 2, "does not match its hash"),
    (edit_and_rehash, 4, "prev is not the hash of entry 3 on line 3"),
    (delete_line, 4, "entry 4 missing (seq jumps from 3 to 5)"),
    (delete_first, 1, "does not start at entry 1"),
    (swap_lines, 3, "entry 3 missing"),
    (last_to_front, 1, "does not start at entry 1: entries 1-6 missing"),
    (insert_forged, 4, "prev is not the hash of entry 3"),
    (insert_forged_with_right_prev, 5, "entry 4 comes after entry 4: reordered or repeated"),
    (append_forged, 8, "prev is not the hash of entry 7"),
    (append_garbage, 8, "not valid JSON"),
    (reformat, 5, "not in the exact form the agent writes"),
    (duplicate_key, 2, "appears twice"),
    (empty_line, 3, "an empty line"),
    (not_utf8, 6, "not UTF-8"),
    (deeply_nested, 7, "nested too deeply"),
]


@pytest.mark.parametrize(
    ("tamper", "line", "words"), TAMPERING, ids=[t[0].__name__ for t in TAMPERING]
)
def test_tampering_is_caught_by_verify_and_the_cli(
    config: Path,
    log_path: Path,
    written: list[AuditEntry],
    tamper: Callable[[list[bytes]], list[bytes]],
    line: int,
    words: str,
) -> None:
    write_lines(log_path, tamper(lines(log_path)))
    result = AuditLog(log_path).verify()
    assert not result.intact
    assert any(b.line == line and words in b.problem for b in result.breaks), result.breaks

    done = cli(config, "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "audit log BROKEN" in done.stdout and f"line {line}: " in done.stdout
    assert words in done.stdout
    shown = cli(config, "show")
    assert shown.returncode == 1 and f"line {line}: " in shown.stderr


def test_a_truncated_tail_is_caught(
    config: Path, log_path: Path, written: list[AuditEntry]
) -> None:
    data = log_path.read_bytes()
    log_path.write_bytes(data[:-30])
    result = AuditLog(log_path).verify()
    assert [(b.line, "cut off" in b.problem) for b in result.breaks] == [(7, True)]
    assert result.entries == 6 and result.head == written[5].hash
    done = cli(config, "verify")
    assert done.returncode == 1 and "line 7: cut off" in done.stdout


def test_a_tail_cut_at_a_line_boundary_shows_only_against_the_registrys_head(
    config: Path, log_path: Path, written: list[AuditEntry]
) -> None:
    """What no local check can see, and why the head goes to the registry."""
    write_lines(log_path, lines(log_path)[:-2])
    assert AuditLog(log_path).verify().intact
    result = AuditLog(log_path).verify(expected_head=written[-1].hash)
    assert not result.intact
    assert result.breaks[0].line is None and written[-1].hash in result.breaks[0].problem
    assert cli(config, "verify").returncode == 0
    done = cli(config, "verify", "--head", written[-1].hash)
    assert done.returncode == 1 and "is not in this log" in done.stdout
    # An older head the registry holds (newer entries still on their way) is fine.
    assert cli(config, "verify", "--head", written[3].hash).returncode == 0


def test_a_removed_log_shows_against_the_registrys_head(config: Path, log_path: Path) -> None:
    assert cli(config, "verify", "--head", "ab" * 32).returncode == 1


# --- a torn tail: what a crash while writing leaves -----------------------------------------


def crash_while_writing(path: Path, fraction: float = 0.5) -> bytes:
    """The first part of the line the next entry would have been: a write cut short."""
    last = json.loads(lines(path)[-1])
    line = rehash({**last, "seq": last["seq"] + 1, "prev": last["hash"], "event": "completed"})
    torn = line[: int(len(line) * fraction)]
    with open(path, "ab") as fh:
        fh.write(torn)
    return torn


def test_a_torn_tail_is_a_break_until_the_next_append_records_it(
    config: Path, log_path: Path, written: list[AuditEntry], caplog: pytest.LogCaptureFixture
) -> None:
    torn = crash_while_writing(log_path)
    before = log_path.read_bytes()
    assert cli(config, "verify").returncode == 1

    seen: list[AuditEntry] = []
    audit = AuditLog(log_path, on_append=seen.append)
    assert audit.torn is not None and audit.torn.data == torn
    assert (audit.torn.first_line, audit.torn.last_line) == (8, 8)
    with caplog.at_level(logging.ERROR, logger="agent.audit"):
        entry = audit.append("failed", REQUEST, {"reason": "upload_failed"})
    assert "not a complete entry" in caplog.text and "line 8" in caplog.text

    # Nothing was rewritten: the torn bytes stay, a newline ends them, two entries follow.
    after = log_path.read_bytes()
    assert after.startswith(before + b"\n")
    seal, last = seen
    assert seal.event == TORN_TAIL and seal.request_id is None
    assert (seal.seq, seal.prev) == (8, written[-1].hash)
    assert seal.detail == {
        "from_line": 8,
        "to_line": 8,
        "bytes": len(torn),
        "sha256": hashlib.sha256(torn).hexdigest(),
    }
    assert (entry, entry.seq, entry.prev) == (last, 9, seal.hash)
    assert_valid("audit-entry", seal.as_dict())

    result = AuditLog(log_path).verify()
    assert result.intact and result.entries == 9
    (tear,) = result.recorded_tears
    assert (tear.first_line, tear.by_seq, tear.by_line) == (8, 8, 9)
    done = cli(config, "verify")
    assert done.returncode == 0
    assert "note: line 8 (" in done.stdout and "entry 8 on line 9 records it" in done.stdout
    assert "audit log intact: 9 entries" in done.stdout
    assert [e.seq for e in AuditLog(log_path).entries()] == list(range(1, 10))


def test_a_line_complete_but_for_its_newline_is_still_torn(
    log_path: Path, written: list[AuditEntry]
) -> None:
    """An entry counts once its newline is on disk: the rule has no exceptions."""
    crash_while_writing(log_path, fraction=1.0)
    assert not AuditLog(log_path).verify().intact
    assert len(AuditLog(log_path).entries()) == 7
    AuditLog(log_path).append("completed", REQUEST, {})
    assert AuditLog(log_path).verify().intact


def test_a_crash_while_recording_a_torn_tail_is_recorded_too(
    log_path: Path, written: list[AuditEntry]
) -> None:
    crash_while_writing(log_path)
    AuditLog(log_path).append("completed", REQUEST, {})
    # Cut the file back into the middle of the torn_tail entry, as a second crash would.
    raw = log_path.read_bytes()
    seal_start = raw.rindex(b"\n", 0, raw.rindex(b'"event":"torn_tail"')) + 1
    log_path.write_bytes(raw[: seal_start + 40])
    audit = AuditLog(log_path)
    assert audit.torn is not None and (audit.torn.first_line, audit.torn.last_line) == (8, 9)
    entry = audit.append("completed", REQUEST, {})
    assert entry.seq == 9
    result = AuditLog(log_path).verify()
    assert result.intact and [t.last_line for t in result.recorded_tears] == [9]


def test_a_torn_first_line(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True)
    log_path.write_bytes(b'{"seq":1,"ts":"20')
    entry = AuditLog(log_path).append("received", REQUEST, {})
    assert (entry.seq, entry.prev) == (2, AuditLog(log_path).entries()[0].hash)
    assert AuditLog(log_path).entries()[0].prev == GENESIS
    assert AuditLog(log_path).verify().intact


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 16])
def test_the_tail_is_found_whatever_the_read_block(
    log_path: Path, written: list[AuditEntry], block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening reads backwards a block at a time; lines cut by a block edge still count."""
    monkeypatch.setattr("agent.audit.writer._BLOCK", block)
    assert AuditLog(log_path).append("completed", REQUEST, {}).seq == 8
    with open(log_path, "ab") as fh:
        fh.write(b"x" * 150 + b"\n" + b"not an entry\n" + b'{"seq":9,"ts"')
    audit = AuditLog(log_path)
    assert audit.torn is not None and (audit.torn.first_line, audit.torn.last_line) == (9, 11)
    assert audit.torn.data.startswith(b"x" * 150 + b"\n")
    assert audit.append("completed", REQUEST, {}).seq == 10
    result = audit.verify()
    assert result.intact and result.entries == 10


def test_a_recorded_torn_tail_changed_afterwards_is_a_break(
    config: Path, log_path: Path, written: list[AuditEntry]
) -> None:
    crash_while_writing(log_path)
    AuditLog(log_path).append("completed", REQUEST, {})
    raw = lines(log_path)
    raw[7] = raw[7][:-3] + b"xyz"
    write_lines(log_path, raw)
    result = AuditLog(log_path).verify()
    changed = "no longer the bytes it recorded"
    assert any(b.line == 9 and changed in b.problem for b in result.breaks)
    assert cli(config, "verify").returncode == 1


def test_a_log_that_shrank_under_a_writer_is_logged_loudly(
    log_path: Path, written: list[AuditEntry], caplog: pytest.LogCaptureFixture
) -> None:
    audit = AuditLog(log_path)
    audit.append("completed", REQUEST, {})
    write_lines(log_path, lines(log_path)[:-3])
    with caplog.at_level(logging.ERROR, logger="agent.audit"):
        entry = audit.append("completed", REQUEST, {})
    assert "shrank" in caplog.text
    assert entry.seq == 6  # continues from what is there; the registry's head shows the rest


# --- the owner's commands -------------------------------------------------------------------


def test_show_prints_each_entry_in_plain_words(
    config: Path, log_path: Path, written: list[AuditEntry]
) -> None:
    done = cli(config, "show")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert len(out) == 7
    local = written[1].time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert out[1] == (
        f"{local}  #2  request {REJECTED}: rejected — the token's signature does not verify "
        "(bad_signature)"
    )
    assert "received a police order for camera front" in out[0]
    assert "(case 2026-NN-0042)" in out[0]
    assert "approved automatically by your policy" in out[3]
    assert "uploaded front-1.ts (2.0 MB, sha256 " in out[5]


def test_show_one_request_and_as_json(
    config: Path, log_path: Path, written: list[AuditEntry]
) -> None:
    done = cli(config, "show", "--request", REJECTED)
    assert done.returncode == 0 and done.stdout.count("\n") == 1 and REJECTED in done.stdout
    done = cli(config, "show", "--json")
    assert done.returncode == 0
    assert done.stdout.encode().splitlines() == lines(log_path)
    done = cli(config, "show", "--request", "other")
    assert (done.returncode, done.stdout) == (0, "no audit entries for other\n")


def test_no_log_yet(config: Path) -> None:
    for command in ("show", "verify"):
        done = cli(config, command)
        assert done.returncode == 0 and "no audit entries yet" in done.stdout


def test_an_unreadable_log_is_a_clear_error(config: Path, log_path: Path) -> None:
    log_path.mkdir(parents=True)  # even root cannot read a folder as the log
    for command in ("show", "verify"):
        done = cli(config, command)
        assert done.returncode == 74, done.stdout + done.stderr
        assert f"cannot read the audit log {log_path}" in done.stderr
    with pytest.raises(AuditError):
        AuditLog(log_path).append("received", REQUEST, {})


def test_a_broken_config_exits_78(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: {id: Shop 42}\n")
    assert cli(bad, "verify").returncode == 78


def test_verify_refuses_a_head_that_is_not_a_hash(config: Path) -> None:
    assert cli(config, "verify", "--head", "abc").returncode == 2


# --- words and the published contract -------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "detail", "words"),
    [
        ("waiting_clock", {}, "system clock"),
        ("awaiting_owner", {}, "waiting for you to approve or decline"),
        ("approved", {"by": "owner"}, "approved by you"),
        ("declined", {"reason": "owner_timeout"}, "nobody approved it"),
        ("declined", {"reason": "owner_declined"}, "you declined it (owner_declined)"),
        ("held", {}, "on hold"),
        ("exported", {"files": 3, "bytes": 12_400_000}, "exported 3 files, 12.4 MB"),
        ("completed", {}, "completed"),
        ("failed", {"reason": "footage_altered"}, "no longer matches the hash"),
        ("rejected", {"reason": "upload_not_allowed"}, "police.upload_allow"),
        ("rejected", {"reason": "some_new_reason"}, "rejected — some_new_reason"),
    ],
)
def test_describe_says_it_in_words(
    log_path: Path, event: str, detail: dict[str, Any], words: str
) -> None:
    entry = AuditLog(log_path).append(event, REQUEST, detail)
    assert words in describe(entry)
    assert_valid("audit-entry", entry.as_dict())


def test_an_event_of_a_newer_agent_is_shown_not_refused(log_path: Path) -> None:
    line = rehash(
        {
            "seq": 1,
            "ts": "2026-11-27T10:00:00.000Z",
            "event": "key_rotated",
            "request_id": None,
            "detail": {"kid": "abc"},
            "prev": GENESIS,
        }
    )
    log_path.parent.mkdir(parents=True)
    log_path.write_bytes(line + b"\n")
    (entry,) = AuditLog(log_path).entries()
    assert describe(entry) == 'key_rotated {"kid": "abc"}'
    assert AuditLog(log_path).verify().intact


@pytest.mark.parametrize(
    "changes",
    [
        {"event": "rejected", "detail": {}},
        {"event": "approved", "detail": {"by": "registry"}},
        {"event": "declined", "detail": {"reason": "expired"}},
        {"event": "file_uploaded", "detail": {"name": "a.ts", "bytes": 1}},
        {"event": "exported", "detail": {"files": -1, "bytes": 0}},
        {"event": "completed", "request_id": None},
        {"event": TORN_TAIL, "request_id": None, "detail": {"bytes": 3}},
    ],
)
def test_the_schema_holds_each_events_detail(changes: dict[str, Any]) -> None:
    entry = {
        "seq": 3,
        "ts": "2026-11-27T10:02:00.000Z",
        "event": "received",
        "request_id": REQUEST,
        "detail": {},
        "prev": GENESIS,
        "hash": "c" * 64,
    }
    assert_valid("audit-entry", entry)
    with pytest.raises(AssertionError):
        assert_valid("audit-entry", {**entry, **changes})


def test_the_documented_examples_are_a_real_chain() -> None:
    doc = yaml.safe_load((REPO_ROOT / "docs" / "asyncapi.yaml").read_text())
    examples = [e["payload"] for e in doc["components"]["messages"]["auditEntry"]["examples"]]
    for before, after in itertools.pairwise(examples):
        assert after["prev"] == before["hash"] and after["seq"] == before["seq"] + 1
    for example in examples:
        assert example["hash"] == independent_hash(example)


def test_the_docs_and_the_schema_know_every_event() -> None:
    guide = (REPO_ROOT / "docs" / "audit.md").read_text()
    schema = json.loads((REPO_ROOT / "docs" / "schemas" / "audit-entry.schema.json").read_text())
    listed = set(schema["$defs"]["requestEvent"]["properties"]["event"]["enum"])
    assert listed == set(REQUEST_EVENTS)
    for event in [*REQUEST_EVENTS, TORN_TAIL, REJECTIONS_SUMMARISED]:
        assert f"| `{event}` |" in guide, event


def test_no_file_descriptor_is_left_open(log_path: Path) -> None:
    fd_dir = Path("/proc/self/fd")
    before = len(os.listdir(fd_dir))
    audit = AuditLog(log_path)
    for event in EVENTS:
        audit.append(*event)
    audit.verify()
    audit.entries()
    assert len(os.listdir(fd_dir)) == before
