"""Reading the audit log back, and verifying it: every line, every link, every recorded tear.

`verify_log` checks that each line is an entry in the exact form the agent writes, that
its hash matches its content and that it follows the entry before it (seq one higher,
`prev` its hash), and names each line where that fails (a Break). A torn tail (lines a
crash cut off while they were written; see agent/audit/writer.py) that a later `torn_tail`
entry records, with the same size and SHA-256, is a note (a RecordedTear), not a break;
one not yet recorded is a break. docs/audit.md explains this for owners and police.

A clean cut at a line boundary leaves a shorter, valid chain that no local check can
tell apart: that is why every entry is also published as written (`on_append`) and the
registry keeps the head; `verify_log(expected_head=...)` checks the log still contains it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from agent.audit.events import TORN_TAIL, json_problem
from agent.errors import AgentError
from contract.audit_chain import (
    EVENT_RE,
    FIELDS,
    GENESIS,
    REQUEST_ID_RE,
    SHA256_RE,
    TS_RE,
    AuditEntry,
)
from contract.strict_json import no_duplicate_keys


class AuditError(AgentError):
    """The audit log cannot be read or written (here, as the writer builds on the reader)."""


@dataclass(frozen=True)
class Break:
    """Something wrong with the log; `line` is 1-based, None for the log as a whole."""

    line: int | None
    problem: str

    def __str__(self) -> str:
        return self.problem if self.line is None else f"line {self.line}: {self.problem}"


@dataclass(frozen=True)
class RecordedTear:
    """A torn tail that a later `torn_tail` entry recorded: not a break, but worth knowing."""

    first_line: int
    last_line: int
    bytes: int
    sha256: str
    by_seq: int
    by_line: int
    preview: str  # the start of those bytes, printable

    def __str__(self) -> str:
        lines = (
            f"line {self.first_line}"
            if self.first_line == self.last_line
            else f"lines {self.first_line}-{self.last_line}"
        )
        were = "was" if self.first_line == self.last_line else "were"
        return (
            f"{lines} ({self.bytes} bytes: {self.preview}) {were} cut off while being written "
            f"and kept as found; entry {self.by_seq} on line {self.by_line} records it"
        )


@dataclass(frozen=True)
class VerificationResult:
    entries: int  # lines that are entries, intact or not
    head: str | None  # hash of the last entry; None for an empty log
    head_seq: int
    breaks: tuple[Break, ...] = ()
    recorded_tears: tuple[RecordedTear, ...] = ()

    @property
    def intact(self) -> bool:
        return not self.breaks


def read_entries(path: Path) -> list[AuditEntry]:
    """Every line of the log at `path` that is an entry, in file order, unchecked (see
    `verify_log`): not the lines of a torn tail, recorded or not."""
    lines, terminated = _read_lines(path)
    covered, _ = _recorded_tears(lines)
    if not terminated:
        covered[len(lines)] = None
    return [
        parsed
        for number, _, parsed in lines
        if isinstance(parsed, AuditEntry) and number not in covered
    ]


def verify_log(path: Path, expected_head: str | None = None) -> VerificationResult:
    """Check every line and link of the chain at `path`; `expected_head` is the hash of
    the newest entry the registry received, which the log must still contain."""
    lines, terminated = _read_lines(path)
    return _verify(lines, terminated, expected_head)


# (line number, raw bytes without the newline, the entry or why the line is not one)
_Line: TypeAlias = tuple[int, bytes, AuditEntry | str]


def _read_lines(path: Path) -> tuple[list[_Line], bool]:
    """Every line of the log, parsed, and whether the file ends with a newline.

    A missing file is an empty log. Read under a shared lock: never half an append."""
    try:
        with open(path, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
            data = fh.read()
    except FileNotFoundError:
        return [], True
    except OSError as exc:
        raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from exc
    terminated = data.endswith(b"\n") or not data
    raws = (data[:-1] if data.endswith(b"\n") else data).split(b"\n") if data else []
    return [(number, raw, _parse(raw)) for number, raw in enumerate(raws, 1)], terminated


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse(raw: bytes) -> AuditEntry | str:
    """The entry on a line, or what makes it not an entry, in words."""
    if not raw:
        return "an empty line"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    try:
        value = json.loads(
            text, object_pairs_hook=no_duplicate_keys, parse_constant=_refuse_constant
        )
    except ValueError as exc:
        return f"not valid JSON ({exc})"
    except RecursionError:
        return "not valid JSON (nested too deeply)"
    if not isinstance(value, dict):
        return "not a JSON object"
    if set(value) != set(FIELDS):
        missing = [name for name in FIELDS if name not in value]
        extra = sorted(set(value) - set(FIELDS))
        said = [f"missing {', '.join(missing)}"] if missing else []
        said += [f"unexpected {', '.join(extra)}"] if extra else []
        return f"not an audit entry ({'; '.join(said)})"
    seq, ts, event = value["seq"], value["ts"], value["event"]
    request_id, detail = value["request_id"], value["detail"]
    prev, digest = value["prev"], value["hash"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return f"seq is {seq!r}, not a positive integer"
    if not isinstance(ts, str) or not TS_RE.fullmatch(ts) or not _is_time(ts):
        return f"ts is {ts!r}, not an RFC 3339 UTC time"
    if not isinstance(event, str) or not EVENT_RE.fullmatch(event):
        return f"event is {event!r}, not an event name"
    if request_id is not None and (
        not isinstance(request_id, str) or not REQUEST_ID_RE.fullmatch(request_id)
    ):
        return f"request_id is {request_id!r}, not a request id"
    if not isinstance(detail, dict):
        return "detail is not an object"
    problem = json_problem(detail, "detail")
    if problem:
        return problem
    for name, hexed in (("prev", prev), ("hash", digest)):
        if not isinstance(hexed, str) or not SHA256_RE.fullmatch(hexed):
            return f"{name} is not 64 lower-case hex digits"
    return AuditEntry(seq, ts, event, request_id, detail, prev, digest)


def _is_time(ts: str) -> bool:
    try:
        datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _printable(data: bytes, limit: int = 60) -> str:
    shown = repr(data[:limit])[2:-1]
    return shown + ("…" if len(data) > limit else "")


def _recorded_tears(
    lines: Sequence[_Line],
) -> tuple[dict[int, RecordedTear | None], list[Break]]:
    """Torn tails that a following `torn_tail` entry vouches for, by line; and false ones."""
    covered: dict[int, RecordedTear | None] = {}
    breaks: list[Break] = []
    for number, _, parsed in lines:
        if not isinstance(parsed, AuditEntry) or parsed.event != TORN_TAIL:
            continue
        detail = parsed.detail
        first, last = detail.get("from_line"), detail.get("to_line")
        valid = (
            isinstance(first, int)
            and isinstance(last, int)
            and not isinstance(first, bool)
            and not isinstance(last, bool)
            and 1 <= first <= last == number - 1
        )
        if not valid:
            breaks.append(Break(number, "records torn lines that do not end right before it"))
            continue
        assert isinstance(first, int) and isinstance(last, int)
        data = b"\n".join(raw for _, raw, _ in lines[first - 1 : last])
        digest = hashlib.sha256(data).hexdigest()
        if digest != detail.get("sha256") or len(data) != detail.get("bytes"):
            breaks.append(
                Break(
                    number,
                    f"records lines {first}-{last} as cut off, but they are no longer the "
                    "bytes it recorded (changed afterwards)",
                )
            )
            continue
        tear = RecordedTear(first, last, len(data), digest, parsed.seq, number, _printable(data))
        for covered_line in range(first, last + 1):
            covered[covered_line] = tear
    return covered, breaks


def _verify(
    lines: Sequence[_Line], terminated: bool, expected_head: str | None
) -> VerificationResult:
    covered, found = _recorded_tears(lines)
    prev_seq, prev_hash, prev_line = 0, GENESIS, 0
    link_known = True  # false right after a line that is not an entry
    entries = 0
    hashes: set[str] = set()
    last_number = len(lines)
    for number, raw, parsed in lines:
        if number in covered:
            continue
        if number == last_number and not terminated:
            found.append(
                Break(
                    number,
                    "cut off (no newline at its end): an entry not completely written. If "
                    "the agent stopped while writing it, its next entry records this; "
                    "otherwise the file was cut or added to by hand",
                )
            )
            continue
        if isinstance(parsed, str):
            found.append(Break(number, f"{parsed}; not an entry the agent wrote"))
            link_known = False
            continue
        entry = parsed
        entries += 1
        hashes.add(entry.hash)
        problems: list[str] = []
        if entry.computed_hash() != entry.hash:
            problems.append("its content does not match its hash: the entry was changed")
        elif raw != entry.line():
            problems.append(
                "not in the exact form the agent writes (spacing, key order or escapes "
                "changed by hand)"
            )
        if link_known:
            problems.extend(_link_problems(entry, prev_seq, prev_hash, prev_line))
        if problems:
            found.append(Break(number, "; ".join(problems)))
        prev_seq, prev_hash, prev_line = entry.seq, entry.hash, number
        link_known = True
    all_breaks = sorted(found, key=lambda b: b.line or 0)
    if expected_head is not None and expected_head not in hashes:
        all_breaks.append(
            Break(
                None,
                f"the registry's head {expected_head} is not in this log: entries at its end "
                "were removed, or the log was replaced",
            )
        )
    head = prev_hash if entries else None
    tears = tuple(dict.fromkeys(t for t in covered.values() if t is not None))
    return VerificationResult(entries, head, prev_seq, tuple(all_breaks), tears)


def _link_problems(entry: AuditEntry, prev_seq: int, prev_hash: str, prev_line: int) -> list[str]:
    expected = prev_seq + 1
    problems: list[str] = []
    if entry.seq > expected:
        missing = (
            f"entry {expected}"
            if entry.seq == expected + 1
            else (f"entries {expected}-{entry.seq - 1}")
        )
        if prev_seq == 0:
            problems.append(f"the log does not start at entry 1: {missing} missing")
        else:
            problems.append(f"{missing} missing (seq jumps from {prev_seq} to {entry.seq})")
    elif entry.seq < expected:
        problems.append(f"entry {entry.seq} comes after entry {prev_seq}: reordered or repeated")
    if entry.prev != prev_hash:
        if prev_seq == 0:
            problems.append("its prev is not 64 zeros, yet no entry comes before it")
        else:
            problems.append(
                f"its prev is not the hash of entry {prev_seq} on line {prev_line}: an entry "
                "was removed, inserted, moved or rewritten here"
            )
    return problems
