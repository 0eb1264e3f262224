"""Registry ingest throughput: simulated agents publish health through a real mosquitto, one
ingest worker (this process) validates and commits it; prints the sustained rate for SQLite
and PostgreSQL.

    .venv/bin/python -m bench.registry_ingest [--seconds 20] [--rate 8000] \
        [--engines sqlite,postgresql]

The publishers run in a child process (`--publish`), at a fixed offered rate, so the
numbers are what one worker keeps up with while the broker and the publishers share this
machine's cores. Target (ISSUE): >= 6,000 health messages/s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import RegistryConfig
from registry.db.engine import open_engine
from registry.ingest.subscriber import IngestWorker
from tests.support.broker import Broker
from tests.support.postgres import temporary_database

AGENTS = 200
CAMERAS_PER_AGENT = 5
WARMUP_S = 3.0
# The worker may lag behind while publishing; the broker must hold what waits for it
# (mosquitto's default of 1000 queued messages per client would drop the rest).
BROKER_EXTRA = "max_queued_messages 1000000\n"


def health(agent: str, camera: str, seq: int) -> bytes:
    return json.dumps({
        "schema": "camreg.health.v1", "agent": agent, "camera": camera, "bdseq": 1,
        "seq": seq, "ts": "2026-03-01T10:00:00.000Z", "status": "degraded",
        "problems": ["blurred"],
        "metrics": {"fps": 15.0, "bitrate_kbps": 2000.5, "keyframe_interval_s": 2.0,
                    "frame_change": 1.2, "brightness": 80.1, "seconds_since_packet": 0.1,
                    "reconnects_1h": 0, "contrast": 120.0, "sharpness": 0.3,
                    "sharpness_ratio": 0.9, "detail": 0.4, "noise": 2.1, "colour_cast": 3.0,
                    "colour_cast_ratio": 0.2, "reference_similarity": 0.95, "stalls_1h": 0,
                    "view_shift": 0.01},
        "stream": {"codec": "h264", "width": 1920, "height": 1080, "fps": 15.0,
                   "bitrate_kbps": 2000.0, "source": "rtsp"},
        "footage": {"oldest": "2026-02-22T10:00:00Z", "newest": "2026-03-01T10:00:00Z",
                    "gaps": {"count": 1, "seconds": 12.5}, "bytes": 123456789,
                    "retention_days_effective": 6.5},
        "clock": {"synced": True, "source": "ntp"},
    }, separators=(",", ":")).encode()


def publish(port: int, rate: float, seconds: float) -> None:
    """The child process: every camera of every agent reports in turn at `rate` msg/s."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-agents",
                         protocol=paho.MQTTv5)
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(0.5)
    cameras = [(f"agent-{a:04d}", f"cam-{c}") for a in range(AGENTS)
               for c in range(CAMERAS_PER_AGENT)]
    start = time.monotonic()
    sent = 0
    seq = 0
    while time.monotonic() - start < seconds:
        seq += 1
        for agent, camera in cameras:
            wait = start + sent / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            client.publish(f"camreg/v1/agents/{agent}/cameras/{camera}/health",
                           health(agent, camera, seq), qos=1, retain=True)
            sent += 1
            if time.monotonic() - start >= seconds:
                break
    client.disconnect()
    client.loop_stop()
    print(sent, flush=True)


def run(engine_name: str, url: str, rate: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        broker = Broker(directory=Path(tmp) / "broker")
        # The test broker logs every message (log_type all): that alone costs more than
        # the ingest here, so the bench broker logs errors only.
        config = broker.config_file.read_text().replace("log_type all", "log_type error")
        broker.config_file.write_text(config + BROKER_EXTRA)
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
        while worker.stats().stored < sent and time.monotonic() - t1 < 120:
            time.sleep(0.1)
        drained = time.monotonic()
        stats = worker.stats()
        stop.set()
        worker.join()
        engine.dispose()
        broker.close()
    return {
        "offered": sent / (t1 - started),
        "sustained": (last - first) / (t1 - t0),
        "overall": stats.stored / (drained - started),
        "sent": sent,
        "stored": stats.stored,
        "batches": stats.batches,
        "drain_s": drained - t1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=8000.0, help="offered health msg/s")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--publish", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.publish:
        publish(args.publish, args.rate, args.seconds)
        return 0
    for name in args.engines.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                result = run(name, f"sqlite:///{tmp}/registry.sqlite", args.rate, args.seconds)
        else:
            with temporary_database() as url:
                result = run(name, url, args.rate, args.seconds)
        print(
            f"{name:10s} offered {result['offered']:7.0f} msg/s  "
            f"sustained {result['sustained']:7.0f} msg/s (received+validated+committed)  "
            f"overall {result['overall']:7.0f} msg/s  stored {result['stored']:.0f}/"
            f"{result['sent']:.0f}  batches {result['batches']:.0f}  "
            f"backlog drained in {result['drain_s']:.1f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
