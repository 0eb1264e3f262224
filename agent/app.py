"""`camera-agent run`: builds the agent's parts from its config, starts them on the one
stop event `App.run(stop)` receives, runs the main loop, then stops them in reverse order
of starting.

Everything is built first (state files opened, nothing running yet), then started in this
order; a part that is started registers how it stops (agent/lifecycle.py), and once the stop
event is set they stop newest first, so each part stops before the parts it uses:

1. the message outbox: its stop is a close, the very last, after the link's last words.
2. the registry link (`mqtt`, `mqtt-outbox`): connects at once. Every part that reports
   writes through it, so it stops after all of them: it hands over what they wrote last
   (the desk's counted rejections), then the retained `offline` state, then disconnects.
3. the notifications (`notifications`): the storage, desk and publisher only enqueue to
   it. It has no stop of its own: its thread sees the stop event within STOP_CHECK_S and
   ends, and what waits for delivery is on disk after each pass (agent/notify/saved.py).
4. the footage storage (index rebuild, folder scans): the recorders write its index and
   the desk and owner page read it, so it stops (waits for its threads, closes the index)
   after them.
   The camera clocks (`camera-clocks`) start next: they write their readings into the
   index, so they stop before it.
5. the request desk (`requests`): stops by writing the counted rejections to the audit
   log, hence to the outbox, before the link closes.
6. the camera workers (the supervisor): record into the storage; joined, a stuck one is
   left behind (`daemon_process.exit_past_stuck_threads`).
7. the owner page (`owner-page`), if on: reads the store and the index, hands the owner's
   decisions to the desk.
8. the control socket (`control`): last to start, first to stop, so an owner command
   finds no daemon as soon as the agent is stopping rather than a half-stopped one.

Then systemd hears READY=1, and the main loop publishes, prunes and feeds the watchdog
until the stop event is set (SIGTERM, SIGINT) or the workers keep crashing.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent import __version__, memory
from agent.audit import (
    AUDIT_FILE,
    CLOCK_STEPPED,
    STATE_FILE_RESET,
    AuditError,
    AuditLog,
    clock_step_detail,
)
from agent.clock import ClockState, clock_state
from agent.clock_step import ClockStep, ClockWatch
from agent.config import AgentConfig, CameraConfig, redact_url
from agent.control import ControlServer, socket_path
from agent.control_handler import ControlHandler
from agent.crypto import device_key
from agent.errors import AgentError
from agent.i18n import translator
from agent.lifecycle import Lifecycle, StopEvent
from agent.mqtt import payloads
from agent.mqtt.client import RegistryLink
from agent.mqtt.outbox import OUTBOX_FILE, Outbox
from agent.mqtt.senders import AuditSender, StatusSender
from agent.notify.service import Notifications
from agent.onvif.camera_clocks import MEASURE_EVERY_S, CameraClocks
from agent.police_requests.desk import RequestDesk
from agent.police_requests.holds import holds_to_keep
from agent.police_requests.recovery import open_request_store
from agent.police_requests.setup import police_key_sets, request_desk
from agent.quality.accepted import Acceptance, AcceptedProblems
from agent.quality.assess import WARMUP_SAMPLES, Expectations, StreamAssessor
from agent.quality.reference import ReferenceStore
from agent.recording.storage import Storage
from agent.reporter import CameraChannel, Reporter
from agent.space_reserve import SpaceReserve
from agent.state import Counters
from agent.state_files import open_or_move_aside
from agent.streams.analysis import AnalysisRoute, SubStreamWorker
from agent.streams.worker import CameraWorker, OpenSource, open_stream
from agent.supervisor import WEDGED_AFTER_S, Supervisor
from agent.systemd import Notifier, watchdog_interval
from contract.topics import Topics

if TYPE_CHECKING:
    from agent.owner_page.server import OwnerPageServer

log = logging.getLogger(__name__)

# The main loop wakes at least this often to publish what is due and feed the watchdog.
# Between ticks it sleeps on the registry link's wake-up event, which every connect sets
# (the birth goes out at once) and so does the stop event (StopEvent.wakes): nothing else
# wakes it.
TICK_S = 1.0
# A clean stop must finish within systemd's patience and the 5 s the contract promises.
WORKER_JOIN_S = 1.5

EXIT_OK = 0
EXIT_WORKERS_FAILED = 70  # EX_SOFTWARE: workers kept crashing; systemd restarts us


@dataclass(frozen=True)
class Tuning:
    """Internal timings that tests shorten; owners never need to set these."""

    wedged_after: float = WEDGED_AFTER_S
    warmup_samples: int = WARMUP_SAMPLES
    camera_clock_every: float = MEASURE_EVERY_S


def camera_source(camera: CameraConfig) -> OpenSource:
    if camera.url is None:  # its ONVIF device gives the stream, asked at each connect
        # Imported only for such a camera: the ONVIF client (zeep, lxml, httpx) is 21 MB of
        # resident memory, which took the 8-camera agent over its 150 MB target.
        from agent.streams.onvif_stream import open_onvif_stream

        return open_onvif_stream(camera)
    return open_stream(camera.stream_url(), redact_url(camera.url), camera.rtsp_transport)


def analysis_source(camera: CameraConfig) -> tuple[OpenSource, str] | None:
    """The camera's sub-stream, to open and to show in logs; None without one.

    With camera_source, the one place a camera's streams are found: `analysis_url` when
    given; else, for a camera that names only its ONVIF device, the device's smallest
    H.264/H.265 profile, asked at each connect (agent/streams/onvif_stream.py)."""
    if camera.analysis_url is None and camera.url is None and camera.onvif is not None:
        from agent.streams.onvif_stream import open_onvif_analysis_stream  # lazily: see above

        return open_onvif_analysis_stream(camera), camera.shown_url()
    url = camera.analysis_stream_url()
    if url is None or camera.analysis_url is None:
        return None
    shown = redact_url(camera.analysis_url)
    return open_stream(url, shown, camera.rtsp_transport), shown


def location_of(camera: CameraConfig) -> dict[str, float | None] | None:
    if camera.location is None:
        return None
    return camera.location.model_dump()


@dataclass(frozen=True)
class Parts:
    """The running agent's long-lived parts, built from its config, none started yet."""

    bdseq: int
    topics: Topics
    reserve: SpaceReserve
    outbox: Outbox
    link: RegistryLink
    notifications: Notifications
    clock_watch: ClockWatch
    storage: Storage
    camera_clocks: CameraClocks
    channels: list[CameraChannel]
    supervisor: Supervisor
    reporter: Reporter
    audit: AuditLog
    desk: RequestDesk
    acceptance: Acceptance
    control: ControlServer


class App:
    def __init__(
        self,
        config: AgentConfig,
        *,
        open_source: Callable[[CameraConfig], OpenSource] = camera_source,
        open_analysis_source: Callable[
            [CameraConfig], tuple[OpenSource, str] | None
        ] = analysis_source,
        notifier: Notifier | None = None,
        tuning: Tuning = Tuning(),
        clock: Callable[[], ClockState] = clock_state,
    ) -> None:
        self._config = config
        self._open_source = open_source
        self._open_analysis_source = open_analysis_source
        self._notifier = notifier or Notifier.from_env()
        self._tuning = tuning
        self._clock = clock

    def run(self, stop: StopEvent) -> int:
        """Run until `stop` is set (or the workers keep crashing); the exit code."""
        parts = self._build(stop)
        log.info(
            "camera-agent %s starting: agent %s, %d camera(s), boot %d",
            __version__,
            self._config.agent.id,
            len(self._config.cameras),
            parts.bdseq,
        )
        if not self._clock().synced:
            log.warning("the system clock is not synchronised; footage times may be wrong")
        memory.limit_arenas()
        memory.cap_ffmpeg_blocks()
        with Lifecycle(stop) as lifecycle:
            self._start(parts, stop, lifecycle)
            self._notifier.ready()
            self._notifier.status(f"watching {len(self._config.cameras)} camera(s)")
            code = self._main_loop(parts, stop)
            log.info("stopping")
            self._notifier.stopping()
        return code

    def _build(self, stop: threading.Event) -> Parts:
        config = self._config
        agent_id = config.agent.id
        data_dir = config.agent.data_dir
        # Space kept back so that a full disk cannot stop the counters, outbox and audit
        # writes (agent/space_reserve.py); made here if the disk has room, else later.
        reserve = SpaceReserve(data_dir)
        counters = Counters(data_dir, on_full=reserve.release)
        reserve.tick()
        bdseq = counters.next_boot()
        topics = Topics(config.registry.topic_prefix, agent_id)
        registry = config.registry
        # A broken outbox or request store is kept aside and the agent goes on with a new
        # one (docs/service.md, "State files"); health must flow whatever broke.
        outbox, outbox_reset = open_or_move_aside(
            data_dir / OUTBOX_FILE,
            functools.partial(Outbox, on_full=reserve.release),
            "the message outbox",
        )
        store, store_reset = open_request_store(data_dir)
        key_sets = police_key_sets(config)
        key, key_problem = device_key.for_daemon(data_dir)
        link = RegistryLink(
            registry,
            client_id=agent_id,
            will_topic=topics.state,
            will_payload=payloads.encode(payloads.death(agent_id, bdseq, "connection_lost")),
            outbox=outbox,
        )
        started = time.monotonic()
        # The owner's e-mail / webhook / ntfy messages; its hooks only enqueue.
        notifications = Notifications(config, clock=self._clock)
        clock_watch = ClockWatch()
        clock_watch.synced = self._clock().synced
        storage = Storage(
            config,
            on_low_change=notifications.storage_changed,
            clock_watch=clock_watch,
            holds=lambda: holds_to_keep(store.all()),
            reserve=reserve,
        )
        camera_clocks = CameraClocks(
            {c.id: c.onvif.url for c in config.cameras if c.onvif is not None},
            clock=self._clock,
            drift_limit=config.clock.camera_drift_limit,
            every=self._tuning.camera_clock_every,
            on_reading=storage.keep_clock_reading,
        )
        accepted = AcceptedProblems(data_dir)
        resets = [
            r
            for r in (
                outbox_reset,
                store_reset,
                storage.index_reset,
                accepted.reset,
                key_sets.reset if key_sets is not None else None,
            )
            if r is not None
        ]
        references = ReferenceStore(config.agent.data_dir)
        channels: list[CameraChannel] = []
        workers: list[CameraWorker] = []
        for camera in config.cameras:
            assessor = StreamAssessor(
                Expectations(camera.expect.min_fps, camera.expect.min_width),
                started,
                references=references.load(camera.id),
                on_reference=functools.partial(references.save, camera.id),
                warmup_samples=self._tuning.warmup_samples,
                keep_picture=config.owner_page.enabled,
            )
            channels.append(CameraChannel(camera.id, camera.name, location_of(camera), assessor))
            sub = self._open_analysis_source(camera)
            route = None if sub is None else AnalysisRoute(camera.id, started)
            workers.append(
                CameraWorker(
                    camera.id,
                    self._open_source(camera),
                    assessor,
                    camera.analysis_interval,
                    camera.shown_url(),
                    recorder=storage.recorders.get(camera.id),
                    pictures=route,
                    camera_clock=camera_clocks.rtcp,
                )
            )
            if sub is not None and route is not None:
                # Its own thread, watched by the supervisor like the main stream's
                # (agent/streams/analysis.py says what happens when either fails).
                workers.append(
                    SubStreamWorker(
                        camera.id, sub[0], assessor, camera.analysis_interval, sub[1], route
                    )
                )
            if camera.source_kind() == "file":
                log.warning(
                    "camera %s reads a local file in a loop: a demo aid, not a camera", camera.id
                )
        reporter = Reporter(
            link=link,
            topics=topics,
            counters=counters,
            bdseq=bdseq,
            cameras=channels,
            health_interval=registry.health_interval,
            clock=self._clock,
            footage=storage.report,
            on_change=notifications.camera_changed,
            packets=storage.packet_counts,
            clock_step=lambda: clock_watch.last,
            device_key_problem=key_problem,
            camera_clock=camera_clocks.report,
            camera_clock_offsets=camera_clocks.latest,
            police_keyset=key_sets.facts if key_sets is not None else None,
        )
        supervisor = Supervisor(workers, stop, wedged_after=self._tuning.wedged_after)
        audit = AuditLog(
            config.agent.data_dir / AUDIT_FILE,
            on_append=AuditSender(link, topics),
            on_full=reserve.release,
        )
        for reset in resets:
            try:
                audit.append(STATE_FILE_RESET, None, reset.audit_detail())
            except AuditError as exc:  # health must flow all the same
                log.error("cannot record the reset of %s in the audit log: %s", reset.file, exc)
        desk = request_desk(
            config,
            store=store,
            index=storage.index,
            audit=audit,
            publish_status=StatusSender(link, topics),
            clock=self._clock,
            key=key,
            key_problem=key_problem,
            on_state=notifications.request_changed,
            key_sets=key_sets,
            fetch=storage.fetch_from_recorders,
            oldest=storage.oldest_footage,
        )
        link.subscribe(topics.requests, desk.token_arrived)
        if key_sets is not None:
            link.subscribe(topics.police_keyset, key_sets.arrived)
        assessors = {channel.id: channel.assessor for channel in channels}

        # Replies reach the owner through the CLI: in the owner's language.
        _ = translator(config.agent.locale)
        acceptance = Acceptance(accepted, audit, {cid: a.accept for cid, a in assessors.items()}, _)
        acceptance.apply_all()
        handler = ControlHandler(
            desk=desk,
            acceptance=acceptance,
            references=references,
            assessors=assessors,
            translate=_,
        )
        return Parts(
            bdseq=bdseq,
            topics=topics,
            reserve=reserve,
            outbox=outbox,
            link=link,
            notifications=notifications,
            clock_watch=clock_watch,
            storage=storage,
            camera_clocks=camera_clocks,
            channels=channels,
            supervisor=supervisor,
            reporter=reporter,
            audit=audit,
            desk=desk,
            acceptance=acceptance,
            control=ControlServer(socket_path(config.agent.data_dir), handler),
        )

    def _start(self, parts: Parts, stop: threading.Event, lifecycle: Lifecycle) -> None:
        """Start the parts in the order the module docstring gives, and say how each stops."""
        lifecycle.started(parts.outbox.close)
        parts.link.start(stop)
        lifecycle.started(self._close_link, parts)
        parts.notifications.start(stop)
        parts.storage.start(stop)
        lifecycle.started(parts.storage.close)
        parts.camera_clocks.start(stop)
        lifecycle.started(parts.camera_clocks.join, WORKER_JOIN_S)
        parts.desk.start(stop)
        lifecycle.started(parts.desk.close)  # counted rejections into the audit log
        parts.supervisor.start()
        lifecycle.started(parts.supervisor.join, WORKER_JOIN_S)
        owner_page = self._start_owner_page(parts)
        if owner_page is not None:
            lifecycle.started(owner_page.close)
        parts.control.start(stop)
        lifecycle.started(parts.control.close)

    def _start_owner_page(self, parts: Parts) -> OwnerPageServer | None:
        config = self._config
        if not config.owner_page.enabled:
            return None
        # Imported only when on: the web stack costs start-up time and memory.
        from agent.owner_page.server import start_owner_page
        from agent.owner_page.view import CameraSource

        return start_owner_page(
            config,
            [
                CameraSource(camera, channel)
                for camera, channel in zip(config.cameras, parts.channels, strict=True)
            ],
            parts.storage.index,
            parts.desk.decide,
            parts.acceptance,
        )

    def _close_link(self, parts: Parts) -> None:
        """The link's stop: its last messages and the retained `offline` state."""
        link = parts.link
        death = payloads.death(self._config.agent.id, parts.bdseq, "shutdown")
        link.close(parts.topics.state, payloads.encode(death))
        if link.backlog:
            log.info("%d message(s) wait in the outbox for the next start", link.backlog)

    def _main_loop(self, parts: Parts, stop: StopEvent) -> int:
        """Publish, prune and feed the watchdog until `stop`; the exit code."""
        supervisor, clock_watch = parts.supervisor, parts.clock_watch
        watchdog_every = watchdog_interval()
        tick = min(TICK_S, watchdog_every) if watchdog_every else TICK_S
        last_ping = float("-inf")
        wake = parts.link.wake
        stop.wakes(wake)
        while not stop.is_set():
            now = time.monotonic()
            alive = supervisor.check()
            if supervisor.gave_up:
                return EXIT_WORKERS_FAILED
            if alive and watchdog_every is not None and now - last_ping >= watchdog_every:
                self._notifier.watchdog()
                last_ping = now
            clock_watch.synced = self._clock().synced
            clock_watch.check()
            for step in clock_watch.take_new():
                clock_stepped(step, parts.audit)
            parts.reserve.tick()
            try:
                parts.storage.tick(now)
            except AgentError as exc:
                # A full or failing disk is reported in health, never a reason to stop.
                log.error("footage pruning: %s; trying again at the next pass", exc)
            parts.reporter.tick(now)
            # Until the next tick, a connect or the stop, whichever comes first. Cleared
            # after waking: a connect during the pass above still cuts this sleep short.
            wake.wait(tick)
            wake.clear()
        return EXIT_OK


def clock_stepped(step: ClockStep, audit: AuditLog) -> None:
    """Say that the wall clock was stepped: in the log, and in the audit log, since footage
    times on either side of the step are on different clocks."""
    log.warning(
        "the system clock was stepped by %+.3f s (from %s to %s, %s); footage times jump "
        "there, the segment it fell in is marked, and retention keeps ageing footage by the "
        "agent's own elapsed time",
        step.seconds,
        step.before.isoformat(timespec="milliseconds"),
        step.after.isoformat(timespec="milliseconds"),
        "synchronised" if step.synced else "not synchronised",
    )
    try:
        audit.append(CLOCK_STEPPED, None, clock_step_detail(step))
    except AuditError as exc:
        log.error("the clock step could not be written to the audit log: %s", exc)
