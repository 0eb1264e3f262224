"""An MQTT client that records what the broker delivers, for asserting what a registry would see."""

from __future__ import annotations

import json as jsonlib
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.schemas import contract_problem

if TYPE_CHECKING:
    from tests.support.broker import Broker, CertPair

CONNECT_TIMEOUT_S = 5.0


class Received(NamedTuple):
    """One delivered message; `at` is time.monotonic() on arrival."""

    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return jsonlib.loads(self.payload)


class ConnectRefused(Exception):
    """The broker refused the connection or closed it before CONNACK (bad password, cert)."""


Predicate = Callable[[Received], bool]


class Watcher:
    """Subscribes to `topic_filter` and records every message; use as a context manager.

    TLS is on with `tls=True` (system CAs), a `ca_file` or a `client_cert`.

    `wait_for` and `json` fail with a listing of everything received, so a test failure
    shows what the agent actually published.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic_filter: str = "#",
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: Path | str | None = None,
        client_cert: CertPair | None = None,
        client_id: str | None = None,
        qos: int = 1,
    ) -> None:
        self.host = host
        self.port = port
        self.topic_filter = topic_filter
        self.qos = qos
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._received: list[Received] = []
        self.contract_problems: list[str] = []
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"watcher-{uuid.uuid4().hex[:8]}",
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls or ca_file is not None or client_cert is not None:
            self._client.tls_set(
                ca_certs=str(ca_file) if ca_file is not None else None,
                certfile=str(client_cert.cert_file) if client_cert else None,
                keyfile=str(client_cert.key_file) if client_cert else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @classmethod
    def for_broker(
        cls,
        broker: Broker,
        topic_filter: str = "#",
        *,
        username: str | None = None,
        password: str | None = None,
        client_cert: CertPair | None = None,
        **kwargs: Any,
    ) -> Watcher:
        """A Watcher for a test Broker, with its TLS CA when the broker uses TLS."""
        return cls(
            broker.host,
            broker.port,
            topic_filter,
            username=username,
            password=password,
            ca_file=broker.ca_file if broker.tls else None,
            client_cert=client_cert,
            **kwargs,
        )

    # paho callbacks: run on paho's network thread, only record.
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            self._connect_error = f"CONNACK: {reason_code}"
        else:
            client.subscribe(self.topic_filter, self.qos)
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if not self._connected.is_set():
            self._connect_error = f"connection closed before CONNACK: {reason_code}"
            self._connected.set()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        record = Received(
            message.topic, bytes(message.payload), bool(message.retain), time.monotonic()
        )
        problem = contract_problem(message.topic, record.payload)
        with self._changed:
            self._received.append(record)
            if problem is not None:
                self.contract_problems.append(problem)
            self._changed.notify_all()

    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Connect, wait for CONNACK and SUBACK; raise ConnectRefused if the broker says no."""
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectRefused(f"{self.host}:{self.port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self.disconnect()
            raise ConnectRefused(f"{self.host}:{self.port}: no CONNACK within {timeout}s")
        if self._connect_error is not None:
            self.disconnect()
            raise ConnectRefused(f"{self.host}:{self.port}: {self._connect_error}")
        if not self._subscribed.wait(timeout):
            self.disconnect()
            raise ConnectRefused(f"{self.host}:{self.port}: no SUBACK within {timeout}s")

    def disconnect(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Watcher:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()
        # Every message the agent published must match the contract documents.
        if exc_info[0] is None and self.contract_problems:
            raise AssertionError("\n".join(self.contract_problems))

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        """Publish and wait until the broker acknowledged it (QoS 1/2) or it was sent (QoS 0)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)

    def messages(self, topic_filter: str | None = None) -> list[Received]:
        """A snapshot of what arrived so far, optionally only topics matching a filter."""
        with self._lock:
            snapshot = list(self._received)
        if topic_filter is None:
            return snapshot
        return [m for m in snapshot if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def clear(self) -> None:
        """Forget what arrived so far (e.g. the retained messages delivered on subscribe)."""
        with self._lock:
            self._received.clear()

    def wait_for(
        self,
        predicate: Predicate | str,
        timeout: float = 5.0,
        *,
        after: float | None = None,
    ) -> Received:
        """The first message (already received or arriving within `timeout`) that matches.

        `predicate` is a function of a Received or a topic filter; `after` ignores messages
        that arrived before that time.monotonic() value. Fails with the full listing.
        """
        match: Predicate
        if isinstance(predicate, str):
            topic_filter = predicate

            def match(m: Received) -> bool:
                return mqtt.topic_matches_sub(topic_filter, m.topic)
        else:
            match = predicate
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for message in self._received[seen:]:
                    if (after is None or message.at > after) and match(message):
                        return message
                seen = len(self._received)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
        raise AssertionError(
            f"no matching message within {timeout}s on {self.topic_filter!r}; "
            f"received:\n{self.listing()}"
        )

    def json(self, topic: str) -> Any:
        """The decoded JSON payload of the latest message on `topic` (a filter is allowed)."""
        matching = self.messages(topic)
        if not matching:
            raise AssertionError(f"nothing received on {topic!r}; received:\n{self.listing()}")
        return matching[-1].json()

    def listing(self) -> str:
        """Every received message, one a line, for failure messages."""
        messages = self.messages()
        if not messages:
            return "  (nothing)"
        start = messages[0].at
        return "\n".join(
            f"  +{m.at - start:7.3f}s {m.topic} {'[retained] ' if m.retain else ''}"
            f"{m.payload[:200]!r}"
            for m in messages
        )
