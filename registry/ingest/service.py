"""Ingest as a service: the `ingest` command runs one alone, `serve` runs one in-process."""

from __future__ import annotations

import logging
import socket
import threading

from sqlalchemy import Engine

from registry.config import ServerConfig
from registry.ingest.retention import IntervalPruner
from registry.ingest.subscriber import IngestStats, IngestWorker
from registry.link import RequestRelay

log = logging.getLogger(__name__)


def default_client_id(config: ServerConfig) -> str:
    """`{share_group}-{host}`: stable across restarts, so the broker keeps this worker's
    session and the messages queued while it was down; distinct per machine. A second
    worker on one machine needs its own (`ingest --client-id`)."""
    return f"{config.share_group}-{socket.gethostname()}"[:64]


class IngestService:
    """One ingest worker for this registry config and database."""

    def __init__(
        self,
        config: ServerConfig,
        engine: Engine,
        *,
        client_id: str | None = None,
        snapshot: bool = True,
    ) -> None:
        self.config = config
        self.client_id = client_id or default_client_id(config)
        self.worker = IngestWorker(
            config.mqtt,
            engine,
            share_group=config.share_group,
            client_id=self.client_id,
            snapshot=snapshot,
        )
        # The web app relays requests over this same connection: with the documented
        # broker config (use_username_as_clientid) a second connection with the same user
        # would take this one's place.
        self.relay = RequestRelay(config.mqtt, connection=self.worker.connection)
        self.pruner = IntervalPruner(engine, config.history_retention)

    def start(self, stop: threading.Event) -> None:
        log.info(
            "ingest: worker %s joins share group %s on %s",
            self.client_id,
            self.config.share_group,
            self.config.mqtt.broker,
        )
        self.worker.start(stop)
        self.pruner.start(stop)

    def join(self, timeout: float | None = None) -> None:
        """After the stop event is set: flush the last batch, disconnect."""
        self.worker.join(timeout)
        self.pruner.join(timeout)
        stats = self.worker.stats()
        log.info(
            "ingest stopped: %d messages, %d rejected, %d duplicates",
            stats.received,
            stats.rejected,
            stats.duplicates,
        )

    def stats(self) -> IngestStats:
        return self.worker.stats()
