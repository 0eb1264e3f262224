"""`camera-agent run`: wires config, camera workers, the registry link and systemd together."""

from __future__ import annotations

import faulthandler
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import __version__, memory
from agent.audit import (
    AUDIT_FILE,
    CLOCK_STEPPED,
    REQUEST_ID_RE,
    STATE_FILE_RESET,
    AuditEntry,
    AuditError,
    AuditLog,
    clock_step_detail,
)
from agent.clock import ClockState, clock_state
from agent.clock_step import ClockStep, ClockWatch
from agent.config import AgentConfig, CameraConfig, redact_url
from agent.control import ControlServer, socket_path
from agent.crypto import device_key
from agent.errors import AgentError
from agent.evidence.delivery import Delivery
from agent.evidence.upload import Uploader, session_trusting
from agent.i18n import Translator, translator
from agent.mqtt import payloads
from agent.mqtt.client import RegistryLink
from agent.mqtt.outbox import OUTBOX_FILE, REJECTED_STATUS_KEY, Outbox
from agent.mqtt.topics import Topics
from agent.notify.service import Notifications
from agent.quality.accepted import Acceptance, AcceptanceRefused, AcceptedProblems
from agent.quality.assess import WARMUP_SAMPLES, Expectations, StreamAssessor
from agent.quality.reference import ReferenceStore
from agent.recording.storage import Storage
from agent.reporter import CameraChannel, Reporter
from agent.requests.desk import NotAwaitingOwner, RequestDesk
from agent.requests.recovery import open_request_store
from agent.requests.setup import consent_of, policy_of
from agent.requests.store import RequestStore, UnknownRequest
from agent.requests.token import upload_allowed
from agent.requests.words import cannot_decide
from agent.space_reserve import SpaceReserve
from agent.state import Counters
from agent.state_files import open_or_move_aside
from agent.stop_signal import set_from_handler
from agent.streams.worker import CameraWorker, OpenSource, open_stream
from agent.supervisor import WEDGED_AFTER_S, Supervisor
from agent.systemd import Notifier, watchdog_interval

log = logging.getLogger(__name__)

# The main loop wakes at least this often to publish what is due and feed the watchdog.
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


def camera_source(camera: CameraConfig) -> OpenSource:
    return open_stream(camera.stream_url(), redact_url(camera.url), camera.rtsp_transport)


def location_of(camera: CameraConfig) -> dict[str, float | None] | None:
    if camera.location is None:
        return None
    return camera.location.model_dump()


class App:
    def __init__(
        self,
        config: AgentConfig,
        *,
        open_source: Callable[[CameraConfig], OpenSource] = camera_source,
        notifier: Notifier | None = None,
        tuning: Tuning = Tuning(),
        clock: Callable[[], ClockState] = clock_state,
    ) -> None:
        self._config = config
        self._open_source = open_source
        self._notifier = notifier or Notifier.from_env()
        self._tuning = tuning
        self._clock = clock

    def _request_desk(
        self,
        config: AgentConfig,
        storage: Storage,
        link: RegistryLink,
        topics: Topics,
        notifications: Notifications,
        audit: AuditLog,
        store: RequestStore,
        key: Ed25519PrivateKey | None,
        key_problem: str | None,
    ) -> RequestDesk:
        data_dir = config.agent.data_dir
        if key is not None:
            log.info("device key %s signs evidence manifests", device_key.describe(key)["kid"])

        def publish_status(request_id: str, body: dict[str, Any], retain: bool) -> None:
            # The id comes from a token: a `/`, `+` or `#` would make another topic, or
            # one paho cannot publish. The token check refuses such ids; this holds anyway.
            if not REQUEST_ID_RE.fullmatch(request_id):
                raise ValueError(f"{request_id!r} is not a request id; no status topic for it")
            topic = topics.request_status(request_id)
            if not retain:
                # A rejected token's: the broker would keep every junk token's answer for ever.
                # The outbox keeps only the newest MAX_REJECTED_STATUSES of them.
                link.send(
                    topic,
                    payloads.encode(body),
                    retain=False,
                    kind="status",
                    key=REJECTED_STATUS_KEY,
                )
                return
            link.send(topic, payloads.encode(body), retain=True, kind="status")

        policy = policy_of(config)
        uploader = Uploader(
            session_trusting(config.police.upload_ca_file),
            rate_limit_bytes_per_s=config.police.upload_rate_limit or None,
            # The upload URL was checked against the allow-list; so is every URL the
            # server hands back.
            url_allowed=lambda url: upload_allowed(url, policy.upload_allow),
        )
        return RequestDesk(
            agent_id=config.agent.id,
            policy=policy,
            consent=consent_of(config),
            store=store,
            index=storage.index,
            audit=audit,
            publish_status=publish_status,
            clock=self._clock,
            device_key=key,
            key_problem=key_problem,
            evidence_dir=data_dir / "evidence",
            uploader=Delivery(store, audit, uploader),
            on_state=notifications.request_changed,
        )

    def run(self, stop: threading.Event) -> int:
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
        key, key_problem = device_key.for_daemon(data_dir)
        link = RegistryLink(
            client_id=agent_id,
            host=registry.host,
            port=registry.port,
            will_topic=topics.state,
            will_payload=payloads.encode(payloads.death(agent_id, bdseq, "connection_lost")),
            tls=registry.tls,
            ca_file=str(registry.ca_file) if registry.ca_file else None,
            client_cert=str(registry.client_cert) if registry.client_cert else None,
            client_key=str(registry.client_key) if registry.client_key else None,
            username=registry.username,
            password=registry.password.get_secret_value() if registry.password else None,
            outbox=outbox,
            protocol=registry.mqtt_version,
            keepalive=registry.keepalive,
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
            requests=store.all,
            reserve=reserve,
        )
        accepted = AcceptedProblems(data_dir)
        resets = [
            r
            for r in (outbox_reset, store_reset, storage.index_reset, accepted.reset)
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
            workers.append(
                CameraWorker(
                    camera.id,
                    self._open_source(camera),
                    assessor,
                    camera.analysis_interval,
                    redact_url(camera.url),
                    recorder=storage.recorders.get(camera.id),
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
        )
        supervisor = Supervisor(workers, stop, wedged_after=self._tuning.wedged_after)

        def publish_audit(entry: AuditEntry) -> None:
            link.send(topics.audit, entry.line(), retain=False, kind="audit")

        audit = AuditLog(
            config.agent.data_dir / AUDIT_FILE, on_append=publish_audit, on_full=reserve.release
        )
        for reset in resets:
            try:
                audit.append(STATE_FILE_RESET, None, reset.audit_detail())
            except AuditError as exc:  # health must flow all the same
                log.error("cannot record the reset of %s in the audit log: %s", reset.file, exc)
        desk = self._request_desk(
            config, storage, link, topics, notifications, audit, store, key, key_problem
        )
        link.subscribe(topics.requests, desk.token_arrived)
        assessors = {channel.id: channel.assessor for channel in channels}

        # Replies reach the owner through the CLI: in the owner's language.
        _ = translator(config.agent.locale)
        acceptance = Acceptance(accepted, audit, {cid: a.accept for cid, a in assessors.items()}, _)
        acceptance.apply_all()

        def handle(request: dict[str, Any]) -> dict[str, Any]:
            if request["command"] in ("approve", "decline"):
                return decide(desk, request, _)
            if request["command"] in ACCEPTANCE_COMMANDS:
                return accepted_problems(acceptance, request)
            if request["command"] != "reference_reset":
                return {"ok": False, "error": f"unknown command {request['command']!r}"}
            camera_id = request.get("camera")
            if camera_id not in assessors:
                said = _(
                    "the running agent has no camera '{camera}'; restart it after editing its "
                    "config"
                )
                return {"ok": False, "error": said.format(camera=camera_id)}
            references.reset(camera_id)
            assessors[camera_id].reset_references()
            log.info("camera %s: reference reset by the owner", camera_id)
            said = _("camera {camera}: taking a new reference view")
            return {"ok": True, "message": said.format(camera=camera_id)}

        control = ControlServer(socket_path(config.agent.data_dir), handle)
        owner_page = None
        if config.owner_page.enabled:
            # Imported only when on: the web stack costs start-up time and memory.
            from agent.owner_page.server import start_owner_page
            from agent.owner_page.view import CameraSource

            owner_page = start_owner_page(
                config,
                [
                    CameraSource(camera, channel)
                    for camera, channel in zip(config.cameras, channels, strict=True)
                ],
                storage.index,
                desk.decide,
                acceptance,
            )
        log.info(
            "camera-agent %s starting: agent %s, %d camera(s), boot %d",
            __version__,
            agent_id,
            len(workers),
            bdseq,
        )
        if not self._clock().synced:
            log.warning("the system clock is not synchronised; footage times may be wrong")
        memory.limit_arenas()
        memory.cap_ffmpeg_blocks()

        # The main loop sleeps on the link's wake-up event; a stop must end that sleep too.
        def wake_on_stop() -> None:
            stop.wait()
            link.wake.set()

        threading.Thread(target=wake_on_stop, name="stop-waker", daemon=True).start()
        link.start()
        control.start()
        threading.Thread(target=desk.run, args=(stop,), name="requests", daemon=True).start()
        notifications.start(stop)
        supervisor.start()
        self._notifier.ready()
        self._notifier.status(f"watching {len(workers)} camera(s)")
        watchdog_every = watchdog_interval()
        tick = min(TICK_S, watchdog_every) if watchdog_every else TICK_S
        last_ping = float("-inf")
        code = EXIT_OK
        while not stop.is_set():
            now = time.monotonic()
            alive = supervisor.check()
            if supervisor.gave_up:
                code = EXIT_WORKERS_FAILED
                break
            if alive and watchdog_every is not None and now - last_ping >= watchdog_every:
                self._notifier.watchdog()
                last_ping = now
            clock_watch.synced = self._clock().synced
            clock_watch.check()
            for step in clock_watch.take_new():
                clock_stepped(step, audit)
            reserve.tick()
            try:
                storage.tick(now)
            except AgentError as exc:
                # A full or failing disk is reported in health, never a reason to stop.
                log.error("footage pruning: %s; trying again at the next pass", exc)
            reporter.tick(now)
            link.wake.wait(tick)
            link.wake.clear()
        log.info("stopping")
        self._notifier.stopping()
        stop.set()
        control.close()
        if owner_page is not None:
            owner_page.close()
        supervisor.join(WORKER_JOIN_S)
        desk.close()  # counted rejections into the audit log, and to the outbox
        storage.close()
        link.stop(topics.state, payloads.encode(payloads.death(agent_id, bdseq, "shutdown")))
        if link.backlog:
            log.info("%d message(s) wait in the outbox for the next start", link.backlog)
        outbox.close()
        return code


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


def decide(desk: RequestDesk, request: dict[str, Any], _: Translator) -> dict[str, Any]:
    """The owner's approve / decline over the control socket."""
    request_id = str(request.get("request", ""))
    approve = request["command"] == "approve"
    try:
        desk.decide(request_id, approve)
    except NotAwaitingOwner as exc:
        return {"ok": False, "error": cannot_decide(request_id, exc.state, _)}
    except UnknownRequest:
        return {"ok": False, "error": _("no request '{id}'").format(id=request_id)}
    if approve:
        said = _("request {id} approved: its footage is exported and sent")
    else:
        said = _("request {id} declined; nothing is sent")
    return {"ok": True, "message": said.format(id=request_id)}


# The control socket's commands of `camera-agent problems` (agent/quality/commands.py).
ACCEPTANCE_COMMANDS = frozenset({"problem_accept", "problems_show"})


def accepted_problems(acceptance: Acceptance, request: dict[str, Any]) -> dict[str, Any]:
    """The owner's `problems accept | unaccept | show` over the control socket."""
    camera = request.get("camera")
    try:
        if request["command"] == "problems_show":
            return {"ok": True, "message": acceptance.describe(camera)}
        problem, accept = request.get("problem"), request.get("accept")
        if not isinstance(camera, str) or not isinstance(problem, str):
            raise ValueError("expected a camera and a problem")
        if not isinstance(accept, bool):
            raise ValueError("expected accept: true or false")
        return {"ok": True, "message": acceptance.change(camera, problem, accept, "cli")}
    except AcceptanceRefused as exc:
        return {"ok": False, "error": str(exc)}


# `systemctl kill -s USR1 camera-agent` writes every thread's stack to the journal: what a
# hung agent is doing, without stopping it (docs/service.md, "When the agent hangs").
DUMP_STACKS_SIGNAL = signal.SIGUSR1


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a clean stop; a crash in C code (SQLite, FFmpeg, OpenSSL)
    and DUMP_STACKS_SIGNAL print every thread's stack to stderr, the journal."""
    faulthandler.enable()
    faulthandler.register(DUMP_STACKS_SIGNAL, all_threads=True)

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        set_from_handler(stop)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def exit_past_stuck_threads(code: int) -> None:
    """Exit now if a camera's thread is still blocked in FFmpeg after the clean stop.

    Everything is saved and closed by then, but a thread stuck in C code (a camera that
    sends garbage and never finishes opening) would still be running while Python tears
    itself down, and that can crash the process (SIGSEGV), which systemd then reports as a
    failed stop. Seen: 1 stop in 7 with four garbage cameras on one agent."""
    # Only the cameras' threads run C code that can block; the others wait in Python.
    stuck = [t.name for t in threading.enumerate() if t.name.startswith("camera:")]
    if not stuck:
        return
    log.info(
        "%d thread(s) still blocked (%s); exiting without waiting", len(stuck), ", ".join(stuck)
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
