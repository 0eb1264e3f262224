"""Registry ingest throughput: simulated agents publish health through a real mosquitto,
`camera-registry ingest --workers N` validates and commits it; prints the sustained rate for
SQLite and PostgreSQL and where the machine's CPU went.

    .venv/bin/python -m bench.registry_ingest [--seconds 15] [--rate 6000] \
        [--engines sqlite,postgresql] [--workers 1,2] [--publishers 2]

The publishers run in their own processes (`--publish`), at a fixed offered rate, so the
numbers are what the workers keep up with while the broker, the database and the
publishers share this machine's cores. Target (ISSUE): >= 6,000 health messages/s on
PostgreSQL. CPU is read from /proc over the measured interval, per group: ingest (the
`ingest` process and its workers), publishers, mosquitto, PostgreSQL (every `postgres`
process on the machine).

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
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from registry.db.engine import open_engine
from registry.db.schema import health_history
from tests.support.broker import Broker
from tests.support.postgres import temporary_database

# 20,000 cameras: at 6,000 msg/s each reports every ~3 s (a real one every minute, so
# 6,000 msg/s is ~360,000 of them). With 200 agents (1,000 cameras, 6 reports a second
# each) every 500-report batch holds half of all cameras, and two workers' transactions
# wait for each other's camera and agent row locks all the time: --agents 200 shows it.
AGENTS = 4000
CAMERAS_PER_AGENT = 5
WARMUP_S = 3.0
DRAIN_TIMEOUT_S = 120.0
# Publisher processes, each with CONNECTIONS connections with their own in-flight window:
# small enough that paho's per-PUBACK scan stays cheap, large enough to hide the round
# trip. Each process runs paho's loop itself (no loop thread): publish() then writes at
# once instead of waking a second thread through a socket pair, which halves the
# publisher's CPU.
PUBLISHERS = 2
CONNECTIONS = 2
PUBLISH_WINDOW = 200
SERVICE_EVERY = 20  # publishes between reads of the PUBACKs
START_TIMEOUT_S = 30.0
POLL_S = 0.25
CLIENT_ID = "bench-ingest"
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


def agent_topics(index: int, share: int, agents: int) -> list[tuple[str, bytes]]:
    """The health topics and payload templates of publisher `index` of `share`."""
    return [
        (
            f"camreg/v1/agents/agent-{a:05d}/cameras/cam-{c}/health",
            health_template(f"agent-{a:05d}", f"cam-{c}"),
        )
        for a in range(index, agents, share)
        for c in range(CAMERAS_PER_AGENT)
    ]


class _Connection:
    """One MQTT connection whose loop this process runs; at most PUBLISH_WINDOW unacked."""

    def __init__(self, port: int, client_id: str) -> None:
        self.acked = 0
        self.sent = 0
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(PUBLISH_WINDOW)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        deadline = time.monotonic() + 10
        while not self.client.is_connected() and time.monotonic() < deadline:
            self.client.loop(0.05)

    def _on_publish(self, *_args: object) -> None:
        self.acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        while self.sent - self.acked >= PUBLISH_WINDOW:
            self.client.loop(0.01)
        self.sent += 1
        self.client.publish(topic, payload, qos=1, retain=True)

    def close(self, deadline: float) -> None:
        while self.acked < self.sent and time.monotonic() < deadline:
            self.client.loop(0.01)
        self.client.disconnect()


def publish(port: int, rate: float, seconds: float, index: int, share: int, agents: int) -> None:
    """A publisher process: its share of the cameras report in turn at `rate` msg/s (its
    share of the offered rate); prints how many the broker acknowledged and its CPU s."""
    connections = [_Connection(port, f"bench-agents-{index}-{i}") for i in range(CONNECTIONS)]
    cameras = [
        (topic, template, connections[n % CONNECTIONS])
        for n, (topic, template) in enumerate(agent_topics(index, share, agents))
    ]
    cpu0 = time.process_time()
    start = time.monotonic()
    sent = 0
    seq = 0
    while time.monotonic() - start < seconds:
        seq += 1
        for topic, template, connection in cameras:
            wait = start + sent / rate - time.monotonic()
            if wait > 0.002:
                for c in connections:
                    c.client.loop(0)
                time.sleep(wait)
            connection.publish(topic, template % seq)
            sent += 1
            if sent % SERVICE_EVERY == 0:
                for c in connections:
                    c.client.loop(0)
            if time.monotonic() - start >= seconds:
                break
    deadline = time.monotonic() + 30
    for connection in connections:
        connection.close(deadline)
    print(sum(c.acked for c in connections), time.process_time() - cpu0, flush=True)


# --- CPU of the processes involved, from /proc --------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _tree(pid: int) -> list[int]:
    """A process and its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _tree(int(child))
    return found


def _postgres_pids() -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            if stat.read_text().strip() == "postgres":
                pids.append(int(stat.parent.name))
        except OSError:
            continue
    return pids


@dataclass
class CpuSample:
    at: float
    ingest: float
    broker: float
    postgres: float


def sample(ingest: subprocess.Popen[bytes], broker_pid: int) -> CpuSample:
    return CpuSample(
        time.monotonic(),
        sum(_cpu(p) for p in _tree(ingest.pid)),
        _cpu(broker_pid),
        sum(_cpu(p) for p in _postgres_pids()),
    )


def cores(first: CpuSample, last: CpuSample) -> dict[str, float]:
    """Cores used per group between two samples."""
    span = last.at - first.at
    return {
        "ingest": (last.ingest - first.ingest) / span,
        "broker": (last.broker - first.broker) / span,
        "postgres": (last.postgres - first.postgres) / span,
    }


# --- the runs -----------------------------------------------------------------------------


@contextmanager
def bench_broker(queue_limit: str) -> Iterator[Broker]:
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        broker = Broker(directory=Path(tmp) / "broker")
        # The test broker logs every message (log_type all): that alone costs more than
        # the ingest here, so the bench broker logs errors, warnings and notices only.
        config = broker.config_file.read_text().replace("log_type all\n", LOG_TYPES)
        broker.config_file.write_text(config + queue_limit + "\n")
        broker.start()
        try:
            yield broker
        finally:
            broker.close()


def start_ingest(
    broker: Broker, url: str, workers: int, directory: Path
) -> subprocess.Popen[bytes]:
    """`camera-registry ingest --workers N` against the broker; returns once every worker
    is connected (the broker's log says so) and has had time to subscribe."""
    config = directory / "registry.yaml"
    config.write_text(
        f"data_dir: {directory}\ndatabase: {url}\nshare_group: bench\n"
        f"mqtt:\n  broker: {broker.url}\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registry",
            "ingest",
            "--config",
            str(config),
            "--no-snapshot",
            "--client-id",
            CLIENT_ID,
            "--workers",
            str(workers),
        ],
        stdin=subprocess.DEVNULL,
    )
    ids = [CLIENT_ID] + [f"{CLIENT_ID}-{k}" for k in range(2, workers + 1)]
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(f" as {i} " in broker.log() for i in ids):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("the ingest workers did not connect")
        time.sleep(0.1)
    time.sleep(1.0)  # the SUBACKs: the sessions now hold the shared subscriptions
    return process


def stop_ingest(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    if process.wait(60) != 0:
        raise SystemExit(f"camera-registry ingest exited with {process.returncode}")


def start_publishers(
    port: int, rate: float, seconds: float, count: int, agents: int
) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.registry_ingest",
                "--publish",
                str(port),
                "--rate",
                str(rate / count),
                "--seconds",
                str(seconds),
                "--share",
                f"{i}/{count}",
                "--agents",
                str(agents),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]


def finish_publishers(publishers: list[subprocess.Popen[str]]) -> tuple[int, float]:
    """(messages the broker acknowledged, publisher CPU seconds) of all of them."""
    sent, cpu = 0, 0.0
    for publisher in publishers:
        out, _ = publisher.communicate()
        acked, seconds = out.strip().splitlines()[-1].split()
        sent += int(acked)
        cpu += float(seconds)
    return sent, cpu


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(health_history)).scalar_one()
        )


def wait_stored(engine: Engine, count: int, timeout: float) -> float:
    """Polls until `count` reports are stored; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while stored(engine) < count and time.monotonic() < deadline:
        time.sleep(POLL_S / 5)
    return time.monotonic()


def run(
    url: str, rate: float, seconds: float, workers: int, publishers: int, agents: int
) -> dict[str, float]:
    """Live: publishing and ingesting at once."""
    with (
        bench_broker(documented_queue_limit()) as broker,
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
    ):
        engine = open_engine(url)
        ingest = start_ingest(broker, url, workers, Path(tmp))
        started = time.monotonic()
        children = start_publishers(broker.port, rate, seconds, publishers, agents)
        time.sleep(WARMUP_S)
        first, cpu0 = stored(engine), sample(ingest, broker.pid)
        while (
            any(p.poll() is None for p in children) and time.monotonic() - started < seconds - 0.5
        ):
            time.sleep(POLL_S)
        last, cpu1 = stored(engine), sample(ingest, broker.pid)
        sent, publisher_cpu = finish_publishers(children)
        ended = time.monotonic()
        drained = wait_stored(engine, sent, DRAIN_TIMEOUT_S)
        stop_ingest(ingest)
        rows = stored(engine)
        engine.dispose()
        dropped = broker.log().count(DROPPED)
    return {
        "offered": sent / (ended - started),
        "sustained": (last - first) / (cpu1.at - cpu0.at),
        "sent": sent,
        "rows": rows,
        "drain_s": drained - ended,
        "broker_dropped": dropped,
        "publisher_cores": publisher_cpu / (ended - started),
        **cores(cpu0, cpu1),
    }


def run_backlog(
    url: str, rate: float, seconds: float, workers: int, publishers: int, agents: int
) -> dict[str, float]:
    """Capacity without the publishers competing for the cores: the agents publish while
    the workers are away (their sessions keep the messages at the broker), then the
    workers come back and drain the backlog; the rate is stored reports per second."""
    # The whole run waits at the broker, so its queue must hold it all.
    with (
        bench_broker("max_queued_messages 0") as broker,
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
    ):
        engine = open_engine(url)
        stop_ingest(start_ingest(broker, url, workers, Path(tmp)))
        sent, _ = finish_publishers(
            start_publishers(broker.port, rate, seconds, publishers, agents)
        )
        ingest = start_ingest(broker, url, workers, Path(tmp))
        first, cpu0 = stored(engine), sample(ingest, broker.pid)
        # Measured from the first stored batch to the last, so the workers' start-up (a
        # process spawn each) is not counted.
        wait_stored(engine, sent, DRAIN_TIMEOUT_S)
        last, cpu1 = stored(engine), sample(ingest, broker.pid)
        stop_ingest(ingest)
        engine.dispose()
        dropped = broker.log().count(DROPPED)
    return {
        "sent": sent,
        "rows": last,
        "drain_s": cpu1.at - cpu0.at,
        "rate": (last - first) / (cpu1.at - cpu0.at),
        "broker_dropped": dropped,
        **cores(cpu0, cpu1),
    }


@contextmanager
def _database(name: str) -> Iterator[str]:
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/registry.sqlite"
    else:
        with temporary_database() as url:
            yield url


def _cores(result: dict[str, float], rate: float) -> str:
    """Cores used per group, and the ingest's and publishers' CPU per message."""
    publishers = result.get("publisher_cores")
    return (
        f"cores: ingest {result['ingest']:.2f} ({1e6 * result['ingest'] / rate:.0f} µs/msg), "
        f"mosquitto {result['broker']:.2f}, postgres {result['postgres']:.2f}"
        + (
            f", publishers {publishers:.2f} ({1e6 * publishers / result['offered']:.0f} µs/msg)"
            if publishers is not None
            else ""
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=6000.0, help="offered health msg/s")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2", help="ingest worker counts to run")
    parser.add_argument("--publishers", type=int, default=PUBLISHERS, help="publisher processes")
    parser.add_argument(
        "--agents",
        type=int,
        default=AGENTS,
        help=f"simulated agents, {CAMERAS_PER_AGENT} cameras each",
    )
    parser.add_argument("--no-live", action="store_true", help="skip the live runs")
    parser.add_argument(
        "--no-backlog",
        action="store_true",
        help="skip the backlog runs (publish first, then drain)",
    )
    parser.add_argument("--publish", type=int, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--share", default="0/1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        index, share = (int(part) for part in args.share.split("/"))
        publish(args.publish, args.rate, args.seconds, index, share, args.agents)
        return 0
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    failed = False
    for name in args.engines.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            label = f"{name} x{workers}"
            if not args.no_live:
                with _database(name) as url:
                    result = run(
                        url, args.rate, args.seconds, workers, args.publishers, args.agents
                    )
                print(
                    f"{label:14s} live: offered {result['offered']:5.0f} msg/s, sustained "
                    f"{result['sustained']:5.0f} msg/s (received+validated+committed), "
                    f"stored {result['rows']:.0f}/{result['sent']:.0f}, drained "
                    f"{result['drain_s']:.1f} s after; {_cores(result, result['sustained'])}",
                    flush=True,
                )
                if result["broker_dropped"] or result["rows"] != result["sent"]:
                    print(
                        f"{label}: LOST MESSAGES (mosquitto logged "
                        f"{result['broker_dropped']:.0f} drop notices)",
                        flush=True,
                    )
                    failed = True
            if not args.no_backlog:
                with _database(name) as url:
                    backlog = run_backlog(
                        url, args.rate, args.seconds, workers, args.publishers, args.agents
                    )
                print(
                    f"{label:14s} backlog of {backlog['sent']:.0f} drained at "
                    f"{backlog['rate']:5.0f} msg/s ({backlog['drain_s']:.1f} s, stored "
                    f"{backlog['rows']:.0f}); {_cores(backlog, backlog['rate'])}",
                    flush=True,
                )
                if backlog["broker_dropped"] or backlog["rows"] != backlog["sent"]:
                    print(f"{label}: LOST MESSAGES in the backlog run", flush=True)
                    failed = True
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
