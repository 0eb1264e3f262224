"""One ingest worker: a shared MQTT 5 subscription to every agent topic, one writer thread
that validates and stores batches, and acknowledgements only after the commit.

Several workers (processes or machines) join the same share group
(`$share/{share_group}/...`), and the broker hands each message to one of them. The paho
callback only enqueues. Messages are acknowledged (PUBACK) after their batch is committed,
so a worker that crashes or loses its database gets them again from the broker (its
session outlives the connection); duplicates that causes are recognised by the store.

Retained messages are not sent to shared subscriptions (MQTT 5, 4.8.2), so a registry with
an empty database would not learn the agents' current state, health and request statuses
until they change. Each worker therefore takes a snapshot on every connect that starts a
new session: a plain subscription to those topics, dropped as soon as its SUBACK arrives,
delivers the retained messages once. Its copies carry an MQTT 5 subscription identifier
(SNAPSHOT_ID), and of those only retained copies are kept; any live message that slips
through it also arrived on the shared subscription. The shared subscriptions carry none:
paho decodes an identifier through its pure-Python property tables, ~20 µs a message,
about a tenth of a worker's CPU; a copy without one came through the share group.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from sqlalchemy import Engine

from contract.config import BrokerConfig
from contract.topics import Kind, filters
from registry.errors import RegistryError
from registry.ingest.connection import BrokerConnection, Subscription
from registry.ingest.pipeline import check
from registry.ingest.ratelimit import RateLimitedLog
from registry.ingest.store import IngestStore, Message
from registry.ingest.validate import MessageValidator

log = logging.getLogger(__name__)

# A batch is committed at BATCH_MAX messages or BATCH_WAIT_S after its first one, whichever
# comes first: one transaction per batch is what makes thousands of reports a second
# affordable, and 100 ms is still "live" on a dashboard.
BATCH_MAX = 500
BATCH_WAIT_S = 0.1
# After a database error the batch is retried after this long (it stays unacknowledged,
# and the broker stops sending once RECEIVE_MAXIMUM messages are waiting).
DB_RETRY_S = 2.0
STOP_JOIN_S = 10.0
# Subscription identifier of the brief plain subscriptions that fetch retained messages
# (the shared ones have none). 1 marked the shared ones in earlier versions: a resumed
# session may still deliver it, and such a copy is a shared one too.
SNAPSHOT_ID = 2
# Audit entries are not retained, so a snapshot has nothing to fetch for them.
SNAPSHOT_KINDS = (Kind.STATE, Kind.HEALTH, Kind.STATUS)


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection it came on: a mid means nothing on another
    received_at: float


@dataclass(frozen=True)
class IngestStats:
    """Counters since start, for logs and the benchmark."""

    received: int
    stored: int
    rejected: int
    duplicates: int
    batches: int
    queued: int


class IngestWorker:
    """Subscribes, validates, stores in batches, acknowledges; stop with the stop event."""

    def __init__(
        self,
        mqtt: BrokerConfig,
        engine: Engine,
        *,
        share_group: str,
        client_id: str,
        snapshot: bool = True,
        batch_max: int = BATCH_MAX,
        batch_wait: float = BATCH_WAIT_S,
    ) -> None:
        self._prefix = mqtt.topic_prefix
        self._validator = MessageValidator(self._prefix)
        self._store = IngestStore(engine)
        self._batch_max = batch_max
        self._batch_wait = batch_wait
        self._snapshot = snapshot
        self._queue: queue.SimpleQueue[Received] = queue.SimpleQueue()
        self._generation = 0
        self._lock = threading.Lock()
        self._counts = {"received": 0, "stored": 0, "rejected": 0, "duplicates": 0, "batches": 0}
        self._rejections = RateLimitedLog(log)
        self._stop = threading.Event()
        self.connection = BrokerConnection(
            mqtt,
            client_id=client_id,
            persistent_session=True,
            manual_ack=True,
            on_message=self._on_message,
            on_connect=self._on_connect,
            name="ingest-mqtt",
        )
        for topic_filter in filters(self._prefix).values():
            self.connection.add_subscription(
                # Retained messages come through the snapshot, once: mosquitto 2.0 also
                # sends every retained message to a shared subscription each time it is
                # renewed (every reconnect), which with 20,000 cameras was 20,000 stale
                # duplicates to validate and store per reconnect of every worker.
                Subscription(f"$share/{share_group}/{topic_filter}", retained=False)
            )
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)

    def start(self, stop: threading.Event) -> None:
        self._stop = stop
        self._writer.start()
        self.connection.start()

    def join(self, timeout: float | None = STOP_JOIN_S) -> None:
        """Wait for the writer to flush its last batch after the stop event, then close."""
        self._writer.join(timeout)
        self.connection.stop()

    def writer_alive(self) -> bool:
        """Is the writer thread running (or not started yet)? It stops only after the
        stop event, or on a bug."""
        return self._writer.ident is None or self._writer.is_alive()

    def stats(self) -> IngestStats:
        with self._lock:
            return IngestStats(queued=self._queue.qsize(), **self._counts)

    # --- paho's thread -----------------------------------------------------------------------

    def _on_connect(self, session_present: bool) -> None:
        with self._lock:
            self._generation += 1
        if self._snapshot and not session_present:
            # A new session: anything retained may be news to us.
            topic_filters = filters(self._prefix)
            for kind in SNAPSHOT_KINDS:
                self.connection.subscribe_briefly(Subscription(topic_filters[kind], SNAPSHOT_ID))

    def _on_message(self, message: paho.MQTTMessage) -> None:
        identifiers = getattr(message.properties, "SubscriptionIdentifier", None) or ()
        # A snapshot copy is wanted only if retained; anything else came through the share.
        wanted = SNAPSHOT_ID not in identifiers or message.retain
        if not wanted:
            if message.qos > 0:
                self.connection.ack(message.mid)
            return
        self._queue.put(
            Received(
                message.topic,
                bytes(message.payload),
                message.mid,
                message.qos,
                self._generation,
                time.time(),
            )
        )

    # --- the writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while True:
                batch = self._collect()
                if batch:
                    self._commit(batch)
                elif self._stop.is_set():
                    return
        except Exception:  # a bug: no message gets here (pipeline.py); run_worker exits
            log.exception("ingest writer failed")

    def _collect(self) -> list[Received]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._batch_wait
        while len(batch) < self._batch_max:
            try:
                if self._stop.is_set():
                    batch.append(self._queue.get_nowait())
                else:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list[Received]) -> None:
        messages: list[Message] = [
            check(self._validator, r.topic, r.payload, r.received_at) for r in batch
        ]
        while True:
            try:
                result = self._store.apply(messages)
                break
            except RegistryError as exc:
                log.error("ingest: %s; retrying in %.0f s", exc, DB_RETRY_S)
                if self._stop.wait(DB_RETRY_S):
                    # Not acknowledged: the broker sends these again to the next worker.
                    log.warning("ingest stopped with %d messages not stored", len(batch))
                    return
        # The validator's and the database's: a message the database refused is one too.
        for rejection in result.rejections:
            self._rejections.warning(
                "rejected a message on %r: %s", rejection.topic, rejection.reason
            )
        with self._lock:
            generation = self._generation
            self._counts["received"] += len(batch)
            self._counts["stored"] += result.stored
            self._counts["rejected"] += result.rejected
            self._counts["duplicates"] += result.duplicates
            self._counts["batches"] += 1
        for received in batch:
            if received.qos > 0 and received.generation == generation:
                self.connection.ack(received.mid)
