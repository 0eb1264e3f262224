"""A thin paho-mqtt wrapper: connect, keep connected, publish. Callbacks only record state.

paho's own reconnect loop swallows the reason a connection failed (a refused port, an
untrusted certificate), so this wrapper runs the connect loop itself: the owner sees
why in the log, and the delays are jittered.

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
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as paho
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.mqtt.outbox import Message, Outbox, OutboxError
from contract.common.backoff import Backoff

log = logging.getLogger(__name__)

QOS = 1  # DESIGN.md: every topic is QoS 1
KEEPALIVE_S = 30
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

ProtocolVersion = Literal["5", "3.1.1"]
# How long a clean stop waits for the broker to acknowledge the `offline` state.
STOP_FLUSH_S = 2.0


class RegistryLink:
    """One MQTT connection to the registry broker, identified by the agent id."""

    # The agent's stop event, given to start().
    _stop: threading.Event

    def __init__(
        self,
        *,
        client_id: str,
        host: str,
        port: int,
        will_topic: str,
        will_payload: bytes,
        tls: bool = False,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        outbox: Outbox,
        protocol: ProtocolVersion = "5",
        keepalive: float = KEEPALIVE_S,
    ) -> None:
        self._host = host
        self._port = port
        self._v5 = protocol == "5"
        self._keepalive = max(1, round(keepalive))
        self._connected = threading.Event()
        self._connections = 0
        self._lock = threading.Lock()
        self.wake = threading.Event()  # set on every (re)connect, for the publisher to act
        self._outbox = outbox
        self._kick = threading.Event()  # the sender has something to do
        self._acks: queue.SimpleQueue[tuple[int, ReasonCode | None]] = queue.SimpleQueue()
        self._in_flight: dict[int, Message] = {}  # paho mid -> outbox message (sender only)
        self._handed = 0  # highest outbox id handed to paho in this run
        self.refused = 0  # messages the broker refused in this run
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._accepted = False  # the current connection got a CONNACK
        self._refused = False  # the broker said why it refused (logged then)
        self._client_cert = client_cert
        if client_cert is not None:
            check_certificate(client_cert)
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            # MQTT 3.1.1: keep the session (requests queued while away); MQTT 5 says so
            # at connect, with an expiry.
            clean_session=None if self._v5 else False,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages = WINDOW
        client.will_set(will_topic, will_payload, qos=QOS, retain=True)
        if tls:
            client.tls_set(
                ca_certs=ca_file,
                certfile=client_cert,
                keyfile=client_key,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if username is not None:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        # paho writes a packet queued from another thread (the outbox sender's publish) on
        # that thread, at once, unless it believes its own loop thread runs (`_thread`,
        # set only by loop_start); ours runs loop_forever. Two threads then use the TLS
        # socket at once, and OpenSSL fails the record ("decryption failed or bad record
        # mac": the broker drops the agent). Told, paho queues the packet and wakes its
        # loop, which writes it. The registry's BrokerConnection does the same.
        client._thread = self._thread
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-outbox", daemon=True)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

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

    def _run(self) -> None:
        backoff = Backoff(RECONNECT_BASE_S, RECONNECT_CAP_S)
        where = f"{self._host}:{self._port}"
        while not self._stop.is_set():
            try:
                self._connect()
            except ssl.SSLCertVerificationError as exc:
                log.error(
                    "registry broker %s: TLS certificate not trusted: %s", where, exc.verify_message
                )
            except ssl.SSLError as exc:
                log.error("registry broker %s: TLS failed: %s", where, exc)
            except OSError as exc:
                log.warning("registry broker %s unreachable: %s", where, exc)
            else:
                self._accepted = False
                self._client.loop_forever()
                if self._accepted:
                    backoff.reset()
                elif not self._stop.is_set() and not self._refused:
                    # TLS 1.3 lets the broker refuse a client certificate only after the
                    # handshake: the connection just ends, with no CONNACK.
                    log.error(
                        "registry broker %s closed the connection before accepting this agent%s",
                        where,
                        "; is the client certificate valid and issued by the broker's CA?"
                        if self._client_cert
                        else "",
                    )
                self._connected.clear()
            if self._stop.is_set():
                break
            self._stop.wait(backoff.next())

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

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode | None,
        properties: Properties | None,
    ) -> None:
        # paho calls this holding its own locks: only hand the ack to the sender thread.
        self._acks.put((mid, reason))
        self._kick.set()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = True
            log.error("registry broker refused the connection: %s", reason)
            return
        self._accepted = True
        log.info("connected to registry broker %s:%d", self._host, self._port)
        with self._lock:
            self._connections += 1
        self._connected.set()
        self.wake.set()
        self._kick.set()
        # A resumed session keeps subscriptions, a new one does not: always subscribe.
        for topic in self._subscriptions:
            client.subscribe(topic, qos=QOS)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        handler = self._subscriptions.get(message.topic)
        if handler is None:
            log.warning("message on %s, which this agent did not subscribe to", message.topic)
            return
        handler(bytes(message.payload))

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stop.is_set():
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
