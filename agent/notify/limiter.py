"""Rate limiting and the daily digest: pure bookkeeping on times handed in, no threads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from agent.notify.config import EventKind
from agent.notify.events import SUPERSEDES, Event

Key = tuple[str, EventKind]


@dataclass(frozen=True)
class Outgoing:
    """An event to send now, with how many for the same subject and kind were held back."""

    event: Event
    held_back: int = 0
    since: datetime | None = None  # when the last message for this key went out


@dataclass(frozen=True)
class ThrottleState:
    """What a Throttle holds, to keep across a restart of the agent."""

    last_sent: Mapping[Key, datetime]
    pending: Mapping[Key, Event]  # every key here is also in last_sent
    held: Mapping[Key, int]  # per pending key, counting that event too


class Throttle:
    """At most one message per (subject, kind) per interval.

    What arrives within the interval is held: the latest event waits and goes out when the
    interval ends, counting the others. A camera that fails and recovers over and over
    thus tells its owner its latest state once an interval, never a stale one: a new
    `camera_recovered` drops a held `camera_failed` of the same camera and vice versa.
    """

    def __init__(self, min_interval_s: float) -> None:
        self._interval = timedelta(seconds=min_interval_s)
        self._last_sent: dict[Key, datetime] = {}
        self._pending: dict[Key, Event] = {}
        self._held: Counter[Key] = Counter()

    def offer(self, event: Event, now: datetime) -> Outgoing | None:
        """The event to send now, or None when it is held back."""
        key: Key = (event.subject, event.kind)
        other = SUPERSEDES.get(event.kind)
        if other is not None:
            stale: Key = (event.subject, other)
            if self._pending.pop(stale, None) is not None:
                self._held[key] += self._held.pop(stale, 0)
        last = self._last_sent.get(key)
        if event.urgent or last is None or now - last >= self._interval:
            self._pending.pop(key, None)
            self._last_sent[key] = now
            return Outgoing(event, self._held.pop(key, 0), last)
        self._pending[key] = event
        self._held[key] += 1
        return None

    def due(self, now: datetime) -> list[Outgoing]:
        """Held events whose interval has ended, to send now."""
        ready: list[Outgoing] = []
        for key, event in list(self._pending.items()):
            last = self._last_sent[key]
            if now - last >= self._interval:
                del self._pending[key]
                self._last_sent[key] = now
                ready.append(Outgoing(event, self._held.pop(key, 1) - 1, last))
        self._forget(now)
        return ready

    def next_due(self) -> datetime | None:
        times = [self._last_sent[key] + self._interval for key in self._pending]
        return min(times, default=None)

    def snapshot(self) -> ThrottleState:
        return ThrottleState(dict(self._last_sent), dict(self._pending), dict(self._held))

    def restore(self, state: ThrottleState) -> None:
        self._last_sent = dict(state.last_sent)
        self._pending = dict(state.pending)
        self._held = Counter(state.held)

    def _forget(self, now: datetime) -> None:
        """Drop keys whose interval is over and that hold nothing (requests come and go)."""
        for key, last in list(self._last_sent.items()):
            if key not in self._pending and now - last >= self._interval:
                del self._last_sent[key]
                self._held.pop(key, None)


def next_local(now: datetime, at: time, tz: tzinfo | None = None) -> datetime:
    """The first moment after `now` when the clock in `tz` (default: this machine's local
    time) shows `at`; across a daylight-saving change too."""
    day = now.astimezone(tz).date()
    for offset in range(3):
        naive = datetime.combine(day + timedelta(days=offset), at)
        # A naive datetime's astimezone() reads it as the machine's local time.
        candidate = naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: a time of day recurs within two days")


@dataclass(frozen=True)
class DigestState:
    """What a Digest holds, to keep across a restart of the agent."""

    events: tuple[Event, ...]
    next_at: datetime


class Digest:
    """Collects the day's non-urgent events for one summary at a local time of day."""

    def __init__(self, at: time, now: datetime, tz: tzinfo | None = None) -> None:
        self._at = at
        self._tz = tz
        self._events: list[Event] = []
        self.next_at = next_local(now, at, tz)

    def add(self, event: Event) -> None:
        self._events.append(event)

    def take(self, now: datetime) -> list[Event] | None:
        """The collected events once the time has come (an empty day sends nothing), else
        None."""
        if now < self.next_at:
            return None
        events, self._events = self._events, []
        self.next_at = next_local(now, self._at, self._tz)
        return events

    def snapshot(self) -> DigestState:
        return DigestState(tuple(self._events), self.next_at)

    def restore(self, state: DigestState, now: datetime) -> None:
        """Takes back the collected events. A digest whose time passed while the agent was
        down stays due, so it goes out at once; otherwise the time follows `at`, which the
        owner may have changed meanwhile."""
        self._events = list(state.events)
        if state.next_at <= now:
            self.next_at = state.next_at

    def __len__(self) -> int:
        return len(self._events)
