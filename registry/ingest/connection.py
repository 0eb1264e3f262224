"""The registry's MQTT 5 connection to the broker: TLS, a password or a client certificate
as in the contract's BrokerConfig, reconnect with backoff, subscriptions renewed on every
connect, and publishes that wait for their PUBACK.

Like the agent's link (agent/mqtt/client.py) it runs the shared connect loop
(contract/common/mqtt_connection.py), so the log says why a connection failed. paho
callbacks only hand messages on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from contract.common.mqtt_connection import QOS, PahoConnection, Wording
from contract.config import BrokerConfig
from registry.errors import RegistryError

log = logging.getLogger(__name__)

RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 10.0
# The broker keeps an ingest worker's session (its shared subscriptions and the messages
# queued for it) this long while the worker is down: a day covers an upgrade or a crash.
SESSION_EXPIRY_S = 86400
# QoS 1 messages the broker may have in flight to us unacknowledged (MQTT 5 Receive
# Maximum; mosquitto 2 honours it). Messages are acknowledged only once committed, so
# this must exceed a batch with room for the next one to fill meanwhile.
RECEIVE_MAXIMUM = 4000
# Our own unacknowledged publishes (relayed requests are few).
MAX_INFLIGHT = 100
STOP_TIMEOUT_S = 5.0
# MQTT 5 reason code 142: another client connected with our client id.
SESSION_TAKEN_OVER = 142
# paho reads a packet's fixed header a byte at a time, each byte one recv() syscall (four
# per ~1 kB health message, ~15-20 µs of the worker's CPU); reading the socket this much
# at a time serves those reads from memory (_BufferedSocket).
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Subscription:
    topic_filter: str
    identifier: int | None = None  # MQTT 5 subscription identifier, to tell copies apart
    # False: the broker sends no retained messages when we subscribe (MQTT 5 Retain
    # Handling 2). mosquitto sends them to a shared subscription renewed on reconnect.
    retained: bool = True


MessageHandler = Callable[[paho.MQTTMessage], None]


class _BufferedSocket:
    """paho's socket, read READ_CHUNK bytes at a time. paho asks for a packet's command
    byte, each remaining-length byte and the rest in separate recv() calls; this serves
    them from one syscall's worth of data. `pending()` (paho asks it of TLS sockets) says
    that bytes are buffered, so paho's loop reads on without waiting in select()."""

    def __init__(self, sock: paho.SocketLike) -> None:
        self._sock = sock
        self._buffer = b""
        self._offset = 0

    def recv(self, buffer_size: int) -> bytes:
        if self._offset >= len(self._buffer):
            # BlockingIOError / SSLWantReadError pass through to paho, as from the socket.
            self._buffer = self._sock.recv(READ_CHUNK)
            self._offset = 0
        start = self._offset
        self._offset = min(start + buffer_size, len(self._buffer))
        return self._buffer[start : self._offset]

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)  # a TLS socket's decrypted bytes
        return len(self._buffer) - self._offset + (inner() if inner is not None else 0)

    def send(self, buffer: bytes | bytearray) -> int:
        return self._sock.send(buffer)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)


class BrokerConnection(PahoConnection):
    """One MQTT 5 connection of the registry, kept up until stop()."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        client_id: str,
        persistent_session: bool = True,
        manual_ack: bool = False,
        on_message: MessageHandler | None = None,
        on_connect: Callable[[bool], None] | None = None,
        name: str = "mqtt",
    ) -> None:
        if config.mqtt_version != "5":
            # Shared subscriptions, subscription identifiers and PUBACK reason codes
            # (a refused relay) are MQTT 5.
            raise RegistryError("mqtt.mqtt_version: the registry needs MQTT 5")
        self.client_id = client_id
        self._persistent = persistent_session
        self._on_message_cb = on_message
        self._on_connect_cb = on_connect
        self._subscriptions: list[Subscription] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._acks: dict[int, ReasonCode | None] = {}
        self._ack_ready = threading.Condition(self._lock)
        self._brief: dict[int, str] = {}  # SUBACK mid -> filter to drop then
        super().__init__(
            config,
            client_id=client_id,
            max_inflight=MAX_INFLIGHT,
            thread_name=name,
            reconnect_base_s=RECONNECT_BASE_S,
            reconnect_cap_s=RECONNECT_CAP_S,
            log=log,
            wording=Wording(
                broker="MQTT broker",
                client=client_id,
                untrusted_hint=" (is mqtt.ca_file the CA that signed the broker's certificate?)",
            ),
            manual_ack=manual_ack,
        )
        self._client.on_subscribe = self._handle_subscribe

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def add_subscription(self, subscription: Subscription) -> None:
        """Subscribe now (if connected) and after every reconnect."""
        self._subscriptions.append(subscription)
        if self.connected:
            self._subscribe(subscription)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._client.disconnect()
        self._thread.join(STOP_TIMEOUT_S)
        with self._ack_ready:
            self._ack_ready.notify_all()

    # --- publish, subscribe, ack -------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, timeout: float, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the PUBACK; RegistryError if it does not come or
        carries a failure (MQTT 5: "Not authorized" when the broker's ACL refuses it)."""
        if not self._connected.wait(timeout):
            raise RegistryError(f"MQTT broker {self._where}: not connected within {timeout:.0f} s")
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise RegistryError(f"MQTT broker {self._where}: {paho.error_string(info.rc)}")
        with self._ack_ready:
            arrived = self._ack_ready.wait_for(
                lambda: info.mid in self._acks or self._stop.is_set(), timeout
            )
            reason = self._acks.pop(info.mid, None)
        if not arrived or self._stop.is_set():
            raise RegistryError(
                f"MQTT broker {self._where} did not acknowledge the message on {topic} "
                f"within {timeout:.0f} s"
            )
        if reason is not None and reason.is_failure:
            raise RegistryError(
                f"MQTT broker {self._where} refused the message on {topic}: "
                f"{reason} (check the broker's ACL for the registry's user)"
            )

    def subscribe_briefly(self, subscription: Subscription) -> None:
        """Subscribe, and unsubscribe as soon as the SUBACK arrives: the broker sends the
        retained messages of the filter (queued before it reads our UNSUBSCRIBE) and
        nothing after. May be called from a paho callback: it does not wait."""
        result, mid = self._subscribe(subscription)
        if result == paho.MQTT_ERR_SUCCESS and mid is not None:
            with self._lock:
                self._brief[mid] = subscription.topic_filter

    def unsubscribe(self, topic_filter: str) -> None:
        self._client.unsubscribe(topic_filter)

    def ack(self, mid: int) -> None:
        """Acknowledge a received message (manual_ack): the broker may forget it now."""
        self._client.ack(mid, QOS)

    def _subscribe(self, subscription: Subscription) -> tuple[int, int | None]:
        properties = None
        if subscription.identifier is not None:
            properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            properties.SubscriptionIdentifier = subscription.identifier
        options = SubscribeOptions(
            qos=QOS,
            retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
            if subscription.retained
            else SubscribeOptions.RETAIN_DO_NOT_SEND,
        )
        result, mid = self._client.subscribe(
            subscription.topic_filter, options=options, properties=properties
        )
        return int(result), mid

    # --- the connect loop --------------------------------------------------------------------

    def _connect(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        if self._persistent:
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        self._refused = False
        self._client.connect(
            self._host,
            self._port,
            keepalive=self._keepalive,
            clean_start=not self._persistent,
            properties=properties,
        )
        sock = self._client._sock
        if sock is not None:
            self._client._sock = _BufferedSocket(sock)

    # --- paho callbacks (paho's thread: record and hand on only) -----------------------------

    def _on_refused(self, reason: ReasonCode) -> None:
        log.error("MQTT broker %s refused %s: %s", self._where, self.client_id, reason)

    def _on_accepted(self, session_present: bool) -> None:
        log.info(
            "connected to MQTT broker %s as %s (session %s)",
            self._where,
            self.client_id,
            "resumed" if session_present else "new",
        )
        for subscription in self._subscriptions:
            self._subscribe(subscription)
        self._connected.set()
        if self._on_connect_cb is not None:
            self._on_connect_cb(session_present)

    def _on_lost(self, reason: ReasonCode, was_connected: bool) -> None:
        if self._stop.is_set():
            return
        if reason.value == SESSION_TAKEN_OVER:
            log.error(
                "MQTT broker %s: another client connected with the client id %s and took "
                "over this session; give every ingest worker its own client id (and, with "
                "use_username_as_clientid, its own broker user)",
                self._where,
                self.client_id,
            )
        elif was_connected:
            log.warning("lost the MQTT broker %s: %s", self._where, reason)

    def _on_received(self, message: paho.MQTTMessage) -> None:
        if self._on_message_cb is not None:
            self._on_message_cb(message)

    def _on_acked(self, mid: int, reason: ReasonCode | None) -> None:
        with self._ack_ready:
            self._acks[mid] = reason
            self._ack_ready.notify_all()

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error("MQTT broker %s refused a subscription: %s", self._where, reason)
        with self._lock:
            brief = self._brief.pop(mid, None)
        if brief is not None:
            client.unsubscribe(brief)
