"""The one publisher: turns worker snapshots into birth and health messages on the link."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from agent import __version__
from agent.clock import ClockState
from agent.clock_step import ClockStep
from agent.mqtt import payloads
from agent.quality import dori
from agent.quality.assess import Health, StreamAssessor, status_of
from agent.state import Counters, StateError
from contract.topics import Topics

if TYPE_CHECKING:  # the type only: the ONVIF library stays unloaded for the reporter
    from agent.onvif.camera_clocks import CameraClockReading

log = logging.getLogger(__name__)

# A camera's clock offset moved this much since the last birth: the retained birth is sent
# again. Smaller moves (the round trip's jitter) wait for the next birth.
BIRTH_OFFSET_CHANGE_S = 1.0


# What the recording adds to a camera's health: the footage object and its problems
# (`storage_low`, `recording_stopped`).
FootageReport = Callable[[str, bool], tuple[dict[str, object] | None, tuple[str, ...]]]
# What the recording did to a camera's packets: the health `stream.packets` object.
PacketReport = Callable[[str], dict[str, int] | None]
# What the camera's clock adds to its health: the `camera_clock` object and its problem
# (`clock_drift`); (None, ()) for a camera whose clock is not read.
CameraClockReport = Callable[[str], tuple[dict[str, object] | None, tuple[str, ...]]]
# The last clock offset read of each camera that has one (the birth's `camera_clocks`).
CameraClockOffsets = Callable[[], Mapping[str, "CameraClockReading"]]
# Told (camera id, previous snapshot, new one) when a camera's status or problems change.
HealthChange = Callable[[str, Health | None, Health], None]


class Link(Protocol):
    """What the reporter needs of the MQTT link (RegistryLink in production)."""

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> object: ...

    def send(
        self, topic: str, payload: bytes, *, retain: bool, kind: str, key: str | None = None
    ) -> None: ...

    def take_connections(self) -> int: ...


@dataclass
class CameraChannel:
    """One camera as the reporter sees it."""

    id: str
    name: str
    location: dict[str, float | None] | None
    assessor: StreamAssessor
    last: Health | None = None
    last_sent: float = field(default=float("-inf"))


def _told(health: Health | None) -> tuple[str | None, tuple[str, ...]]:
    """What else the registry is told at once when it changes: whether the picture is
    judged yet, and the accepted problems seen."""
    if health is None:
        return None, ()
    judgement = health.judgement.state if health.judgement is not None else None
    return judgement, health.accepted


class Reporter:
    def __init__(
        self,
        *,
        link: Link,
        topics: Topics,
        counters: Counters,
        bdseq: int,
        cameras: Sequence[CameraChannel],
        health_interval: float,
        clock: Callable[[], ClockState],
        footage: FootageReport | None = None,
        on_change: HealthChange | None = None,
        packets: PacketReport | None = None,
        clock_step: Callable[[], ClockStep | None] | None = None,
        device_key_problem: str | None = None,
        camera_clock: CameraClockReport | None = None,
        camera_clock_offsets: CameraClockOffsets | None = None,
        police_keyset: Callable[[], dict[str, object] | None] | None = None,
    ) -> None:
        self._link = link
        self._keyset = police_keyset
        self._keyset_told: dict[str, object] | None = None
        self._key_problem = device_key_problem
        self._topics = topics
        self._counters = counters
        self._bdseq = bdseq
        self._cameras = cameras
        self._interval = health_interval
        self._clock = clock
        self._footage = footage
        self._on_change = on_change
        self._packets = packets
        self._clock_step = clock_step
        self._camera_clock = camera_clock
        self._camera_clock_offsets = camera_clock_offsets
        # The offsets the last birth said: a new reading re-sends the birth only when it
        # moved an offset by more than BIRTH_OFFSET_CHANGE_S (it is retained, not a log).
        self._offsets_told: dict[str, float] = {}
        self._connections_seen = 0
        # Set while health reports cannot be numbered (no space for the counters): logged
        # once, not at every tick.
        self._numbering_failed = False
        self._widths: dict[str, int | None] = {c.id: None for c in cameras}

    def tick(self, now: float) -> None:
        """Publish what is due: birth after each connect or new stream facts, then health."""
        clock = self._clock()
        connections = self._link.take_connections()
        snapshots = {camera.id: self._snapshot(camera, now) for camera in self._cameras}
        widths = {
            cid: snap.stream.width if snap.stream else self._widths.get(cid)
            for cid, snap in snapshots.items()
        }
        offsets = {
            camera: payloads.CameraClockOffset(r.offset_s, r.uncertainty_s, r.at, r.source)
            for camera, r in (
                self._camera_clock_offsets() if self._camera_clock_offsets else {}
            ).items()
        }
        keyset = self._keyset() if self._keyset is not None else None
        # A new key set, or the held one going stale, is news for the registry at once.
        if (
            connections != self._connections_seen
            or widths != self._widths
            or self._offsets_moved(offsets)
            or (keyset != self._keyset_told)
        ):
            self._connections_seen = connections
            if keyset != self._keyset_told and keyset is not None and keyset["stale"]:
                log.warning(
                    "the police key set (version %s) went stale at %s: only the keys pinned "
                    "in police.keys sign accepted requests until the registry relays a newer "
                    "set (docs/police.md)",
                    keyset["version"],
                    keyset["expires"],
                )
            self._keyset_told = keyset
            self._explain_dori(widths)
            self._widths = widths
            self._publish_birth(clock, offsets)
        for camera in self._cameras:
            if not camera.assessor.settled(now):
                continue
            snapshot = snapshots[camera.id]
            changed = camera.last is None or (
                snapshot.status,
                snapshot.problems,
            ) != (camera.last.status, camera.last.problems)
            # The registry learns at once when the picture is judged, or a problem is
            # accepted, rather than at the next interval.
            told = changed or _told(snapshot) != _told(camera.last)
            if told or now - camera.last_sent >= self._interval:
                if not self._publish_health(camera, snapshot, clock):
                    continue  # tried again at the next tick
                if changed:
                    log.info(
                        "camera %s: %s %s",
                        camera.id,
                        snapshot.status,
                        ", ".join(snapshot.problems) or "",
                    )
                    if self._on_change is not None:
                        self._on_change(camera.id, camera.last, snapshot)
                camera.last = snapshot
                camera.last_sent = now

    def _snapshot(self, camera: CameraChannel, now: float) -> Health:
        health = camera.assessor.assess(now)
        if self._packets is not None and health.stream is not None:
            counts = self._packets(camera.id)
            if counts is not None:
                health = replace(health, stream=replace(health.stream, packets=counts))
        if self._camera_clock is not None:
            body, problems = self._camera_clock(camera.id)
            merged = health.problems + tuple(p for p in problems if p not in health.problems)
            health = replace(health, status=status_of(merged), problems=merged, camera_clock=body)
        if self._footage is None:
            return health
        receiving = "no_signal" not in health.problems
        footage, problems = self._footage(camera.id, receiving)
        merged = health.problems + tuple(p for p in problems if p not in health.problems)
        return replace(health, status=status_of(merged), problems=merged, footage=footage)

    def _explain_dori(self, widths: dict[str, int | None]) -> None:
        """Tell the owner once per new resolution what the picture is good enough for."""
        for camera in self._cameras:
            width = widths.get(camera.id)
            fov = (camera.location or {}).get("fov_deg")
            if width and fov and width != self._widths.get(camera.id):
                range_m = (camera.location or {}).get("range_m")
                log.info("camera %s: %s", camera.id, dori.in_plain_words(width, fov, range_m))

    def _offsets_moved(self, offsets: Mapping[str, payloads.CameraClockOffset]) -> bool:
        told = self._offsets_told
        return offsets.keys() != told.keys() or any(
            abs(o.offset_s - told[c]) > BIRTH_OFFSET_CHANGE_S for c, o in offsets.items()
        )

    def _publish_birth(
        self, clock: ClockState, offsets: Mapping[str, payloads.CameraClockOffset]
    ) -> None:
        self._offsets_told = {c: o.offset_s for c, o in offsets.items()}
        described = [
            payloads.CameraDescription(c.id, c.name, c.location, self._widths.get(c.id))
            for c in self._cameras
        ]
        body = payloads.birth(
            self._topics.agent,
            self._bdseq,
            __version__,
            clock,
            described,
            device_key_problem=self._key_problem,
            camera_clocks=offsets,
            police_keyset=self._keyset_told,
        )
        self._link.publish(self._topics.state, payloads.encode(body), retain=True)

    def _publish_health(self, camera: CameraChannel, snapshot: Health, clock: ClockState) -> bool:
        """Number and send one report; False when it cannot be numbered (a full disk)."""
        try:
            seq = self._counters.next_seq(camera.id)
        except StateError as exc:
            # A seq is never used unsaved (agent/space_reserve.py says why): the report
            # waits until the counters can be written again.
            if not self._numbering_failed:
                log.error("health reports wait: %s", exc)
            self._numbering_failed = True
            return False
        if self._numbering_failed:
            log.info("health reports are numbered again")
            self._numbering_failed = False
        body = payloads.health(
            agent=self._topics.agent,
            camera=camera.id,
            bdseq=self._bdseq,
            seq=seq,
            snapshot=snapshot,
            clock=clock,
            last_step=self._clock_step() if self._clock_step is not None else None,
        )
        self._link.send(
            self._topics.health(camera.id),
            payloads.encode(body),
            retain=True,
            kind="health",
            key=camera.id,
        )
        return True
