"""The audit log: every event of every footage request, as hash-chained JSON lines.

`<data_dir>/audit.jsonl`, one entry a line, only ever appended to. Each entry names the
hash of the one before it (`prev`), so an edited, removed, inserted or reordered entry
breaks the chain at that line, and `verify` names it. Its own hash is SHA-256 over the
canonical JSON of the entry without `hash` (keys sorted at every level, no whitespace,
UTF-8, non-ASCII as is): anyone can recompute it with any JSON library. Numbers are
integers only, because float text differs between languages.

An entry counts once its whole line, newline included, is on disk: it is written with
one write() to a file opened O_APPEND, then fsync. A line without its newline, or lines
after the last entry that are not entries, are a *torn tail*: what a crash or power cut
leaves while a line is written (or a hand that added to the file). The log never
rewrites or drops it; the next append records it first, in an entry of event
`torn_tail` that names those lines, their size and their SHA-256, and continues the
chain from the last entry before them. `verify` reports a torn tail not yet recorded as
a break, and a recorded one as a note. docs/audit.md explains this for owners and police.

A clean cut at a line boundary leaves a shorter, valid chain that no local check can
tell apart: that is why every entry is also published as written (`on_append`) and the
registry keeps the head; `verify(expected_head=...)` checks the log still contains it.

Over 500 lines, not split in the issue 14 or 15 changes: the chain format and its hash, the
writer, the verifier, the events' vocabulary and the owner's wording are five jobs (issue 17
splits them into agent/audit/).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from agent.errors import AgentError
from agent.space_reserve import OnFull, is_disk_full
from agent.strict_json import no_duplicate_keys

if TYPE_CHECKING:
    from agent.clock_step import ClockStep
    from agent.i18n import Translator

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64  # `prev` of the first entry
FILE_MODE = 0o600
# One entry is a few hundred bytes; the cap keeps one write() and one MQTT message small.
MAX_DETAIL_BYTES = 60 * 1024
# Deeper than any real detail, shallow enough that checking it cannot exhaust the stack.
MAX_DEPTH = 16
# Reading backwards for the last entry, this much at a time.
_BLOCK = 64 * 1024

FIELDS = ("seq", "ts", "event", "request_id", "detail", "prev", "hash")
EVENT_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
# A compact JWS (a request token) as a string value: never logged.
_JWS_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# Detail keys that would carry a secret; refused at any depth.
SECRET_KEYS = frozenset(
    {"token", "upload_token", "password", "secret", "authorization", "jws", "private_key"}
)

# The request events, each with the detail keys it must have and their types. The
# request code emits these; `describe` says each in words for the owner.
REQUEST_EVENTS: Mapping[str, Mapping[str, type]] = {
    "received": {},
    "rejected": {"reason": str},
    "waiting_clock": {},
    "awaiting_owner": {},
    "approved": {"by": str},
    "declined": {"reason": str},
    "held": {},
    "exported": {"files": int, "bytes": int},
    "file_uploaded": {"name": str, "sha256": str, "bytes": int},
    "completed": {},
    "failed": {"reason": str},
}
APPROVERS = frozenset({"policy", "owner"})
DECLINE_REASONS = frozenset({"owner_declined", "owner_timeout"})
# Written by the log itself, never by a caller: the lines of a torn tail it found.
TORN_TAIL = "torn_tail"
# Rejected tokens past the burst answered one by one, counted over a while (see
# agent/requests/rejections.py): of no one request, so request_id is null.
REJECTIONS_SUMMARISED = "rejections_summarised"
SUMMARY_FIELDS: Mapping[str, type] = {
    "from": str,
    "to": str,
    "count": int,
    "bytes": int,
    "reasons": dict,
    "first_ids": list,
}
# The wall clock was stepped (agent/clock_step.py): of no one request. Footage times on
# either side of the step are on different clocks; police reading a timeline need to know.
CLOCK_STEPPED = "clock_stepped"
CLOCK_STEP_FIELDS: Mapping[str, type] = {"from": str, "to": str, "step_ms": int, "synced": bool}
# A broken or missing state file the agent replaced to go on (agent/state_files.py,
# docs/service.md): of no one request, so request_id is null. `kept_as` is where the
# broken file was kept (null when there was no file to keep: it was missing).
STATE_FILE_RESET = "state_file_reset"
# The owner accepted a problem as normal for one camera, or took that back
# (agent/quality/accepted.py): of no one request. It changes what the registry is told.
PROBLEM_ACCEPTANCE = "problem_acceptance"
ACCEPTANCE_FIELDS: Mapping[str, type] = {
    "camera": str,
    "problem": str,
    "accepted": bool,
    "via": str,
}
ACCEPTANCE_VIA = frozenset({"cli", "owner_page"})
EVENTS = frozenset(REQUEST_EVENTS) | {
    TORN_TAIL,
    REJECTIONS_SUMMARISED,
    CLOCK_STEPPED,
    STATE_FILE_RESET,
    PROBLEM_ACCEPTANCE,
}


class AuditTrail(Protocol):
    """What request code needs of the audit log (AuditLog; a fake in unit tests)."""

    def append(
        self, event: str, request_id: str | None, detail: Mapping[str, object]
    ) -> object: ...


class AuditError(AgentError):
    """The audit log cannot be read or written."""


def canonical(value: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(
    seq: int, ts: str, event: str, request_id: str | None, detail: Mapping[str, Any], prev: str
) -> str:
    body = {
        "seq": seq,
        "ts": ts,
        "event": event,
        "request_id": request_id,
        "detail": detail,
        "prev": prev,
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def _rfc3339_ms(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class AuditEntry:
    """One line of the log. `detail` is plain JSON (dicts, lists, str, int, bool, None)."""

    seq: int
    ts: str
    event: str
    request_id: str | None
    detail: Mapping[str, Any]
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def line(self) -> bytes:
        """The exact bytes of its line, without the newline; also the MQTT payload.

        Fields in schema order (seq first, for people reading the file), `detail` with
        sorted keys; the hash does not depend on this order."""
        ordered = self.as_dict()
        ordered["detail"] = json.loads(canonical(self.detail))
        return json.dumps(
            ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    def computed_hash(self) -> str:
        return entry_hash(self.seq, self.ts, self.event, self.request_id, self.detail, self.prev)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.ts.replace("Z", "+00:00"))


@dataclass(frozen=True)
class TornTail:
    """Lines at the end of the log that are not entries: a crash while writing, or a hand."""

    first_line: int
    last_line: int
    offset: int  # where its first line starts in the file
    data: bytes  # those lines as in the file, without a final newline
    terminated: bool  # whether the last of them ends with a newline

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def lines_text(self) -> str:
        if self.first_line == self.last_line:
            return f"line {self.first_line}"
        return f"lines {self.first_line}-{self.last_line}"


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


@dataclass(frozen=True)
class _Tail:
    """Where the chain stands at the end of the file: what the next entry follows."""

    seq: int
    hash: str
    size: int
    torn: TornTail | None


class AuditLog:
    """The agent's audit log; safe for threads, and for processes (flock) appending at once.

    `on_append(entry)` is called with each entry once it is on disk, in seq order, in the
    appending thread while the log is locked: it must be quick and must not append. The
    daemon passes one that queues the entry's `line()` for the audit topic. An exception
    it raises is logged; the entry stays written.
    """

    def __init__(
        self,
        path: Path,
        *,
        on_append: Callable[[AuditEntry], None] | None = None,
        on_full: OnFull | None = None,
    ) -> None:
        self.path = path
        self._on_append = on_append
        # A full disk: release the space reserve (agent.space_reserve) and write again.
        self._on_full = on_full
        self._lock = threading.Lock()
        self._tail: _Tail | None = None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._tail = _scan_tail(fd, os.fstat(fd).st_size)
        except OSError as exc:
            raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    @property
    def torn(self) -> TornTail | None:
        """The torn tail found when the log was opened, until an append records it."""
        return self._tail.torn if self._tail else None

    def append(
        self, event: str, request_id: str | None, detail: Mapping[str, object]
    ) -> AuditEntry:
        """Write one entry (after a `torn_tail` entry, if the log ends in one) and return it.

        ValueError for an event, request id or detail that breaks the vocabulary (a bug in
        the caller); AuditError when the file cannot be written."""
        plain = _checked(event, request_id, detail)
        with self._lock:
            try:
                written = self._write(event, request_id, plain)
            except AuditError as exc:
                full = exc.__cause__ is not None and is_disk_full(exc.__cause__)
                if not (full and self._on_full is not None and self._on_full()):
                    raise
                written = self._write(event, request_id, plain)
            for entry in written:
                self._notify(entry)
        return written[-1]

    def _write(
        self, event: str, request_id: str | None, detail: Mapping[str, Any]
    ) -> list[AuditEntry]:
        created = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                fd = os.open(
                    self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
                )
                created = True
        except OSError as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror}") from exc
        try:
            # Another process (the owner's CLI acting without the daemon) may append too.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if created:
                os.fchmod(fd, FILE_MODE)  # whatever the umask
                _fsync_dir(self.path.parent)
            size = os.fstat(fd).st_size
            tail = self._tail
            if tail is None or tail.size != size:
                if tail is not None and size < tail.size:
                    log.error(
                        "audit log %s shrank from %d to %d bytes since this agent last read "
                        "or wrote it: entries were removed. `camera-agent audit verify --head` "
                        "with the registry's head shows it; the chain goes on from what is left",
                        self.path,
                        tail.size,
                        size,
                    )
                tail = _scan_tail(fd, size)
            now = _rfc3339_ms(datetime.now(UTC))
            written: list[AuditEntry] = []
            data = b""
            seq, prev = tail.seq, tail.hash
            if tail.torn is not None:
                torn = tail.torn
                seal = _make_entry(
                    seq + 1,
                    now,
                    TORN_TAIL,
                    None,
                    {
                        "from_line": torn.first_line,
                        "to_line": torn.last_line,
                        "bytes": len(torn.data),
                        "sha256": torn.sha256,
                    },
                    prev,
                )
                log.error(
                    "audit log %s ends in %d bytes that are not a complete entry (%s, "
                    "sha256 %s); the agent probably stopped while writing. Kept as found and "
                    "recorded by entry %d, which continues the chain from entry %d",
                    self.path,
                    len(torn.data),
                    torn.lines_text(),
                    torn.sha256,
                    seal.seq,
                    seq,
                )
                data += (b"" if torn.terminated else b"\n") + seal.line() + b"\n"
                written.append(seal)
                seq, prev = seal.seq, seal.hash
            entry = _make_entry(seq + 1, now, event, request_id, detail, prev)
            data += entry.line() + b"\n"
            written.append(entry)
            self._tail = None  # unknown until the write is complete
            try:
                _write_all(fd, data)
            except OSError as exc:
                if is_disk_full(exc):
                    # Part of the line may be written: take it back (we hold the lock and
                    # know the size before), so the retry after the space reserve is
                    # released appends a whole entry rather than after a torn tail.
                    os.ftruncate(fd, size)
                raise
            os.fsync(fd)
            self._tail = _Tail(entry.seq, entry.hash, size + len(data), None)
            return written
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)  # also releases the flock

    def _notify(self, entry: AuditEntry) -> None:
        if self._on_append is None:
            return
        try:
            self._on_append(entry)
        except Exception:
            log.exception("audit entry %d is written, but handing it on failed", entry.seq)

    def entries(self, request_id: str | None = None) -> list[AuditEntry]:
        """Every line that is an entry, in file order, unchecked (see `verify`): not the
        lines of a torn tail, recorded or not."""
        lines, terminated = _read_lines(self.path)
        covered, _ = _recorded_tears(lines)
        if not terminated:
            covered[len(lines)] = None
        found = [
            parsed
            for number, _, parsed in lines
            if isinstance(parsed, AuditEntry) and number not in covered
        ]
        if request_id is not None:
            found = [entry for entry in found if entry.request_id == request_id]
        return found

    def verify(self, expected_head: str | None = None) -> VerificationResult:
        """Check every line and link of the chain; `expected_head` is the hash of the
        newest entry the registry received, which the log must still contain."""
        lines, terminated = _read_lines(self.path)
        return _verify(lines, terminated, expected_head)


# --- writing -------------------------------------------------------------------------------


def _make_entry(
    seq: int, ts: str, event: str, request_id: str | None, detail: Mapping[str, Any], prev: str
) -> AuditEntry:
    digest = entry_hash(seq, ts, event, request_id, detail, prev)
    return AuditEntry(seq, ts, event, request_id, detail, prev, digest)


def _write_all(fd: int, data: bytes) -> None:
    # One write() of a few hundred bytes completes at once; the loop only guards the rare
    # short write, which leaves a torn tail that the next append records.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    """Make a new file's name durable, not just its bytes."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checked(event: str, request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    """The detail as plain JSON, after checking the event's vocabulary; ValueError if not."""
    if event == REJECTIONS_SUMMARISED:
        return _checked_summary(request_id, detail)
    if event == CLOCK_STEPPED:
        return _checked_clock_step(request_id, detail)
    if event == STATE_FILE_RESET:
        return _checked_reset(request_id, detail)
    if event == PROBLEM_ACCEPTANCE:
        return _checked_acceptance(request_id, detail)
    if event not in REQUEST_EVENTS:
        if event == TORN_TAIL:
            raise ValueError(f"{TORN_TAIL!r} entries are written by the audit log itself")
        raise ValueError(f"unknown audit event {event!r} (known: {', '.join(REQUEST_EVENTS)})")
    if request_id is None or not REQUEST_ID_RE.fullmatch(request_id):
        raise ValueError(f"audit event {event!r} needs a request id, not {request_id!r}")
    plain = _plain(event, detail)
    for key, kind in REQUEST_EVENTS[event].items():
        value = plain.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"audit event {event!r} needs detail.{key} ({kind.__name__})")
    if "reason" in REQUEST_EVENTS[event] and not REASON_RE.fullmatch(plain["reason"]):
        raise ValueError(f"audit event {event!r}: detail.reason must be a reason code")
    if event == "declined" and plain["reason"] not in DECLINE_REASONS:
        raise ValueError(
            f"audit event 'declined': detail.reason must be one of {sorted(DECLINE_REASONS)}"
        )
    if event == "approved" and plain["by"] not in APPROVERS:
        raise ValueError(f"audit event 'approved': detail.by must be one of {sorted(APPROVERS)}")
    if event == "file_uploaded" and not SHA256_RE.fullmatch(plain["sha256"]):
        raise ValueError("audit event 'file_uploaded': detail.sha256 must be 64 hex digits")
    for key in ("bytes", "files"):
        if key in REQUEST_EVENTS[event] and plain[key] < 0:
            raise ValueError(f"audit event {event!r}: detail.{key} must not be negative")
    return plain


def _plain(event: str, detail: Mapping[str, object]) -> dict[str, Any]:
    if not isinstance(detail, Mapping):
        raise ValueError("audit detail must be a mapping")
    problem = _json_problem(detail, "detail")
    if problem:
        raise ValueError(f"audit event {event!r}: {problem}")
    encoded = canonical(detail)
    if len(encoded) > MAX_DETAIL_BYTES:
        raise ValueError(f"audit event {event!r}: detail is over {MAX_DETAIL_BYTES} bytes")
    plain: dict[str, Any] = json.loads(encoded)
    return plain


def _of_no_request(
    event: str, request_id: str | None, detail: Mapping[str, object]
) -> dict[str, Any]:
    """The plain detail of an event that concerns no one request (request_id null)."""
    if request_id is not None:
        raise ValueError(f"audit event {event!r} concerns no one request: request_id is null")
    return _plain(event, detail)


def _typed_fields(event: str, plain: dict[str, Any], fields: Mapping[str, type]) -> dict[str, Any]:
    """`plain`, once each of `fields` is there with its type (a bool is no number)."""
    for key, kind in fields.items():
        value = plain.get(key)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"audit event {event!r} needs detail.{key} ({kind.__name__})")
    return plain


def _checked_summary(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = REJECTIONS_SUMMARISED
    plain = _typed_fields(event, _of_no_request(event, request_id, detail), SUMMARY_FIELDS)
    if plain["count"] < 1 or plain["bytes"] < 0:
        raise ValueError(f"audit event {event!r}: detail.count must be positive")
    reasons = plain["reasons"]
    if (
        not all(
            REASON_RE.fullmatch(k) and isinstance(n, int) and not isinstance(n, bool) and n > 0
            for k, n in reasons.items()
        )
        or sum(reasons.values()) != plain["count"]
    ):
        raise ValueError(
            f"audit event {event!r}: detail.reasons must count each reason code, "
            "adding up to detail.count"
        )
    if not all(isinstance(i, str) and REQUEST_ID_RE.fullmatch(i) for i in plain["first_ids"]):
        raise ValueError(f"audit event {event!r}: detail.first_ids must be request ids")
    return plain


def clock_step_detail(step: ClockStep) -> dict[str, object]:
    """The detail of a `clock_stepped` entry: the wall time the step left and the one it
    reached, the step in milliseconds (numbers are integers only), and whether the clock
    said it was synchronised just after."""
    return {
        "from": _rfc3339_ms(step.before),
        "to": _rfc3339_ms(step.after),
        "step_ms": round(step.seconds * 1000),
        "synced": step.synced,
    }


def _checked_clock_step(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = CLOCK_STEPPED
    plain = _typed_fields(event, _of_no_request(event, request_id, detail), CLOCK_STEP_FIELDS)
    if not (TS_RE.fullmatch(plain["from"]) and TS_RE.fullmatch(plain["to"])):
        raise ValueError(f"audit event {event!r}: detail.from and detail.to must be times")
    return plain


def _checked_reset(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = STATE_FILE_RESET
    plain = _of_no_request(event, request_id, detail)
    if not isinstance(plain.get("file"), str) or not isinstance(plain.get("error"), str):
        raise ValueError(f"audit event {event!r} needs detail.file and detail.error (str)")
    if not isinstance(plain.get("kept_as"), str | None) or "kept_as" not in plain:
        raise ValueError(f"audit event {event!r} needs detail.kept_as (str or null)")
    return plain


def _checked_acceptance(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = PROBLEM_ACCEPTANCE
    plain = _typed_fields(event, _of_no_request(event, request_id, detail), ACCEPTANCE_FIELDS)
    if not REASON_RE.fullmatch(plain["problem"]) or plain["via"] not in ACCEPTANCE_VIA:
        raise ValueError(
            f"audit event {event!r}: detail.problem must be a problem code and detail.via "
            f"one of {sorted(ACCEPTANCE_VIA)}"
        )
    return plain


def _json_problem(value: object, where: str, depth: int = 0) -> str | None:
    """Why `value` cannot go into an entry, or None: plain JSON, integers, no secrets."""
    if depth > MAX_DEPTH:
        return f"{where} is nested more than {MAX_DEPTH} deep"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, str):
        if _JWS_RE.fullmatch(value):
            return f"{where} looks like a signed token; tokens are never logged"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} is not valid Unicode text"
        return None
    if isinstance(value, float):
        return f"{where} is a fraction; numbers in the audit log are integers"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key that is not text: {key!r}"
            if key.lower() in SECRET_KEYS:
                return f"{where}.{key} would hold a secret; secrets are never logged"
            problem = _json_problem(item, f"{where}.{key}", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}, not JSON"


# --- reading -------------------------------------------------------------------------------


def _usable(raw: bytes) -> tuple[int, str] | None:
    """(seq, hash) of a line the chain can continue from, or None."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(value, dict):
        return None
    seq, digest = value.get("seq"), value.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None
    if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
        return None
    return seq, digest


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            raise OSError(0, "the file got shorter while it was read")
        parts.append(chunk)
        length -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _scan_tail(fd: int, size: int) -> _Tail:
    """Read backwards to the last line that is an entry; what follows it is a torn tail."""
    buf = b""
    start = size  # buf holds the file's bytes [start, size)
    while True:
        if start > 0:
            step = min(_BLOCK, start)
            start -= step
            buf = _pread_all(fd, step, start) + buf
        terminated = buf.endswith(b"\n")
        parts = (buf[:-1] if terminated else buf).split(b"\n") if buf else []
        offsets: list[int] = []
        at = start
        for part in parts:
            offsets.append(at)
            at += len(part) + 1
        # parts[0] may begin before `start`: only whole once the start of the file is read.
        first_whole = 0 if start == 0 else 1
        for i in range(len(parts) - 1, first_whole - 1, -1):
            line_terminated = i < len(parts) - 1 or terminated
            found = _usable(parts[i]) if line_terminated else None
            if found is not None:
                return _Tail(found[0], found[1], size, _torn(fd, parts, offsets, i + 1, terminated))
        if start == 0:
            return _Tail(0, GENESIS, size, _torn(fd, parts, offsets, 0, terminated))


def _torn(
    fd: int, parts: list[bytes], offsets: list[int], first: int, terminated: bool
) -> TornTail | None:
    if first >= len(parts):
        return None
    offset = offsets[first]
    before = _count_newlines(fd, offset)
    return TornTail(
        first_line=before + 1,
        last_line=before + len(parts) - first,
        offset=offset,
        data=b"\n".join(parts[first:]),
        terminated=terminated,
    )


def _count_newlines(fd: int, end: int) -> int:
    count, offset = 0, 0
    while offset < end:
        chunk = _pread_all(fd, min(_BLOCK * 16, end - offset), offset)
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


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
    problem = _json_problem(detail, "detail")
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


# --- words for the owner -------------------------------------------------------------------

REJECTION_WORDS: Mapping[str, str] = {
    "malformed": "the token is not a well-formed signed request",
    "too_large": "the token is larger than any real request",
    "bad_algorithm": "the token is not signed with Ed25519 (EdDSA)",
    "bad_type": "the token is not marked as a camera footage request",
    "unknown_key": "the token is not signed with a police key pinned in the config",
    "bad_signature": "the token's signature does not verify",
    "claims_invalid": "a required part of the request is missing or of the wrong kind",
    "wrong_audience": "the request is addressed to another agent",
    "expired": "the request has expired",
    "not_yet_valid": "the request is dated in the future",
    "replayed": "this request was received before (a replay)",
    "unknown_camera": "it names a camera that is not configured here",
    "window_invalid": "its time window is invalid, in the future, or before any footage",
    "window_too_long": "its time window is longer than police.max_window allows",
    "upload_not_allowed": "its upload address is not in police.upload_allow",
}
DECLINE_WORDS: Mapping[str, str] = {
    "owner_declined": "you declined it",
    "owner_timeout": "nobody approved it within police.owner_timeout",
}
FAILURE_WORDS: Mapping[str, str] = {
    "footage_missing": "footage of the window is missing",
    "footage_altered": "a recorded file no longer matches the hash taken when it was written; "
    "nothing altered was sent",
    "upload_failed": "the upload to the evidence store failed",
    "device_key_unusable": "the device key that signs evidence is missing or unusable; "
    "the agent needs re-enrolment",
}


def _local(ts: object) -> str:
    if not isinstance(ts, str):
        return str(ts)
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _size(count: object, _: Translator) -> str:
    if not isinstance(count, int):
        return _("? bytes")
    if count < 1_000_000:
        return _.ngettext("{count} byte", "{count} bytes", count).format(count=count)
    return _("{megabytes} MB").format(megabytes=f"{count / 1e6:.1f}")


def _because(words: Mapping[str, str], reason: object, _: Translator) -> str:
    said = words.get(str(reason))
    return f"{_(said)} ({reason})" if said else str(reason)


def describe(entry: AuditEntry, translate: Translator | None = None) -> str:
    """What an entry says, in words for the owner: English, or the language of `translate`
    (the word maps above are the catalogue's msgids)."""
    from agent.i18n import translator

    _ = translate if translate is not None else translator("en")
    d = entry.detail
    match entry.event:
        case "received":
            kind = d.get("kind")
            if kind == "order":
                said = [_("received a police order")]
            elif kind == "voluntary":
                said = [_("received a voluntary request")]
            else:
                said = [_("received a request")]
            cameras = d.get("cameras")
            if isinstance(cameras, list) and cameras:
                said.append(
                    _("for camera {cameras}").format(cameras=", ".join(str(c) for c in cameras))
                )
            window = d.get("window")
            if isinstance(window, dict) and "start" in window and "end" in window:
                said.append(
                    _("from {start} to {end}").format(
                        start=_local(window["start"]), end=_local(window["end"])
                    )
                )
            if d.get("case"):
                said.append(_("(case {case})").format(case=d["case"]))
            return " ".join(said)
        case "rejected":
            return _("rejected — {reason}").format(
                reason=_because(REJECTION_WORDS, d.get("reason"), _)
            )
        case "waiting_clock":
            return _("waiting until the system clock is synchronised before checking it")
        case "awaiting_owner":
            return _("waiting for you to approve or decline it (camera-agent requests)")
        case "approved":
            if d.get("by") == "policy":
                return _("approved automatically by your policy (police.consent)")
            return _("approved by you")
        case "declined":
            return _("declined — {reason}").format(
                reason=_because(DECLINE_WORDS, d.get("reason"), _)
            )
        case "held":
            return _("its footage is on hold: pruning will not delete it")
        case "exported":
            files = d.get("files")
            count = files if isinstance(files, int) else 0
            return _.ngettext(
                "exported {files} file, {size}, checked against the hash taken when it was "
                "recorded",
                "exported {files} files, {size}, each checked against the hash taken when it "
                "was recorded",
                count,
            ).format(files=files, size=_size(d.get("bytes"), _))
        case "file_uploaded":
            digest = str(d.get("sha256", ""))
            return _("uploaded {name} ({size}, sha256 {digest}…)").format(
                name=d.get("name"), size=_size(d.get("bytes"), _), digest=digest[:16]
            )
        case "completed":
            return _("completed: the footage and its signed manifest were delivered")
        case "failed":
            return _("failed — {reason}").format(reason=_because(FAILURE_WORDS, d.get("reason"), _))
        case "rejections_summarised":
            counted = d.get("count")
            reasons = d.get("reasons")
            said_reasons = (
                ", ".join(f"{reason} {n}" for reason, n in reasons.items())
                if isinstance(reasons, dict)
                else "?"
            )
            return _.ngettext(
                "{count} more rejected token from {start} to {end}, counted, not answered one "
                "by one (a flood?): {reasons}",
                "{count} more rejected tokens from {start} to {end}, counted, not answered one "
                "by one (a flood?): {reasons}",
                counted if isinstance(counted, int) else 0,
            ).format(
                count=counted,
                start=_local(d.get("from")),
                end=_local(d.get("to")),
                reasons=said_reasons,
            )
        case "clock_stepped":
            step_ms = d.get("step_ms")
            seconds = step_ms / 1000 if isinstance(step_ms, int) else 0.0
            return _(
                "the system clock was stepped by {seconds} s, from {start} to {end}: footage "
                "times jump there"
            ).format(
                seconds=f"{seconds:+.3f}", start=_local(d.get("from")), end=_local(d.get("to"))
            )
        case "state_file_reset":
            if d.get("kept_as") is None:
                return _(
                    "state file {file} was missing ({error}); the agent started a new one"
                ).format(file=d.get("file"), error=d.get("error"))
            return _(
                "state file {file} was broken ({error}); kept as {kept_as}, and the agent "
                "started a new one"
            ).format(file=d.get("file"), error=d.get("error"), kept_as=d.get("kept_as"))
        case "problem_acceptance":
            if d.get("accepted") is True:
                change = _("camera {camera}: you accepted {problem} as normal for this camera")
            else:
                change = _("camera {camera}: {problem} is no longer accepted as normal")
            return change.format(camera=d.get("camera"), problem=d.get("problem"))
        case "torn_tail":
            first, last = d.get("from_line"), d.get("to_line")
            if first == last:
                lines = _("line {first}").format(first=first)
            else:
                lines = _("lines {first}-{last}").format(first=first, last=last)
            return _(
                "audit log: {lines} ({bytes} bytes) had been cut off while being written "
                "(the agent stopped?); kept as found, and the chain goes on"
            ).format(lines=lines, bytes=d.get("bytes"))
        case _:
            extra = json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)
            return entry.event + ("" if extra == "{}" else f" {extra}")
