"""Registry ingest throughput: simulated agents publish health through a real mosquitto, one
ingest worker (this process) validates and commits it; prints the sustained rate for SQLite
and PostgreSQL.

    .venv/bin/python -m bench.registry_ingest [--seconds 15] [--rate 6000] \
        [--engines sqlite,postgresql]

The publishers run in a child process (`--publish`), at a fixed offered rate, so the
numbers are what one worker keeps up with while the broker and the publishers share this
machine's cores. Target (ISSUE): >= 6,000 health messages/s on PostgreSQL.

"Sent" counts what the broker acknowledged (PUBACK), not what was handed to paho: paho
queues a publish it cannot send yet in memory, drops that queue at disconnect, and scans
its whole in-flight window on every PUBACK (`_update_inflight`), so a publisher with a
large window and a backlog crawls at ~1,000 msg/s. An earlier version of this bench
counted publish() calls and reported that as an ingest "stall". Each publisher client
here keeps at most PUBLISH_WINDOW messages unacknowledged and waits otherwise.

The broker runs with docs/mosquitto/mosquitto.conf's `max_queued_messages`; the bench
fails if mosquitto logs that it dropped messages or if any sent report is not stored.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from agent.config import RegistryConfig
from registry.db.engine import open_engine
from registry.db.schema import health_history
from registry.ingest.subscriber import IngestWorker
from tests.support.broker import Broker
from tests.support.postgres import temporary_database

AGENTS = 200
CAMERAS_PER_AGENT = 5
WARMUP_S = 3.0
DRAIN_TIMEOUT_S = 120.0
# Publisher connections (in the child process), each with its own in-flight window: small
# enough that paho's per-PUBACK scan stays cheap, large enough to hide the round trip.
PUBLISHERS = 4
PUBLISH_WINDOW = 200
BROKER_CONF = Path(__file__).resolve().parent.parent / "docs" / "mosquitto" / "mosquitto.conf"
# What the documented broker does beyond the test broker's defaults, and what it logs: a
# notice is where mosquitto says it drops messages for a slow client.
LOG_TYPES = "log_type error\nlog_type warning\nlog_type notice\n"
DROPPED = "Outgoing messages are being dropped"


def documented_queue_limit() -> str:
    """The `max_queued_messages` line of the operator's broker config, as it is there."""
    found = re.search(r"^max_queued_messages\s+\d+$", BROKER_CONF.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"{BROKER_CONF}: no max_queued_messages line")
    return found.group(0)


def health(agent: str, camera: str, seq: int) -> bytes:
    return health_template(agent, camera) % seq


def health_template(agent: str, camera: str) -> bytes:
    """A realistic health object (about 1 kB) with `%d` where its seq goes."""
    return (
        b'{"schema":"camreg.health.v1","agent":"%(agent)s","camera":"%(camera)s","bdseq":1,'
        b'"seq":%%d,"ts":"2026-03-01T10:00:00.000Z","status":"degraded","problems":["blurred"],'
        b'"metrics":{"fps":15.0,"bitrate_kbps":2000.5,"keyframe_interval_s":2.0,'
        b'"frame_change":1.2,"brightness":80.1,"seconds_since_packet":0.1,"reconnects_1h":0,'
        b'"contrast":120.0,"sharpness":0.3,"sharpness_ratio":0.9,"detail":0.4,"noise":2.1,'
        b'"colour_cast":3.0,"colour_cast_ratio":0.2,"reference_similarity":0.95,'
        b'"stalls_1h":0,"view_shift":0.01},"stream":{"codec":"h264","width":1920,'
        b'"height":1080,"fps":15.0,"bitrate_kbps":2000.0,"source":"rtsp"},'
        b'"footage":{"oldest":"2026-02-22T10:00:00Z","newest":"2026-03-01T10:00:00Z",'
        b'"gaps":{"count":1,"seconds":12.5},"bytes":123456789,'
        b'"retention_days_effective":6.5},"clock":{"synced":true,"source":"ntp"}}'
    ) % {b"agent": agent.encode(), b"camera": camera.encode()}


class _Publisher:
    """One MQTT connection that never has more than PUBLISH_WINDOW publishes unacked."""

    def __init__(self, port: int, index: int) -> None:
        self.acked = 0
        self.sent = 0
        self._window = threading.Semaphore(PUBLISH_WINDOW)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-agents-{index}",
                                  protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(PUBLISH_WINDOW)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, *_args: object) -> None:
        self.acked += 1
        self._window.release()

    def publish(self, topic: str, payload: bytes) -> None:
        self._window.acquire()
        self.sent += 1
        self.client.publish(topic, payload, qos=1, retain=True)

    def close(self) -> None:
        deadline = time.monotonic() + 30
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, rate: float, seconds: float) -> None:
    """The child process: every camera of every agent reports in turn at `rate` msg/s;
    prints how many the broker acknowledged."""
    publishers = [_Publisher(port, i) for i in range(PUBLISHERS)]
    time.sleep(0.5)
    cameras = [
        (f"camreg/v1/agents/agent-{a:04d}/cameras/cam-{c}/health",
         health_template(f"agent-{a:04d}", f"cam-{c}"), publishers[a % PUBLISHERS])
        for a in range(AGENTS) for c in range(CAMERAS_PER_AGENT)
    ]
    start = time.monotonic()
    sent = 0
    seq = 0
    while time.monotonic() - start < seconds:
        seq += 1
        for topic, template, publisher in cameras:
            wait = start + sent / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            publisher.publish(topic, template % seq)
            sent += 1
            if time.monotonic() - start >= seconds:
                break
    for publisher in publishers:
        publisher.close()
    print(sum(p.acked for p in publishers), flush=True)


def run(url: str, rate: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        broker = Broker(directory=Path(tmp) / "broker")
        # The test broker logs every message (log_type all): that alone costs more than
        # the ingest here, so the bench broker logs errors, warnings and notices only.
        config = broker.config_file.read_text().replace("log_type all\n", LOG_TYPES)
        broker.config_file.write_text(config + documented_queue_limit() + "\n")
        broker.start()
        engine = open_engine(url)
        worker = IngestWorker(RegistryConfig(broker=broker.url), engine,
                              share_group="bench", client_id="bench-ingest", snapshot=False)
        stop = threading.Event()
        worker.start(stop)
        worker.connection.wait_connected(10)
        time.sleep(0.5)
        publisher = subprocess.Popen(
            [sys.executable, "-m", "bench.registry_ingest", "--publish", str(broker.port),
             "--rate", str(rate), "--seconds", str(seconds)],
            stdout=subprocess.PIPE, text=True,
        )
        started = time.monotonic()
        time.sleep(WARMUP_S)
        first, t0 = worker.stats().stored, time.monotonic()
        out, _ = publisher.communicate()
        sent = int(out.strip().splitlines()[-1])
        last, t1 = worker.stats().stored, time.monotonic()
        while worker.stats().stored < sent and time.monotonic() - t1 < DRAIN_TIMEOUT_S:
            time.sleep(0.05)
        drained = time.monotonic()
        stop.set()
        worker.join()
        stats = worker.stats()
        with engine.connect() as connection:
            rows = connection.execute(
                select(func.count()).select_from(health_history)).scalar_one()
        engine.dispose()
        broker.close()
        dropped = broker.log().count(DROPPED)
    return {
        "offered": sent / (t1 - started),
        "sustained": (last - first) / (t1 - t0),
        "overall": stats.stored / (drained - started),
        "sent": sent,
        "stored": stats.stored,
        "rows": rows,
        "batches": stats.batches,
        "drain_s": drained - t1,
        "broker_dropped": dropped,
    }


def run_backlog(url: str, rate: float, seconds: float) -> dict[str, float]:
    """Capacity without the publishers competing for the cores: the agents publish while
    the worker is away (its session keeps the messages at the broker), then the worker
    comes back and drains the backlog; the rate is stored reports per second of drain."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        broker = Broker(directory=Path(tmp) / "broker")
        config = broker.config_file.read_text().replace("log_type all\n", LOG_TYPES)
        # The whole run waits at the broker, so its queue must hold it all.
        broker.config_file.write_text(config + "max_queued_messages 0\n")
        broker.start()
        engine = open_engine(url)

        def worker() -> IngestWorker:
            return IngestWorker(RegistryConfig(broker=broker.url), engine,
                                share_group="bench", client_id="bench-ingest", snapshot=False)

        stop = threading.Event()
        first = worker()
        first.start(stop)
        first.connection.wait_connected(10)
        time.sleep(0.5)  # the SUBACKs: the session now holds the shared subscriptions
        stop.set()
        first.join()
        out = subprocess.run(
            [sys.executable, "-m", "bench.registry_ingest", "--publish", str(broker.port),
             "--rate", str(rate), "--seconds", str(seconds)],
            stdout=subprocess.PIPE, text=True, check=True,
        ).stdout
        sent = int(out.strip().splitlines()[-1])
        stop = threading.Event()
        second = worker()
        started = time.monotonic()
        second.start(stop)
        while second.stats().stored < sent and time.monotonic() - started < DRAIN_TIMEOUT_S:
            time.sleep(0.02)
        drained = time.monotonic()
        stop.set()
        second.join()
        stats = second.stats()
        with engine.connect() as connection:
            rows = connection.execute(
                select(func.count()).select_from(health_history)).scalar_one()
        engine.dispose()
        broker.close()
        dropped = broker.log().count(DROPPED)
    return {"sent": sent, "stored": stats.stored, "rows": rows, "batches": stats.batches,
            "drain_s": drained - started, "rate": stats.stored / (drained - started),
            "broker_dropped": dropped}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=6000.0, help="offered health msg/s")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--no-backlog", action="store_true",
                        help="skip the second run (publish first, then drain)")
    parser.add_argument("--publish", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.publish:
        publish(args.publish, args.rate, args.seconds)
        return 0
    failed = False
    for name in args.engines.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                result = run(f"sqlite:///{tmp}/registry.sqlite", args.rate, args.seconds)
        else:
            with temporary_database() as url:
                result = run(url, args.rate, args.seconds)
        print(
            f"{name:10s} offered {result['offered']:6.0f} msg/s  "
            f"sustained {result['sustained']:6.0f} msg/s (received+validated+committed)  "
            f"overall {result['overall']:6.0f} msg/s  stored {result['stored']:.0f}/"
            f"{result['sent']:.0f} (history rows {result['rows']:.0f})  "
            f"batches {result['batches']:.0f}  backlog drained in {result['drain_s']:.1f} s",
            flush=True,
        )
        if result["broker_dropped"] or result["rows"] != result["sent"]:
            print(f"{name}: LOST MESSAGES (mosquitto logged {result['broker_dropped']:.0f} "
                  "drop notices)", flush=True)
            failed = True
        if args.no_backlog:
            continue
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                backlog = run_backlog(f"sqlite:///{tmp}/registry.sqlite", args.rate,
                                      args.seconds)
        else:
            with temporary_database() as url:
                backlog = run_backlog(url, args.rate, args.seconds)
        print(
            f"{name:10s} backlog of {backlog['sent']:.0f} drained at {backlog['rate']:6.0f} "
            f"msg/s ({backlog['drain_s']:.1f} s, stored {backlog['stored']:.0f}, history rows "
            f"{backlog['rows']:.0f}, batches {backlog['batches']:.0f})",
            flush=True,
        )
        if backlog["broker_dropped"] or backlog["rows"] != backlog["sent"]:
            print(f"{name}: LOST MESSAGES in the backlog run", flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
