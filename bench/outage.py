"""Health across long broker outages: reports made, received, lost and duplicated, and
reconnect times, for 8 cameras and a real mosquitto (issue 5).

A private mosquitto with persistence on a free port (tests/support/broker.py), a
persistent-session MQTT 5 subscriber counting health reports by (camera, seq)
(tests/support/seq_counter.py) and `python -m agent run` (tests/support/agent_proc.py)
with --cameras cameras, all looping one small local H.264 clip (320x180, 10 fps, 4 s),
health every --health-interval. The phases, one after the other:

1. warm-up (--warmup s, and until every camera has reported);
2. the broker stopped with SIGTERM, down for --outage s, started again;
3. the broker killed with SIGKILL, down for --kill-outage s (0 skips it);
4. the broker stopped for --restart-outage s (0 skips it); half-way through the agent is
   killed with SIGKILL and started again, before the broker returns.

After each outage the bench waits (--catch-up-timeout) until every camera's reports up to
the newest one made while the broker was down have arrived. A phase runs from the moment
the broker goes down to the moment the next one does (the last: to the end of the run), so
every report belongs to one phase. Its seq range comes from the agent's own counters
(data_dir/counters.json, written before a seq is used): made = the seqs the agent numbered
in the phase, received = the distinct ones the subscriber got, lost = the ones it never got;
duplicates = repeats of an already received report that arrived during the phase (whichever
phase made it), and how many of them the broker flagged DUP. Retained copies the broker
sends on every resubscribe are set aside, not counted. Reconnect = the first report received
for the first time after the broker came back minus the moment it listened again (repeats
the broker redelivers from its own store do not show the agent is back; the subscriber's own
reconnect, at most 0.5 s, is part of it; the agent's CONNECT and the subscriber's are shown
apart). Also read at the end of each outage: the outbox (data_dir/outbox.sqlite, rows
counted read-only) and the agent's resident memory.

    PYTHONPATH=. .venv/bin/python bench/outage.py [--outage 600] [--kill-outage 600]
        [--restart-outage 60] [--health-interval 10] [--cameras 8] [--warmup 30]

Takes the outages plus about 2 minutes (about 23 minutes with the defaults). Needs
/usr/sbin/mosquitto. Targets: 0 lost, reconnect within 5 s, in every phase. Exits 1 when a
target is missed (the logs are kept then), 2 when the setup fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pytest

from agent.mqtt.outbox import OUTBOX_FILE
from agent.state import STATE_FILE
from bench import harness
from contract.topics import Topics
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.media import write_h264
from tests.support.seq_counter import SeqCounter

AGENT_ID = "bench"
TOPIC_PREFIX = "camreg/v1"

# The camera: a small clip the agent loops at its own frame rate; every camera reads it.
CLIP_SECONDS, CLIP_FPS, CLIP_WIDTH, CLIP_HEIGHT = 4, 10, 320, 180

# Issue 5's targets.
TARGET_LOST = 0
TARGET_RECONNECT_S = 5.0

# Every camera must have reported this long after the agent started, or the setup failed
# (with 8 cameras on 2 cores the first reports came within about 10 s).
FIRST_REPORT_TIMEOUT_S = 90.0
# How often the waits look at the agent and the counts.
POLL_S = 0.2
# An outage lasts at least this many health intervals (see main).
MIN_OUTAGE_INTERVALS = 2
# Progress lines during a long outage, this often.
PROGRESS_EVERY_S = 60.0
STOP_TIMEOUT_S = 15.0
# The agent's log lines start with asctime (contract/common/log.py) when not under journald.
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) ")
AGENT_CONNECTED = "connected to registry broker"


class SetupError(Exception):
    """A part of the benchmark did not start; the message says which and why."""


class AgentDied(Exception):
    """The agent exited on its own in the middle of the run."""


# --- what the bench reads from the agent ------------------------------------------------------


def made_seqs(data_dir: Path) -> dict[str, int]:
    """The highest seq the agent has numbered per camera (0 before its first report)."""
    try:
        data = json.loads((data_dir / STATE_FILE).read_bytes())
    except FileNotFoundError:
        return {}
    return {k: int(v) for k, v in data["seq"].items() if k != "*"}


@dataclass(frozen=True)
class OutboxSize:
    rows: int
    bytes: int  # the database file and its write-ahead log

    def __str__(self) -> str:
        return f"{self.rows} rows, {self.bytes / 1024:.0f} KiB"


def outbox_size(data_dir: Path) -> OutboxSize:
    """Rows waiting in the agent's outbox, read without taking part in its writes."""
    path = data_dir / OUTBOX_FILE
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        (rows,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
    finally:
        db.close()
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    return OutboxSize(int(rows), size)


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_mb: float

    def __str__(self) -> str:
        return f"{self.rss_mb:.0f} MB (peak {self.peak_mb:.0f})"


def memory(pid: int) -> Memory:
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return Memory(fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0))


def agent_connects(log_text: str) -> list[float]:
    """Wall-clock times (Unix) of the agent's "connected to registry broker" log lines."""
    times = []
    for line in log_text.splitlines():
        match = LOG_TIME.match(line)
        if match and AGENT_CONNECTED in line:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            times.append(stamp.timestamp())  # asctime is local time
    return times


def notable_lines(log_text: str) -> list[tuple[int, str]]:
    """The agent's WARNING/ERROR/CRITICAL lines and tracebacks, alike ones (differing only in
    numbers) counted together: (count, the first of them)."""
    groups: dict[str, list[str]] = {}
    for line in log_text.splitlines():
        match = LOG_TIME.match(line)
        level = match.group(2) if match else ""
        if level in ("WARNING", "ERROR", "CRITICAL") or line.startswith("Traceback"):
            text = line[match.end() :] if match else line
            groups.setdefault(re.sub(r"\d+", "N", text), []).append(line)
    return [(len(lines), lines[0]) for lines in groups.values()]


@dataclass(frozen=True)
class Delivery:
    at: float  # monotonic
    camera: str
    seq: int
    dup_flag: bool  # the broker marked it as a redelivery


class TimedSeqCounter(SeqCounter):
    """SeqCounter that notes when it (re)connected, to tell its delay from the agent's, and
    sets retained copies aside.

    Health is retained, so every resubscribe after a reconnect brings each camera's last
    report again, from the broker's store, within a few ms of the subscriber's CONNECT. It
    was delivered before; counted, it would be a duplicate and the "first report after the
    broker came back" before the agent had even connected.
    """

    def __init__(self, broker: Broker, topic_filter: str) -> None:
        self.connected_at: list[float] = []  # monotonic
        self.retained_copies = 0
        self.deliveries: list[Delivery] = []  # every counted report, in arrival order
        super().__init__(broker, topic_filter)

    def _on_connect(self, client: Any, *args: Any) -> None:
        self.connected_at.append(time.monotonic())
        super()._on_connect(client, *args)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.retain:
            self.retained_copies += 1
            return
        before = len(self.arrivals)
        super()._on_message(client, userdata, message)
        if len(self.arrivals) > before:  # counted (it met the contract)
            body = json.loads(message.payload)
            self.deliveries.append(
                Delivery(self.arrivals[-1], body["camera"], body["seq"], bool(message.dup))
            )


# --- the run --------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    planned_s: float
    began: float  # monotonic: the agent started, or the broker went down
    start: dict[str, int] = field(default_factory=dict)  # seqs made before the phase
    at_back: dict[str, int] = field(default_factory=dict)  # seqs made while the broker was down
    end: dict[str, int] = field(default_factory=dict)
    down_s: float = 0.0
    back: float | None = None  # monotonic, when the broker listened again
    back_wall: float | None = None
    catch_up_s: float | None = None
    outbox: OutboxSize | None = None
    outbox_at_kill: OutboxSize | None = None
    memory: Memory | None = None


@dataclass(frozen=True)
class Counts:
    made: int
    made_while_down: int
    received: int
    lost: dict[str, list[int]]
    duplicates: int
    dup_flagged: int  # of them, marked DUP by the broker

    @property
    def lost_total(self) -> int:
        return sum(len(v) for v in self.lost.values())


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.cameras = [f"cam{i}" for i in range(1, args.cameras + 1)]
        self.broker = Broker(persistence=True, directory=tmp / "broker")
        self.data_dir = tmp / "agent" / "state"
        self.config = tmp / "agent" / "config.yaml"
        self.agents: list[AgentProcess] = []
        self.counter: TimedSeqCounter | None = None

    @property
    def agent(self) -> AgentProcess:
        return self.agents[-1]

    def agent_log(self) -> str:
        return self.agent.log

    def setup(self) -> None:
        try:
            clip = write_h264(
                self.tmp / "clip.mp4",
                CLIP_SECONDS,
                fps=CLIP_FPS,
                width=CLIP_WIDTH,
                height=CLIP_HEIGHT,
            )
        except Exception as exc:  # PyAV or libx264 missing or broken
            raise SetupError(f"cannot encode the camera clip: {exc!r}") from exc
        try:
            self.broker.start()
        except pytest.fail.Exception as exc:
            raise SetupError(f"mosquitto did not start: {exc}") from None
        self.config.parent.mkdir(parents=True)
        write_config(
            self.config,
            broker_url=self.broker.url,
            cameras=[{"id": camera, "url": str(clip)} for camera in self.cameras],
            agent={"id": AGENT_ID},
            registry={"health_interval": f"{self.args.health_interval:g}s"},
        )
        self.counter = TimedSeqCounter(self.broker, Topics(TOPIC_PREFIX, AGENT_ID).health("+"))
        try:
            self.counter.__enter__()
        except AssertionError as exc:
            self.counter = None
            raise SetupError(f"the counting subscriber did not connect: {exc}") from None

    def close(self) -> None:
        """End the agent, the subscriber and the broker; each even if an earlier one fails."""
        try:
            for agent in self.agents:
                agent.close()
        finally:
            try:
                if self.counter is not None:
                    self.counter.__exit__(None, None, None)
            except AssertionError as exc:  # reports off the contract, listed by report()
                print(f"the counting subscriber: {exc}", file=sys.stderr)
            finally:
                self.broker.stop()

    def start_agent(self) -> None:
        self.agents.append(AgentProcess(self.config).start())

    def check_agent(self) -> None:
        proc = self.agent.proc
        if proc is not None and proc.poll() is not None:
            tail = "\n".join(self.agent_log().splitlines()[-30:])
            raise AgentDied(f"the agent exited with {proc.returncode}:\n{tail}")

    def sleep_until(self, started: float, seconds: float, what: str) -> None:
        """Sleep until `seconds` after `started` (monotonic), watching that the agent lives;
        a progress line now and then."""
        end = started + seconds
        next_note = started + PROGRESS_EVERY_S
        while (left := end - time.monotonic()) > 0:
            self.check_agent()
            time.sleep(min(POLL_S, left))
            if time.monotonic() >= next_note and left > PROGRESS_EVERY_S / 2:
                print(f"  {what}: {next_note - started:.0f} s of {seconds:g} s", flush=True)
                next_note += PROGRESS_EVERY_S

    def seen(self) -> dict[str, int]:
        assert self.counter is not None
        return {camera: self.counter.highest(camera) for camera in self.cameras}

    def wait_received(
        self, upto: dict[str, int], timeout: float, *, new_after: float | None = None
    ) -> float | None:
        """Seconds until every camera's reports up to `upto` arrived (and, with `new_after`,
        some report arrived for the first time after that moment); None on timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.check_agent()
            seen = self.seen()
            if all(seen[c] >= upto.get(c, 0) for c in self.cameras) and (
                new_after is None or self.first_new_after(new_after) is not None
            ):
                return time.monotonic() - started
            time.sleep(POLL_S)
        return None

    def warm_up(self) -> Phase:
        started = time.monotonic()
        phase = Phase("warm-up", self.args.warmup, started)
        phase.start = {c: 0 for c in self.cameras}
        self.start_agent()
        try:
            self.sleep_until(started, self.args.warmup, "warm-up")
            left = max(0.0, started + FIRST_REPORT_TIMEOUT_S - time.monotonic())
            if self.wait_received({c: 1 for c in self.cameras}, left) is None:
                raise SetupError(
                    f"not every camera reported within {FIRST_REPORT_TIMEOUT_S:g} s: "
                    f"highest seqs seen {self.seen()}\n{self.agent_log()[-3000:]}"
                )
        except AgentDied as exc:
            raise SetupError(str(exc)) from None
        phase.memory = memory(self._pid())
        return phase

    def _pid(self) -> int:
        assert self.agent.proc is not None
        return self.agent.proc.pid

    def outage(self, name: str, seconds: float, *, kill: bool, restart_agent: bool) -> Phase:
        print(f"{name}: broker down for {seconds:g} s ...", flush=True)
        start = made_seqs(self.data_dir)
        down = time.monotonic()
        phase = Phase(name, seconds, down, start)
        if kill:
            self.broker.kill()
        else:
            self.broker.stop()
        if restart_agent:
            self.sleep_until(down, seconds / 2, name)
            phase.outbox_at_kill = outbox_size(self.data_dir)
            self.agent.kill()
            print(f"  agent killed (SIGKILL) with {phase.outbox_at_kill} in its outbox; restarted")
            self.start_agent()
        self.sleep_until(down, seconds, name)
        phase.outbox = outbox_size(self.data_dir)
        phase.memory = memory(self._pid())
        phase.at_back = made_seqs(self.data_dir)
        try:
            self.broker.start()
        except pytest.fail.Exception as exc:
            raise SetupError(f"mosquitto did not start again: {exc}") from None
        phase.back, phase.back_wall = time.monotonic(), time.time()
        phase.down_s = phase.back - down
        phase.catch_up_s = self.wait_received(
            phase.at_back, self.args.catch_up_timeout, new_after=phase.back
        )
        if phase.catch_up_s is None:
            print(
                f"  not caught up within {self.args.catch_up_timeout:g} s: made {phase.at_back}, "
                f"seen {self.seen()}",
                flush=True,
            )
        return phase

    def finish(self, phases: list[Phase]) -> None:
        """Close the seq ranges: each phase ends where the next begins; the last one ends with
        what the agent has made now, once that has arrived too."""
        for phase, following in itertools.pairwise(phases):
            phase.end = following.start
        last = made_seqs(self.data_dir)
        if self.wait_received(last, self.args.catch_up_timeout) is None:
            print(f"  the last reports did not arrive: made {last}, seen {self.seen()}")
        phases[-1].end = last
        time.sleep(1.0)  # duplicates still in flight
        try:
            code, took = self.agent.terminate(STOP_TIMEOUT_S)
            print(f"agent stopped with SIGTERM: exit {code} after {took:.1f} s", flush=True)
        except Exception as exc:  # a hung agent is reported, then killed by close()
            print(f"agent did not stop on SIGTERM: {exc!r}", flush=True)

    def counts(self, phase: Phase, until: float) -> Counts:
        """Made, received and lost by the phase's seq range; duplicates by arrival time: the
        repeats that arrived from `phase.began` to `until`, whichever phase made them."""
        assert self.counter is not None
        made = while_down = received = 0
        lost: dict[str, list[int]] = {}
        for camera in self.cameras:
            low, high = phase.start.get(camera, 0), phase.end.get(camera, 0)
            made += high - low
            if phase.at_back:
                while_down += phase.at_back.get(camera, 0) - low
            distinct = {s for s in list(self.counter.seqs[camera]) if low < s <= high}
            received += len(distinct)
            missing = sorted(set(range(low + 1, high + 1)) - distinct)
            if missing:
                lost[camera] = missing
        seen: set[tuple[str, int]] = set()
        duplicates = flagged = 0
        for delivery in self.counter.deliveries:
            key = (delivery.camera, delivery.seq)
            if key in seen and phase.began <= delivery.at < until:
                duplicates += 1
                flagged += delivery.dup_flag
            seen.add(key)
        return Counts(made, while_down, received, lost, duplicates, flagged)

    def first_new_after(self, moment: float) -> float | None:
        """Arrival of the first report after `moment` that had not arrived before: after a
        SIGKILL the broker redelivers, from its own store, what it had not yet seen
        acknowledged, before the agent has even connected."""
        assert self.counter is not None
        seen: set[tuple[str, int]] = set()
        for delivery in list(self.counter.deliveries):
            key = (delivery.camera, delivery.seq)
            if delivery.at > moment and key not in seen:
                return delivery.at
            seen.add(key)
        return None

    def counter_connect_after(self, moment: float) -> float | None:
        assert self.counter is not None
        return next((t for t in self.counter.connected_at if t > moment), None)


# --- report ----------------------------------------------------------------------------------


def seconds_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def report(out: IO[str], bench: Bench, phases: list[Phase], log_text: str) -> bool:
    args = bench.args
    w = out.write
    connects = agent_connects(log_text)
    lost_ok = reconnect_ok = True
    w("\n")
    w(f"machine: {harness.machine()}\n")
    w(
        f"agent:   {len(bench.cameras)} cameras (local {CLIP_WIDTH}x{CLIP_HEIGHT} {CLIP_FPS} fps "
        f"H.264 clip, looped), health every {args.health_interval:g} s, keepalive default\n\n"
    )
    w(
        "| phase | broker down | reports made (while down) | received | lost "
        "| duplicates (DUP flag) | reconnect: first report (agent CONNECT, subscriber) "
        "| caught up after "
        "| outbox at end of outage | agent RSS at end of outage |\n"
    )
    w("|---|---|---|---|---|---|---|---|---|---|\n")
    totals = Counts(0, 0, 0, {}, 0, 0)
    ends = [p.began for p in phases[1:]] + [float("inf")]
    for phase, until in zip(phases, ends, strict=True):
        counts = bench.counts(phase, until)
        totals = Counts(
            totals.made + counts.made,
            totals.made_while_down + counts.made_while_down,
            totals.received + counts.received,
            {**totals.lost, **{f"{phase.name}/{k}": v for k, v in counts.lost.items()}},
            totals.duplicates + counts.duplicates,
            totals.dup_flagged + counts.dup_flagged,
        )
        lost_ok &= counts.lost_total <= TARGET_LOST
        if phase.back is None:
            w(
                f"| {phase.name} | - | {counts.made} | {counts.received} | {counts.lost_total} "
                f"| {counts.duplicates} ({counts.dup_flagged}) | - | - | - | {phase.memory} |\n"
            )
            continue
        first = bench.first_new_after(phase.back)
        reconnect = None if first is None else first - phase.back
        reconnect_ok &= reconnect is not None and reconnect <= TARGET_RECONNECT_S
        reconnect_ok &= phase.catch_up_s is not None
        assert phase.back_wall is not None
        agent_at = next((t - phase.back_wall for t in connects if t > phase.back_wall - 1), None)
        sub_at = bench.counter_connect_after(phase.back)
        sub = None if sub_at is None else sub_at - phase.back
        outbox = str(phase.outbox)
        if phase.outbox_at_kill is not None:
            outbox += f" ({phase.outbox_at_kill.rows} at the agent's kill)"
        w(
            f"| {phase.name} | {phase.down_s:.0f} s | {counts.made} ({counts.made_while_down}) "
            f"| {counts.received} | {counts.lost_total} "
            f"| {counts.duplicates} ({counts.dup_flagged}) "
            f"| {seconds_text(reconnect)} ({seconds_text(agent_at)}, {seconds_text(sub)}) "
            f"| {seconds_text(phase.catch_up_s)} | {outbox} | {phase.memory} |\n"
        )
    w(
        f"| whole run | | {totals.made} ({totals.made_while_down}) | {totals.received} "
        f"| {totals.lost_total} | {totals.duplicates} ({totals.dup_flagged}) | | | | |\n\n"
    )
    assert bench.counter is not None
    w(f"boots seen (bdseq): {sorted(bench.counter.bdseqs)}\n")
    w(f"retained copies on resubscribe (set aside, not counted): {bench.counter.retained_copies}\n")
    problems = getattr(bench.counter, "contract_problems", [])
    if problems:
        lost_ok = False
        w(f"reports off the contract (not counted): {len(problems)}, the first: {problems[0]}\n")
    for where, missing in totals.lost.items():
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        w(f"lost {where}: {len(missing)} seqs: {shown}\n")
    w(f"lost reports, every phase: target {TARGET_LOST}: {harness.verdict(lost_ok)}\n")
    w(
        f"reconnect within {TARGET_RECONNECT_S:g} s and backlog caught up, every outage: "
        f"{harness.verdict(reconnect_ok)}\n"
    )
    notable = notable_lines(log_text)
    if notable:
        w("\nthe agent's warnings and errors (alike lines counted together, the first shown):\n")
        for count, line in notable:
            w(f"  {count:4d}x {line}\n")
    return lost_ok and reconnect_ok


# --- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="outage-bench-"))
    total = args.warmup + args.outage + args.kill_outage + args.restart_outage
    print(f"about {total / 60 + 1:.0f} minutes; logs in {tmp}", flush=True)
    bench = Bench(args, tmp)
    ok = False
    try:
        bench.setup()
        phases = [bench.warm_up()]
        print(f"warm-up done: highest seqs seen {bench.seen()}", flush=True)
        phases.append(bench.outage("SIGTERM", args.outage, kill=False, restart_agent=False))
        if args.kill_outage > 0:
            phases.append(bench.outage("SIGKILL", args.kill_outage, kill=True, restart_agent=False))
        if args.restart_outage > 0:
            phases.append(
                bench.outage("agent kill -9", args.restart_outage, kill=False, restart_agent=True)
            )
        bench.finish(phases)
        ok = report(sys.stdout, bench, phases, bench.agent_log())
    except AgentDied as exc:
        print(f"outage: {exc}", file=sys.stderr)
    finally:
        bench.close()
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp} (agent: {bench.config.with_suffix('.log')})")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    def seconds(text: str) -> float:
        value = float(text)
        if value < 0:
            raise argparse.ArgumentTypeError("must not be negative")
        return value

    parser.add_argument("--outage", type=seconds, default=600.0, help="SIGTERM outage, s")
    parser.add_argument(
        "--kill-outage", type=seconds, default=600.0, help="SIGKILL outage, s (0: skip)"
    )
    parser.add_argument(
        "--restart-outage",
        type=seconds,
        default=60.0,
        help="outage with an agent kill -9 half-way, s (0: skip)",
    )
    parser.add_argument("--health-interval", type=seconds, default=10.0, help="s (default 10)")
    parser.add_argument("--cameras", type=int, default=8, help="cameras (default 8)")
    parser.add_argument("--warmup", type=seconds, default=30.0, help="s (default 30)")
    parser.add_argument(
        "--catch-up-timeout",
        type=seconds,
        default=120.0,
        help="how long to wait for the backlog after each outage, s (default 120)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and data")
    args = parser.parse_args()
    if args.outage <= 0:
        parser.error("--outage must be positive")
    if args.health_interval < 1:
        parser.error("--health-interval must be at least 1 (the agent's minimum)")
    # Reports must pile up while the broker is down: the backlog is what is measured, and
    # with none the first report after the return waits for the next interval.
    shortest = min(s for s in (args.outage, args.kill_outage, args.restart_outage) if s > 0)
    if shortest < MIN_OUTAGE_INTERVALS * args.health_interval:
        parser.error(
            f"every outage must last at least {MIN_OUTAGE_INTERVALS} health intervals "
            f"({MIN_OUTAGE_INTERVALS * args.health_interval:g} s)"
        )
    if args.cameras < 1:
        parser.error("--cameras must be at least 1")
    with harness.sigterm_as_interrupt():
        try:
            return run(args)
        except SetupError as exc:
            print(f"outage: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("outage: interrupted; all processes stopped", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
