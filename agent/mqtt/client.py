"""A thin paho-mqtt wrapper: connect, keep connected, publish. Callbacks only record state.

paho's own reconnect loop swallows the reason a connection failed (a refused port, an
untrusted certificate), so this wrapper runs the connect loop itself: the owner sees
why in the log, and the delays are jittered.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.streams.backoff import Backoff

log = logging.getLogger(__name__)

QOS = 1  # DESIGN.md: every topic is QoS 1
KEEPALIVE_S = 30
# Reconnect delays to the broker: short, so a restarted broker gets its health back soon.
RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 5.0
# How long a clean stop waits for the broker to acknowledge the `offline` state.
STOP_FLUSH_S = 2.0


class RegistryLink:
    """One MQTT connection to the registry broker, identified by the agent id."""

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
    ) -> None:
        self._host = host
        self._port = port
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._connections = 0
        self._lock = threading.Lock()
        self.wake = threading.Event()  # set on every (re)connect, for the publisher to act
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
        )
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
        self._client = client
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def take_connections(self) -> int:
        """How many times the link has connected so far (the publisher compares)."""
        with self._lock:
            return self._connections

    def start(self) -> None:
        self._thread.start()

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> paho.MQTTMessageInfo:
        """Queue a QoS 1 message; paho sends it now or after the next connect."""
        return self._client.publish(topic, payload, qos=QOS, retain=retain)

    def stop(self, topic: str, payload: bytes) -> None:
        """Publish the retained `offline` state, wait briefly for it, then disconnect."""
        if self.connected:
            info = self.publish(topic, payload, retain=True)
            try:
                info.wait_for_publish(STOP_FLUSH_S)
            except (RuntimeError, ValueError) as exc:
                log.warning("offline state not confirmed by the broker: %s", exc)
            if not info.is_published():
                log.warning("offline state not confirmed by the broker within %.0f s", STOP_FLUSH_S)
        self._stop.set()
        self._client.disconnect()
        self._thread.join(STOP_FLUSH_S)

    def _run(self) -> None:
        backoff = Backoff(RECONNECT_BASE_S, RECONNECT_CAP_S)
        where = f"{self._host}:{self._port}"
        while not self._stop.is_set():
            try:
                self._client.connect(self._host, self._port, keepalive=KEEPALIVE_S)
            except ssl.SSLCertVerificationError as exc:
                log.error(
                    "registry broker %s: TLS certificate not trusted: %s", where, exc.verify_message
                )
            except ssl.SSLError as exc:
                log.error("registry broker %s: TLS failed: %s", where, exc)
            except OSError as exc:
                log.warning("registry broker %s unreachable: %s", where, exc)
            else:
                self._client.loop_forever()
                if self._connected.is_set():
                    backoff.reset()
                self._connected.clear()
            if self._stop.is_set():
                break
            self._stop.wait(backoff.next())

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("registry broker refused the connection: %s", reason)
            return
        log.info("connected to registry broker %s:%d", self._host, self._port)
        with self._lock:
            self._connections += 1
        self._connected.set()
        self.wake.set()

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
