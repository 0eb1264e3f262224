"""The notification sender: hooks that only enqueue, and one thread that does the rest.

Camera workers, the publisher and the request desk never wait for a mail server: their
hooks put an event on a queue. The `notifications` thread applies the rate limit or
the digest, renders the message in the owner's language and delivers it on every
configured channel, retrying each channel with backoff and logging what fails. What it holds
for later (held-back events, the digest, retries) is saved in the data directory after each
step that changed it, and taken back when the agent starts again."""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from agent.clock import ClockState
from agent.config import AgentConfig
from agent.i18n import translator
from agent.notify import saved
from agent.notify.channels import Channel, ChannelError, EmailChannel, NtfyChannel, WebhookChannel
from agent.notify.config import EventKind, NotificationsConfig
from agent.notify.events import DOWN, REQUEST_ENDED, Event, RequestFacts
from agent.notify.limiter import Digest, Throttle
from agent.notify.messages import Message, Renderer
from agent.notify.saved import SavedDelivery, Snapshot
from agent.quality.assess import Health
from contract.request_states import RequestState

log = logging.getLogger(__name__)

# After a failed delivery a channel is tried again after each of these, then given up.
RETRY_DELAYS_S = (10.0, 60.0, 300.0, 1800.0)
# A Pi has no battery clock: it boots unsynchronised and NTP sets it within a minute or
# two. Only a clock still unsynchronised after this long is worth telling the owner.
CLOCK_GRACE_S = 900.0
CLOCK_POLL_S = 30.0
# Cameras take a while to answer after a reboot or a power cut (a recorder boots slower
# than the Pi): a camera that has not worked since the agent started is told as failed
# only if it still does not work this long after the start.
STARTUP_GRACE_S = 120.0
# The thread looks at the stop event at least this often.
STOP_CHECK_S = 1.0
# Deliveries waiting for a retry; beyond this the oldest are dropped (a channel down for
# days must not grow the agent's memory).
MAX_WAITING = 200


@dataclass(frozen=True)
class Tuning:
    """Timings that tests shorten."""

    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S
    clock_grace_s: float = CLOCK_GRACE_S
    clock_poll_s: float = CLOCK_POLL_S
    startup_grace_s: float = STARTUP_GRACE_S


@dataclass(order=True)
class _Delivery:
    due: datetime
    seq: int
    channel: Channel = field(compare=False)
    message: Message = field(compare=False)
    tries: int = field(default=0, compare=False)


def channels_for(config: AgentConfig) -> list[Channel]:
    """The channels the owner configured, in the order email, webhook, ntfy."""
    settings = config.notifications
    if settings is None:
        return []
    channels: list[Channel] = []
    if settings.email is not None:
        channels.append(EmailChannel(settings.email, config.agent.id))
    if settings.webhook is not None:
        channels.append(WebhookChannel(settings.webhook, config.agent.id, config.agent.locale))
    if settings.ntfy is not None:
        channels.append(NtfyChannel(settings.ntfy))
    return channels


class Notifications:
    """Always safe to call: without a `notifications:` section the hooks do nothing."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], ClockState],
        channels: Sequence[Channel] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo | None = None,
        tuning: Tuning = Tuning(),
    ) -> None:
        self._settings: NotificationsConfig | None = config.notifications
        self._channels = list(channels) if channels is not None else channels_for(config)
        self._clock = clock
        self._now = now
        self._tuning = tuning
        names = {camera.id: camera.name for camera in config.cameras}
        page = config.owner_page.port if config.owner_page.enabled else None
        self._renderer = Renderer(
            config.agent.id, translator(config.agent.locale), names, tz, owner_page_port=page
        )
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._waiting: list[_Delivery] = []
        self._seq = itertools.count()
        settings = self._settings
        self._wanted = frozenset(settings.events) if settings is not None else frozenset()
        self._throttle = Throttle(settings.min_interval if settings is not None else 1.0)
        start = now()
        self._digest = (
            Digest(settings.digest_at, start, tz)
            if settings is not None and settings.digest == "daily"
            else None
        )
        self._grace_ends = start + timedelta(seconds=tuning.startup_grace_s)
        # Cameras down since the start, told only if still down when the grace ends.
        self._not_yet_up: dict[str, Event] = {}
        self._not_yet_up_lock = threading.Lock()
        self._unsynced_since: datetime | None = None
        self._clock_told = False
        self._next_clock_poll = start
        self._path = config.agent.data_dir / saved.FILE_NAME
        self._saved = self._snapshot()  # what the file holds, as far as this instance knows
        self._save_error: str | None = None
        if self.enabled:
            self._restore(start)

    @property
    def enabled(self) -> bool:
        return self._settings is not None and bool(self._channels)

    # --- hooks: called from other threads, they only enqueue ---------------------------------

    def notify(self, event: Event) -> None:
        if self.enabled and event.kind in self._wanted:
            self._events.put(event)
            self._wake.set()

    def camera_changed(self, camera: str, before: Health | None, after: Health) -> None:
        """The publisher saw a camera's status or problems change."""
        was_down = before is not None and before.status in DOWN
        now = self._now()
        with self._not_yet_up_lock:
            if before is None and after.status in DOWN and now < self._grace_ends:
                self._not_yet_up[camera] = Event(
                    "camera_failed", now, camera, after.status, after.problems
                )
                self._wake.set()
                return
            if after.status not in DOWN and self._not_yet_up.pop(camera, None) is not None:
                return  # it came up within the grace: the owner was never told it failed
        kind: EventKind
        if after.status in DOWN and not was_down:
            kind = "camera_failed"
        elif was_down and after.status not in DOWN:
            kind = "camera_recovered"
        else:
            return
        self.notify(Event(kind, now, camera, after.status, after.problems))

    def storage_changed(self, low: bool, free_bytes: int, footage_bytes: int) -> None:
        """Storage became low (or no longer is)."""
        if low:
            self.notify(
                Event(
                    "storage_low", self._now(), free_bytes=free_bytes, footage_bytes=footage_bytes
                )
            )

    def request_changed(self, request: RequestFacts) -> None:
        """The request desk published a request's new state."""
        kind: EventKind
        if request.state == RequestState.RECEIVED:
            kind = "request_received"
        elif request.state in REQUEST_ENDED:
            kind = "request_completed"
        else:
            return
        self.notify(Event(kind, self._now(), request=request))

    # --- the sender thread -------------------------------------------------------------------

    def start(self, stop: threading.Event) -> None:
        if not self.enabled:
            return
        names = ", ".join(channel.name for channel in self._channels)
        log.info("notifications by %s", names)
        threading.Thread(target=self.run, args=(stop,), name="notifications", daemon=True).start()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wait = self.step()
            except Exception:
                log.exception("notifications: unexpected error; carrying on")
                wait = STOP_CHECK_S
            self._wake.wait(min(max(wait, 0.0), STOP_CHECK_S))
            self._wake.clear()

    def step(self) -> float:
        """Everything due now: new events, held-back ones, the digest, retries. Returns the
        seconds until something else falls due (tests call this with a controlled clock)."""
        now = self._now()
        self._watch_clock(now)
        self._end_grace(now)
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if self._digest is not None and not event.urgent:
                self._digest.add(event)
                continue
            outgoing = self._throttle.offer(event, now)
            if outgoing is not None:
                self._queue(self._renderer.single(outgoing), now)
        for outgoing in self._throttle.due(now):
            self._queue(self._renderer.single(outgoing), now)
        if self._digest is not None:
            events = self._digest.take(now)
            if events:
                self._queue(self._renderer.digest(events), now)
        self._send_due()
        self._save()
        return self._seconds_until_next(self._now())

    def _watch_clock(self, now: datetime) -> None:
        if "clock_unsynced" not in self._wanted or now < self._next_clock_poll:
            return
        self._next_clock_poll = now + timedelta(seconds=self._tuning.clock_poll_s)
        state = self._clock()
        if state.synced:
            self._unsynced_since, self._clock_told = None, False
            return
        if self._unsynced_since is None:
            self._unsynced_since = now
        grace = timedelta(seconds=self._tuning.clock_grace_s)
        if not self._clock_told and now - self._unsynced_since >= grace:
            self._clock_told = True
            self.notify(Event("clock_unsynced", self._unsynced_since, clock_source=state.source))
            self._wake.set()

    def _end_grace(self, now: datetime) -> None:
        if now < self._grace_ends:
            return
        with self._not_yet_up_lock:
            still_down, self._not_yet_up = list(self._not_yet_up.values()), {}
        for event in still_down:
            self.notify(event)

    def _queue(self, message: Message, now: datetime) -> None:
        for channel in self._channels:
            heapq.heappush(self._waiting, _Delivery(now, next(self._seq), channel, message))
        while len(self._waiting) > MAX_WAITING:
            dropped = min(self._waiting, key=lambda d: d.seq)
            self._waiting.remove(dropped)
            heapq.heapify(self._waiting)
            log.error(
                "notification %r by %s dropped: too many waiting for a retry",
                dropped.message.title,
                dropped.channel.name,
            )

    def _send_due(self) -> None:
        while self._waiting and self._waiting[0].due <= self._now():
            delivery = heapq.heappop(self._waiting)
            channel, message = delivery.channel, delivery.message
            try:
                channel.send(message)
            except ChannelError as exc:
                delays = self._tuning.retry_delays_s
                if delivery.tries < len(delays):
                    delay = delays[delivery.tries]
                    log.warning(
                        "notification %r by %s failed (%s); trying again in %.0f s",
                        message.title,
                        channel.name,
                        exc,
                        delay,
                    )
                    delivery.tries += 1
                    delivery.due = self._now() + timedelta(seconds=delay)
                    heapq.heappush(self._waiting, delivery)
                else:
                    log.error(
                        "notification %r by %s failed %d times, giving up: %s",
                        message.title,
                        channel.name,
                        delivery.tries + 1,
                        exc,
                    )
            except Exception:
                log.exception(
                    "notification %r by %s: unexpected error", message.title, channel.name
                )
            else:
                log.info("notification %r sent by %s", message.title, channel.name)

    # --- across restarts: only the notifications thread (step) touches this state ------------

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            throttle=self._throttle.snapshot(),
            digest=self._digest.snapshot() if self._digest is not None else None,
            waiting=tuple(
                SavedDelivery(d.channel.name, d.message, d.due, d.tries)
                for d in sorted(self._waiting, key=lambda d: d.seq)
            ),
        )

    def _restore(self, now: datetime) -> None:
        snapshot = saved.load(self._path)
        if snapshot is None:
            return
        self._throttle.restore(snapshot.throttle)
        if snapshot.digest is not None and self._digest is not None:
            self._digest.restore(snapshot.digest, now)
        elif snapshot.digest is not None and snapshot.digest.events:
            log.warning(
                "%d event(s) collected for the daily digest dropped: the digest is off",
                len(snapshot.digest.events),
            )
        channels = {channel.name: channel for channel in self._channels}
        for delivery in snapshot.waiting:
            channel = channels.get(delivery.channel)
            if channel is None:
                log.warning(
                    "notification %r by %s dropped: that channel is no longer configured",
                    delivery.message.title,
                    delivery.channel,
                )
                continue
            heapq.heappush(
                self._waiting,
                _Delivery(delivery.due, next(self._seq), channel, delivery.message, delivery.tries),
            )
        self._saved = snapshot  # what was dropped here is dropped from the file by the next step
        log.info(
            "notifications: took back %d held-back event(s), %d for the digest and %d "
            "delivery(s) waiting for a retry from %s",
            len(snapshot.throttle.pending),
            len(self._digest) if self._digest is not None else 0,
            len(self._waiting),
            self._path,
        )

    def _save(self) -> None:
        """Writes the file when this step changed what it holds: an idle step writes nothing.
        A failed write is tried again at the next step; each distinct error is logged once."""
        snapshot = self._snapshot()
        if snapshot == self._saved:
            return
        try:
            saved.save(self._path, snapshot)
        except OSError as exc:
            if str(exc) != self._save_error:
                self._save_error = str(exc)
                log.error(
                    "cannot write %s (%s): a restart now would lose held-back notifications, "
                    "the digest and retries",
                    self._path,
                    exc,
                )
            return
        if self._save_error is not None:
            log.info("%s written again", self._path)
            self._save_error = None
        self._saved = snapshot

    def _seconds_until_next(self, now: datetime) -> float:
        moments = [self._next_clock_poll] if "clock_unsynced" in self._wanted else []
        if self._not_yet_up:
            moments.append(self._grace_ends)
        if self._waiting:
            moments.append(self._waiting[0].due)
        due = self._throttle.next_due()
        if due is not None:
            moments.append(due)
        if self._digest is not None:
            moments.append(self._digest.next_at)
        if not self._events.empty():
            return 0.0
        return min(((m - now).total_seconds() for m in moments), default=STOP_CHECK_S)
