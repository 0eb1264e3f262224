"""The paho connection both the agent's broker link and the registry's ingest connection
build on: a client set up from the contract's BrokerConfig (TLS, login), a connect loop of
our own on a thread of our own, and the connection's state kept from paho's callbacks.

paho's own reconnect loop swallows the reason a connection failed (a refused port, an
untrusted certificate), so this loop connects itself: the log says why, and the delays are
jittered. Each side keeps its own CONNECT (session, will, receive maximum), what it does on
a connect, a disconnect, an ack and a message, and its wording; the log lines go to the
side's own logger, under the side's own names.
"""

from __future__ import annotations

import logging
import ssl
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from contract.common.backoff import Backoff
from contract.config import BrokerConfig

QOS = 1  # DESIGN.md: every topic is QoS 1


@dataclass(frozen=True)
class Wording:
    """How one side's log lines name the broker and itself (owners and tests read them)."""

    broker: str  # "registry broker", "MQTT broker"
    client: str  # "this agent", the client id
    untrusted_hint: str = ""  # after "TLS certificate not trusted: <why>"


class PahoConnection(ABC):
    """One paho client, connected and reconnected by `_run` on `self._thread` until
    `self._stop` is set. A side sets `_stop` before it starts the thread, says how to
    connect (`_connect`) and what to do on paho's news (the hooks below)."""

    _stop: threading.Event

    def __init__(
        self,
        config: BrokerConfig,
        *,
        client_id: str,
        max_inflight: int,
        thread_name: str,
        reconnect_base_s: float,
        reconnect_cap_s: float,
        log: logging.Logger,
        wording: Wording,
        **paho_options: Any,
    ) -> None:
        self._host, self._port = config.host, config.port
        self._where = f"{config.host}:{config.port}"
        self._v5 = config.mqtt_version == "5"
        self._keepalive = max(1, round(config.keepalive))
        self._client_cert = config.client_cert
        self._reconnect = (reconnect_base_s, reconnect_cap_s)
        self._log = log
        self._wording = wording
        self._connected = threading.Event()
        self._accepted = False  # the current connection got a CONNACK
        self._refused = False  # the broker said why it refused (logged then)
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            reconnect_on_failure=False,
            **paho_options,
        )
        client.max_inflight_messages = max_inflight
        if config.tls:
            client.tls_set(
                ca_certs=str(config.ca_file) if config.ca_file else None,
                certfile=str(config.client_cert) if config.client_cert else None,
                keyfile=str(config.client_key) if config.client_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_message = self._paho_message
        self._client = client
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        # paho writes a packet queued from another thread (the agent's outbox sender, the
        # registry's writer acking or its web app publishing) on that thread, at once,
        # unless it believes its own loop thread runs (`_thread`, set only by loop_start);
        # ours runs loop_forever. Two threads then use the socket at once: interleaved
        # partial writes, and OpenSSL fails the record ("decryption failed or bad record
        # mac": the broker drops the client). Told, paho only queues the packet and wakes
        # its loop, which writes it.
        client._thread = self._thread

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- what each side says -----------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> None:
        """Open the connection and send CONNECT (paho's connect(), with this side's options)."""

    @abstractmethod
    def _on_refused(self, reason: ReasonCode) -> None:
        """The broker refused the CONNECT (paho's thread)."""

    @abstractmethod
    def _on_accepted(self, session_present: bool) -> None:
        """The broker accepted the CONNECT (paho's thread): subscribe, set `_connected`."""

    @abstractmethod
    def _on_lost(self, reason: ReasonCode, was_connected: bool) -> None:
        """The connection ended, `_connected` is clear (paho's thread)."""

    @abstractmethod
    def _on_acked(self, mid: int, reason: ReasonCode | None) -> None:
        """A PUBACK (paho's thread, holding paho's locks: record and hand on only)."""

    @abstractmethod
    def _on_received(self, message: paho.MQTTMessage) -> None:
        """A message (paho's thread: hand it on only)."""

    # --- paho callbacks: the connection's state here, the rest to the side's hooks ---------

    def _paho_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = True
            self._on_refused(reason)
            return
        self._accepted = True
        self._on_accepted(flags.session_present)

    def _paho_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self._on_lost(reason, was)

    def _paho_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode | None,
        properties: Properties | None,
    ) -> None:
        self._on_acked(mid, reason)

    def _paho_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._on_received(message)

    # --- the connect loop --------------------------------------------------------------------

    def _run(self) -> None:
        log, words, where = self._log, self._wording, self._where
        backoff = Backoff(*self._reconnect)
        while not self._stop.is_set():
            try:
                self._connect()
            except ssl.SSLCertVerificationError as exc:
                log.error(
                    "%s %s: TLS certificate not trusted: %s%s",
                    words.broker,
                    where,
                    exc.verify_message,
                    words.untrusted_hint,
                )
            except ssl.SSLError as exc:
                log.error("%s %s: TLS failed: %s", words.broker, where, exc)
            except OSError as exc:
                log.warning("%s %s unreachable: %s", words.broker, where, exc)
            else:
                self._accepted = False
                self._client.loop_forever()
                if self._accepted:
                    backoff.reset()
                elif not self._stop.is_set() and not self._refused:
                    # TLS 1.3 lets the broker refuse a client certificate only after the
                    # handshake: the connection just ends, with no CONNACK.
                    log.error(
                        "%s %s closed the connection before accepting %s%s",
                        words.broker,
                        where,
                        words.client,
                        "; is the client certificate valid and issued by the broker's CA?"
                        if self._client_cert
                        else "",
                    )
                self._connected.clear()
            if self._stop.is_set():
                break
            self._stop.wait(backoff.next())
