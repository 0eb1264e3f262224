"""The notifications' state on disk, so that a restart (an upgrade, a power cut) loses no
collected digest, held-back event or delivery waiting for a retry.

`<data_dir>/notifications.json`, plain JSON: datetimes as ISO 8601 with their offset,
tuples as lists. The file is the agent's own, but it is read as if it came from outside:
anything unexpected makes it a bad file, kept aside, never a crash of the agent."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from agent.notify.config import EVENT_KINDS, EventKind
from agent.notify.events import Event, RequestFacts
from agent.notify.limiter import DigestState, Key, ThrottleState
from agent.notify.messages import Message

log = logging.getLogger(__name__)

FILE_NAME = "notifications.json"
VERSION = 1
# Saved times lie within these: a time near datetime's own limits would overflow when the
# agent adds an interval to it, at every step.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

T = TypeVar("T")


@dataclass(frozen=True)
class SavedDelivery:
    """A message waiting for a retry on one channel, by the channel's name."""

    channel: str
    message: Message
    due: datetime
    tries: int


@dataclass(frozen=True)
class Snapshot:
    throttle: ThrottleState
    digest: DigestState | None  # None when the digest is off
    waiting: tuple[SavedDelivery, ...]  # oldest first


# --- to JSON ----------------------------------------------------------------------------------


def request_to_json(request: RequestFacts) -> dict[str, Any]:
    return {
        "id": request.id,
        "kind": request.kind,
        "case": request.case,
        "requester": request.requester,
        "basis": request.basis,
        "cameras": list(request.cameras),
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "state": request.state,
        "reason": request.reason,
        "decision": request.decision,
    }


def event_to_json(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "at": event.at.isoformat(),
        "camera": event.camera,
        "status": event.status,
        "problems": list(event.problems),
        "request": request_to_json(event.request) if event.request is not None else None,
        "free_bytes": event.free_bytes,
        "footage_bytes": event.footage_bytes,
        "clock_source": event.clock_source,
    }


def message_to_json(message: Message) -> dict[str, Any]:
    return {
        "kind": message.kind,
        "title": message.title,
        "body": message.body,
        "priority": message.priority,
        "tags": list(message.tags),
        "events": [event_to_json(event) for event in message.events],
        "held_back": message.held_back,
    }


def _throttle_to_json(state: ThrottleState) -> list[dict[str, Any]]:
    """One entry per (subject, kind); `held` counts the pending event too."""
    entries: list[dict[str, Any]] = []
    for (subject, kind), last in state.last_sent.items():
        event = state.pending.get((subject, kind))
        entries.append(
            {
                "subject": subject,
                "kind": kind,
                "last_sent": last.isoformat(),
                "pending": None if event is None else event_to_json(event),
                "held": state.held.get((subject, kind), 0),
            }
        )
    return entries


def snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    digest = snapshot.digest
    return {
        "version": VERSION,
        "throttle": _throttle_to_json(snapshot.throttle),
        "digest": None
        if digest is None
        else {
            "next_at": digest.next_at.isoformat(),
            "events": [event_to_json(event) for event in digest.events],
        },
        "waiting": [
            {
                "channel": delivery.channel,
                "due": delivery.due.isoformat(),
                "tries": delivery.tries,
                "message": message_to_json(delivery.message),
            }
            for delivery in snapshot.waiting
        ],
    }


# --- from JSON: ValueError saying what is wrong -----------------------------------------------


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, not {type(value).__name__}")
    return value


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _get(data: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
    """`data[key]`, of type `kind`; every key is required, also those that may be null."""
    path = _path(where, key)
    if key not in data:
        raise ValueError(f"{path} is missing")
    value = data[key]
    # bool is an int to Python, not to JSON.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{path} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _optional(data: Mapping[str, Any], key: str, kind: type[T], where: str) -> T | None:
    if key in data and data[key] is None:
        return None
    return _get(data, key, kind, where)


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _get(data, key, list, where)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{_path(where, key)} must be a list of strings")
    return tuple(items)


def _datetime(data: Mapping[str, Any], key: str, where: str) -> datetime:
    text = _get(data, key, str, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{_path(where, key)} is not an ISO 8601 time: {text!r}") from None
    # A naive time cannot be compared with the aware ones the agent uses.
    if moment.utcoffset() is None:
        raise ValueError(f"{_path(where, key)} has no UTC offset: {text!r}")
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{_path(where, key)} is not a time the agent could have saved")
    return moment


def _kind(data: Mapping[str, Any], key: str, where: str) -> EventKind:
    kind = _get(data, key, str, where)
    if kind not in EVENT_KINDS:
        raise ValueError(f"{_path(where, key)}: unknown event kind {kind!r}")
    return kind


def request_from_json(value: Any, where: str) -> RequestFacts:
    data = _object(value, where)
    return RequestFacts(
        id=_get(data, "id", str, where),
        kind=_get(data, "kind", str, where),
        case=_get(data, "case", str, where),
        requester=_get(data, "requester", str, where),
        basis=_get(data, "basis", str, where),
        cameras=_strings(data, "cameras", where),
        start=_datetime(data, "start", where),
        end=_datetime(data, "end", where),
        state=_get(data, "state", str, where),
        reason=_optional(data, "reason", str, where),
        decision=_get(data, "decision", str, where),
    )


def event_from_json(value: Any, where: str) -> Event:
    data = _object(value, where)
    request = _optional(data, "request", dict, where)
    return Event(
        kind=_kind(data, "kind", where),
        at=_datetime(data, "at", where),
        camera=_optional(data, "camera", str, where),
        status=_optional(data, "status", str, where),
        problems=_strings(data, "problems", where),
        request=None if request is None else request_from_json(request, f"{where}.request"),
        free_bytes=_optional(data, "free_bytes", int, where),
        footage_bytes=_optional(data, "footage_bytes", int, where),
        clock_source=_optional(data, "clock_source", str, where),
    )


def _events(data: Mapping[str, Any], key: str, where: str) -> tuple[Event, ...]:
    items = _get(data, key, list, where)
    return tuple(event_from_json(item, f"{where}.{key}[{i}]") for i, item in enumerate(items))


def message_from_json(value: Any, where: str) -> Message:
    data = _object(value, where)
    events = _events(data, "events", where)
    if not events:  # a message tells of one event or more
        raise ValueError(f"{_path(where, 'events')} is empty")
    return Message(
        kind=_get(data, "kind", str, where),
        title=_get(data, "title", str, where),
        body=_get(data, "body", str, where),
        priority=_get(data, "priority", int, where),
        tags=_strings(data, "tags", where),
        events=events,
        held_back=_get(data, "held_back", int, where),
    )


def _throttle(items: list[Any]) -> ThrottleState:
    last_sent: dict[Key, datetime] = {}
    pending: dict[Key, Event] = {}
    held: dict[Key, int] = {}
    for i, item in enumerate(items):
        where = f"throttle[{i}]"
        data = _object(item, where)
        key: Key = (_get(data, "subject", str, where), _kind(data, "kind", where))
        last_sent[key] = _datetime(data, "last_sent", where)
        event = _optional(data, "pending", dict, where)
        count = _get(data, "held", int, where)
        # The count includes the pending event: what a Throttle holds, never anything else.
        if count < 0 or (count == 0) != (event is None):
            raise ValueError(f"{where}.held must be 0 without a pending event, else 1 or more")
        if event is not None:
            pending[key] = event_from_json(event, f"{where}.pending")
            held[key] = count
    return ThrottleState(last_sent, pending, held)


def _digest(data: Mapping[str, Any]) -> DigestState:
    return DigestState(_events(data, "events", "digest"), _datetime(data, "next_at", "digest"))


def _waiting(items: list[Any]) -> tuple[SavedDelivery, ...]:
    waiting: list[SavedDelivery] = []
    for i, item in enumerate(items):
        where = f"waiting[{i}]"
        data = _object(item, where)
        tries = _get(data, "tries", int, where)
        if tries < 0:
            raise ValueError(f"{where}.tries must not be negative")
        waiting.append(
            SavedDelivery(
                channel=_get(data, "channel", str, where),
                message=message_from_json(_get(data, "message", dict, where), f"{where}.message"),
                due=_datetime(data, "due", where),
                tries=tries,
            )
        )
    return tuple(waiting)


def snapshot_from_json(value: Any) -> Snapshot:
    data = _object(value, "the file")
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise ValueError(f"unknown version {version!r} (this agent reads version {VERSION})")
    digest = _optional(data, "digest", dict, "")
    return Snapshot(
        throttle=_throttle(_get(data, "throttle", list, "")),
        digest=None if digest is None else _digest(digest),
        waiting=_waiting(_get(data, "waiting", list, "")),
    )


# --- the file ---------------------------------------------------------------------------------


def load(path: Path) -> Snapshot | None:
    """The saved state; None when there is none, or when the file is bad: then it is logged
    and kept beside as `<name>.corrupt-<unix time>` for a person to look at."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _keep_bad(path, f"cannot read it: {exc}")
        return None
    try:
        document = json.loads(raw.decode())
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deeply
        _keep_bad(path, f"not JSON: {exc}")
        return None
    try:
        return snapshot_from_json(document)
    except ValueError as exc:
        _keep_bad(path, str(exc))
        return None


def _keep_bad(path: Path, problem: str) -> None:
    kept = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    try:
        os.replace(path, kept)
    except OSError as exc:
        log.error(
            "%s is bad (%s) and could not be kept aside (%s); notifications start empty",
            path,
            problem,
            exc,
        )
        return
    log.error(
        "%s is bad (%s); kept it as %s, notifications start empty "
        "(held-back events, the digest and retries it held are not sent)",
        path,
        problem,
        kept.name,
    )


def save(path: Path, snapshot: Snapshot) -> None:
    """Writes atomically (temp file, fsync, rename): after a power cut the file is the old
    or the new one, never half of one. Raises OSError."""
    payload = json.dumps(snapshot_to_json(snapshot), ensure_ascii=False, indent=1).encode()
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh install's data directory
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
