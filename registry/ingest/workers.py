"""`camera-registry ingest --workers N`: N ingest worker processes on one machine, each
with its own MQTT connection in the same share group, supervised by the parent.

One worker is one Python process, and most of its CPU (~200 µs a health message) is
paho's pure-Python packet handling and our validation, all under one GIL: threads would
not add throughput, processes do. The broker hands each message to one member of the
share group, so N workers take N times the messages a second as long as cores, the
broker and the database keep up (docs/registry-ingest.md, bench/README.md).

Worker k (from 1) connects as:

- client id `{client id}` for k = 1 and `{client id}-{k}` after (each its own session);
- broker user `{mqtt.username}` for k = 1 and `{mqtt.username}-{k}` after, with the same
  password: with `use_username_as_clientid` (docs/mosquitto) one user is one connection,
  so each worker needs its own user (camera-registry, camera-registry-2, ...). A client
  certificate names one user, so `--workers` above 1 refuses one: run one `ingest
  --config` per worker, each with its own certificate, instead.

Only worker 1 takes the retained snapshot (a fresh session's retained messages): the
others would fetch the same messages again. The parent restarts a worker that exits
unexpectedly, RESTART_BUDGET times within RESTART_WINDOW_S, then stops them all and
exits non-zero (for systemd). SIGTERM or SIGINT: every worker is told (SIGTERM), flushes
its last batch and disconnects; one that has not within STOP_TIMEOUT_S is killed (its
unacknowledged messages go to another worker or wait in its session).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from collections import deque
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from contract.common.log import setup_logging
from contract.common.stop_signal import set_from_handler
from contract.exit_codes import EX_SOFTWARE
from registry.config import ServerConfig, load_server_config
from registry.db.engine import open_engine
from registry.errors import RegistryError
from registry.ingest.service import IngestService, default_client_id
from registry.ingest.subscriber import STOP_JOIN_S

log = logging.getLogger(__name__)

# A worker that keeps dying (a broken database URL, a refused broker user) is not
# restarted forever: this many restarts within the window, then the whole ingest exits.
RESTART_BUDGET = 5
RESTART_WINDOW_S = 300.0
# A worker flushes its last batch (the writer's join) and disconnects within this.
STOP_TIMEOUT_S = STOP_JOIN_S + 10.0
CHECK_INTERVAL_S = 1.0
MAX_CLIENT_ID = 64  # mosquitto accepts longer ids; MQTT 3.1 said 23, we stay modest


def worker_config(
    config: ServerConfig, index: int, client_id: str | None
) -> tuple[ServerConfig, str]:
    """Worker `index`'s (from 1) config and client id: its own broker user and session."""
    base = client_id or default_client_id(config)
    if index == 1:
        return config, base[:MAX_CLIENT_ID]
    suffix = f"-{index}"
    mqtt = config.mqtt
    if mqtt.username is not None:
        mqtt = mqtt.model_copy(update={"username": mqtt.username + suffix})
    return (config.model_copy(update={"mqtt": mqtt}), base[: MAX_CLIENT_ID - len(suffix)] + suffix)


def check_workers(config: ServerConfig, count: int) -> None:
    """RegistryError if `count` workers cannot each have their own broker identity."""
    if count > 1 and config.mqtt.client_cert is not None:
        raise RegistryError(
            "--workers above 1 with mqtt.client_cert: every worker would connect as the "
            "certificate's name, and with use_username_as_clientid one user is one "
            "connection; run one `camera-registry ingest --config` per worker, each with "
            "its own certificate (CN camera-registry-2, ...) and --client-id"
        )


def run_worker(
    config: ServerConfig, client_id: str | None, snapshot: bool, stop: threading.Event
) -> None:
    """One worker in this process until `stop` is set."""
    engine = open_engine(config.database_url)
    service = IngestService(config, engine, client_id=client_id, snapshot=snapshot)
    try:
        service.start(stop)
        while not stop.wait(1.0):  # wakes regularly so signal handlers get to run
            if not service.worker.writer_alive():
                # Only a bug gets here (no message can stop the writer). Exit rather than
                # stay connected storing nothing: the pool or systemd starts a fresh one,
                # and the broker sends it what this one had not acknowledged.
                stop.set()
                service.join()
                raise RegistryError("the ingest writer stopped (its traceback is logged above)")
        service.join()
    finally:
        engine.dispose()


def _child(
    config_path: Path, index: int, client_id: str | None, snapshot: bool, verbose: bool
) -> None:
    """A worker process (spawned): reads the config itself, runs until SIGTERM."""
    setup_logging(verbose)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        set_from_handler(stop)

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C reaches the whole process group; the parent stops the workers in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config, own_id = worker_config(load_server_config(config_path), index, client_id)
    run_worker(config, own_id, snapshot and index == 1, stop)


class WorkerPool:
    """N worker processes, restarted within a budget, stopped on request."""

    def __init__(
        self, config_path: Path, count: int, *, client_id: str | None, snapshot: bool, verbose: bool
    ) -> None:
        self._args = (config_path, client_id, snapshot, verbose)
        self._count = count
        # spawn: a fresh interpreter per worker, nothing inherited from the parent's threads
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, BaseProcess] = {}
        self._restarts: deque[float] = deque()

    def _start(self, index: int) -> None:
        config_path, client_id, snapshot, verbose = self._args
        process = self._context.Process(
            target=_child,
            args=(config_path, index, client_id, snapshot, verbose),
            name=f"ingest-{index}",
        )
        process.start()
        self._processes[index] = process

    def run(self, stop: threading.Event) -> int:
        """Until `stop`: 0 after a clean stop, EX_SOFTWARE if the restart budget ran out."""
        for index in range(1, self._count + 1):
            self._start(index)
        log.info("ingest: %d worker processes started", self._count)
        code = 0
        try:
            while not stop.wait(CHECK_INTERVAL_S):
                if not self._check():
                    code = EX_SOFTWARE
                    break
        finally:
            self._stop_all()
        return code

    def _check(self) -> bool:
        now = time.monotonic()
        for index, process in sorted(self._processes.items()):
            if process.is_alive():
                continue
            while self._restarts and now - self._restarts[0] > RESTART_WINDOW_S:
                self._restarts.popleft()
            if len(self._restarts) >= RESTART_BUDGET:
                log.error(
                    "ingest worker %d exited (code %s); %d restarts within %.0f s, giving up",
                    index,
                    process.exitcode,
                    RESTART_BUDGET,
                    RESTART_WINDOW_S,
                )
                return False
            log.error("ingest worker %d exited (code %s); restarting it", index, process.exitcode)
            self._restarts.append(now)
            self._start(index)
        return True

    def _stop_all(self) -> None:
        for process in self._processes.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: flush the last batch, disconnect
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for index, process in sorted(self._processes.items()):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error(
                    "ingest worker %d did not stop within %.0f s; killed", index, STOP_TIMEOUT_S
                )
                process.kill()
                process.join()
