"""A thin paho-mqtt wrapper: connect, keep connected, publish. Callbacks only record state.

The connect loop is the shared one (contract/common/mqtt_connection.py): the owner sees
why a connection failed in the log, and the delays are jittered.

Health, request statuses and audit entries go through the on-disk outbox: a sender
thread hands them to paho in order, a window at a time, and removes each when its PUBACK
says it was accepted. A PUBACK with a failure code (MQTT 5: "not authorised" when the
broker's ACL refuses the topic) is logged and the message kept aside, not counted as
delivered. Within one run paho resends what is in flight after a reconnect; after a
restart the outbox does. The birth message bypasses the outbox: it is sent afresh on
every connect, ahead of any backlog.

The link runs on the agent's one stop event, given to start(): once it is set, the link
makes no new connection and its sender hands over nothing more, but a live connection
stays up until close(), which the agent calls after its other parts have stopped. close()
hands the broker what they wrote last, then the retained `offline` state, then
disconnects.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from cryptography import x509
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.mqtt.outbox import Message, Outbox, OutboxError
from contract.common.mqtt_connection import QOS, PahoConnection, Wording
from contract.config import BrokerConfig

log = logging.getLogger(__name__)

# Reconnect delays to the broker: short, so a restarted broker gets its health back within
# a few seconds (at most CAP, jittered down to half of it).
RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 4.0
# The broker keeps this agent's session (its subscriptions, and requests sent to it while
# it was away) this long after a disconnect: a day covers a power cut or an upgrade.
SESSION_EXPIRY_S = 86400
# A retained health report older than this is stale news; the broker drops it.
HEALTH_EXPIRY_S = 86400
# Outbox messages handed to paho and not yet acknowledged, at most.
WINDOW = 50
IDLE_WAKE_S = 5.0
# After a failure of the outbox file (or a bug), the sender tries again this much later.
SENDER_RETRY_S = 5.0

# How long a clean stop waits for the broker to acknowledge the `offline` state.
STOP_FLUSH_S = 2.0


class RegistryLink(PahoConnection):
    """One MQTT connection to the registry broker, identified by the agent id. Its stop
    event is the agent's, given to start()."""

    def __init__(
        self,
        broker: BrokerConfig,
        *,
        client_id: str,
        will_topic: str,
        will_payload: bytes,
        outbox: Outbox,
    ) -> None:
        self._lock = threading.Lock()
        self._connections = 0
        self.wake = threading.Event()  # set on every (re)connect, for the publisher to act
        self._outbox = outbox
        self._kick = threading.Event()  # the sender has something to do
        self._acks: queue.SimpleQueue[tuple[int, ReasonCode | None]] = queue.SimpleQueue()
        self._in_flight: dict[int, Message] = {}  # paho mid -> outbox message (sender only)
        self._handed = 0  # highest outbox id handed to paho in this run
        self.refused = 0  # messages the broker refused in this run
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        if broker.client_cert is not None:
            check_certificate(str(broker.client_cert))
        super().__init__(
            broker,
            client_id=client_id,
            max_inflight=WINDOW,
            thread_name="mqtt",
            reconnect_base_s=RECONNECT_BASE_S,
            reconnect_cap_s=RECONNECT_CAP_S,
            log=log,
            wording=Wording(broker="registry broker", client="this agent"),
            # MQTT 3.1.1: keep the session (requests queued while away); MQTT 5 says so
            # at connect, with an expiry.
            clean_session=None if broker.mqtt_version == "5" else False,
        )
        self._client.will_set(will_topic, will_payload, qos=QOS, retain=True)
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-outbox", daemon=True)

    def take_connections(self) -> int:
        """How many times the link has connected so far (the publisher compares)."""
        with self._lock:
            return self._connections

    def start(self, stop: threading.Event) -> None:
        """Connect, and keep connected, until `stop` is set; close() then ends it."""
        self._stop = stop
        self._thread.start()
        self._sender.start()

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> paho.MQTTMessageInfo:
        """Queue a QoS 1 message in memory only (the birth); paho sends it now or after the
        next connect."""
        return self._client.publish(topic, payload, qos=QOS, retain=retain)

    def send(
        self, topic: str, payload: bytes, *, retain: bool, kind: str, key: str | None = None
    ) -> None:
        """Store a message in the outbox; it is published in order once the broker is
        reachable, and kept until the broker has acknowledged it. Should the outbox's disk
        be full beyond what the space reserve frees, it is published from memory instead
        (like the birth): a connected registry still hears it, a restart loses it."""
        try:
            self._outbox.put(topic, payload, retain=retain, kind=kind, key=key)
        except OutboxError as exc:
            if not exc.disk_full:
                raise
            log.error("a %s message on %s is not kept in the outbox: %s", kind, topic, exc)
            self.publish(topic, payload, retain=retain)
            return
        self._kick.set()

    def subscribe(self, topic: str, handler: Callable[[bytes], None]) -> None:
        """Receive `topic` (QoS 1) now and after every reconnect; `handler` gets each
        payload on the MQTT thread and must only hand it on."""
        self._subscriptions[topic] = handler
        if self.connected:
            self._client.subscribe(topic, qos=QOS)

    @property
    def backlog(self) -> int:
        """Messages in the outbox, not yet acknowledged by the broker."""
        return self._outbox.pending()

    def close(self, topic: str, payload: bytes) -> None:
        """Once the stop event is set and the parts that send have stopped: hand over what
        they wrote last, publish the retained `offline` state, wait briefly for it, then
        disconnect."""
        self._kick.set()  # the sender sees the stop now, not at its next idle wake-up
        self._sender.join(STOP_FLUSH_S)
        if self.connected:
            if not self._sender.is_alive():
                self._hand_over_last()
            info = self.publish(topic, payload, retain=True)
            try:
                info.wait_for_publish(STOP_FLUSH_S)
            except (RuntimeError, ValueError) as exc:
                log.warning("offline state not confirmed by the broker: %s", exc)
            if not info.is_published():
                log.warning("offline state not confirmed by the broker within %.0f s", STOP_FLUSH_S)
        self._client.disconnect()
        self._thread.join(STOP_FLUSH_S)
        self._settle_acks()  # what was acknowledged before the disconnect leaves the outbox

    def _hand_over_last(self) -> None:
        """The sender's last round, on the stopping thread: what the parts stopped before
        the link wrote (the request desk's counted rejections) goes ahead of `offline`."""
        try:
            self._settle_acks()
            self._hand_over()
        except OutboxError as exc:
            log.error("message outbox: %s", exc)

    def _connect(self) -> None:
        if not self._v5:
            self._client.connect(self._host, self._port, keepalive=self._keepalive)
            return
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect(
            self._host,
            self._port,
            keepalive=self._keepalive,
            clean_start=False,
            properties=properties,
        )

    # --- the outbox sender -------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            # Idle, the sender sleeps; a put, an ack or a connect wakes it. The timeout
            # only covers a kick lost in a race.
            if not self._kick.wait(IDLE_WAKE_S) and not self._in_flight:
                continue
            self._kick.clear()
            try:
                self._settle_acks()
                if self.connected:
                    self._hand_over()
            except OutboxError as exc:
                log.error("message outbox: %s", exc)
                self._stop.wait(SENDER_RETRY_S)
            except Exception:  # the sender is a thread boundary: it must not die
                log.exception("message outbox: unexpected error; carrying on")
                self._stop.wait(SENDER_RETRY_S)

    def _hand_over(self) -> None:
        """Give paho the next outbox messages, in order, up to the window."""
        room = WINDOW - len(self._in_flight)
        if room <= 0:
            return
        for message in self._outbox.after(self._handed, room):
            properties = None
            if self._v5 and message.kind == "health":
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                properties.MessageExpiryInterval = HEALTH_EXPIRY_S
            try:
                info = self._client.publish(
                    message.topic,
                    message.payload,
                    qos=QOS,
                    retain=message.retain,
                    properties=properties,
                )
            except ValueError as exc:
                # paho refuses it before sending (a wildcard or an empty topic, a payload
                # over the limit): sending it again would fail again, after every restart,
                # and hold up every message behind it.
                self._handed = message.id
                self._unpublishable(message, str(exc))
                continue
            self._in_flight[info.mid] = message
            self._handed = message.id

    def _unpublishable(self, message: Message, why: str) -> None:
        self.refused += 1
        self._outbox.refused(message.id, f"unpublishable: {why}")
        log.error(
            "message outbox: a %s message on %r cannot be published (%s); it is kept aside, "
            "not sent",
            message.kind,
            message.topic,
            why,
        )

    def _settle_acks(self) -> None:
        while True:
            try:
                mid, reason = self._acks.get_nowait()
            except queue.Empty:
                return
            message = self._in_flight.pop(mid, None)
            if message is None:  # the birth or the offline state: not from the outbox
                if reason is not None and reason.is_failure:
                    self.refused += 1
                    log.error(
                        "the registry broker refused this agent's state message: %s "
                        "(check the broker's ACL for this agent)",
                        reason,
                    )
                continue
            if reason is not None and reason.is_failure:
                self.refused += 1
                self._outbox.refused(message.id, str(reason))
                log.error(
                    "the registry broker refused a %s message on %s: %s; it is kept aside, "
                    "not delivered (check the broker's ACL for this agent)",
                    message.kind,
                    message.topic,
                    reason,
                )
            else:
                self._outbox.delivered(message.id)
            self._kick.set()  # room in the window

    def _on_acked(self, mid: int, reason: ReasonCode | None) -> None:
        # paho calls this holding its own locks: only hand the ack to the sender thread.
        self._acks.put((mid, reason))
        self._kick.set()

    def _on_refused(self, reason: ReasonCode) -> None:
        log.error("registry broker refused the connection: %s", reason)

    def _on_accepted(self, session_present: bool) -> None:
        log.info("connected to registry broker %s:%d", self._host, self._port)
        with self._lock:
            self._connections += 1
        self._connected.set()
        self.wake.set()
        self._kick.set()
        # A resumed session keeps subscriptions, a new one does not: always subscribe.
        for topic in self._subscriptions:
            self._client.subscribe(topic, qos=QOS)

    def _on_received(self, message: paho.MQTTMessage) -> None:
        handler = self._subscriptions.get(message.topic)
        if handler is None:
            log.warning("message on %s, which this agent did not subscribe to", message.topic)
            return
        handler(bytes(message.payload))

    def _on_lost(self, reason: ReasonCode, was_connected: bool) -> None:
        if was_connected and not self._stop.is_set():
            log.warning("lost the registry broker: %s", reason)


def check_certificate(path: str) -> None:
    """Say plainly when the agent's own client certificate is outside its validity: the
    broker refuses it, and under TLS 1.3 it does so without a reason the client sees."""
    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        log.error("client certificate %s cannot be read: %s", path, exc)
        return
    now = datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        log.error(
            "client certificate %s expired on %s; the broker will refuse this agent until "
            "it is renewed",
            path,
            cert.not_valid_after_utc.date(),
        )
    elif cert.not_valid_before_utc > now:
        log.error(
            "client certificate %s is not valid before %s (is the system clock right?)",
            path,
            cert.not_valid_before_utc,
        )
