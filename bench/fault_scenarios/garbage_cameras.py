"""Garbage cameras beside a good one, under a systemd-style watchdog (issue 15.5).

One good RTSP camera (the demo's, recorded in short segments) and many cameras that speak
broken RTSP (tests/support/garbage_camera.py: random bytes, one byte a second, a gigabyte
SDP, noise after a valid handshake, RTP packets of random bytes). The agent runs as a
process with NOTIFY_SOCKET and WATCHDOG_USEC set; the scenario reads the pings itself.

Survived: the pings never paused as long as WatchdogSec, the agent never exited on its
own and stopped cleanly, the good camera's footage has no gap (no gap rows, each segment
starting where the one before ended), no worker had to be abandoned (every call on a
stream ended by its deadline) and the agent's memory stayed within its bound.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from bench import harness
from bench.fault_scenarios import Outcome

NAME = "garbage_cameras"
WHAT = "many cameras sending garbage beside a good one, with a systemd watchdog"

FULL_S, SHORT_S = 300.0, 30.0
# Garbage cameras of each kind: 3 x 5 kinds at full length, one of each when short.
FULL_EACH, SHORT_EACH = 3, 1
# The test's WatchdogSec (the unit's is 30 s): short enough to see a stalled main loop.
WATCHDOG_S = 4.0
SEGMENT_S = "5s"
# Consecutive segments of one connection join where the next keyframe arrived.
JOIN_SLACK_S = 0.1
# Resident memory the agent may reach: its ~120 MB plus headroom; without the FFmpeg
# allocation cap one gigabyte SDP alone took it past 1 GB.
MAX_PEAK_RSS_MB = 400.0
SAMPLE_EVERY_S = 1.0
FAST_BYTES_PER_S = 1e12


class _Pings:
    """Reads the notify socket on a thread; keeps (time, message) of each datagram."""

    def __init__(self, path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self.received: list[tuple[float, str]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                message = self._sock.recv(4096).decode(errors="replace")
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append((time.monotonic(), message))

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self._sock.close()

    def ready_at(self) -> float | None:
        return next((t for t, m in self.received if m == "READY=1"), None)

    def max_interval(self, until: float) -> tuple[float, int]:
        """The longest wait for a ping from READY to `until`, and the number of pings."""
        ready = self.ready_at()
        if ready is None:
            return float("inf"), 0
        pings = [t for t, m in self.received if m == "WATCHDOG=1" and t <= until]
        moments = [ready, *pings, until]
        return max(b - a for a, b in itertools.pairwise(moments)), len(pings)


def _status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) and Threads of a process, from /proc."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def run(work: Path, *, short: bool) -> Outcome:
    from agent.recording.index import SegmentIndex
    from tests.support.garbage_camera import MODES, GarbageCamera

    harness.check_system_binaries()
    seconds = SHORT_S if short else FULL_S
    each = SHORT_EACH if short else FULL_EACH
    procs = harness.Processes(work)
    with ExitStack() as stack:
        stack.callback(procs.close)
        broker_port = harness.start_broker(procs, work)
        url, camera = harness.start_camera(
            procs, harness.free_port(), ["--scene", "live", "--width", "640", "--height", "360"]
        )
        garbage = [
            (
                mode,
                f"{mode.replace('_', '-')}-{n}",
                # The gigabyte SDP as fast as loopback goes: what the allocation cap is for.
                stack.enter_context(
                    GarbageCamera(mode, bytes_per_s=FAST_BYTES_PER_S)
                    if mode == "huge_sdp"
                    else GarbageCamera(mode)
                ),
            )
            for mode in MODES
            for n in range(each)
        ]
        cameras = [{"id": "front", "url": url, "recording": {"segment": SEGMENT_S}}]
        cameras += [{"id": name, "url": g.url} for _, name, g in garbage]
        config = harness.write_agent_config(
            work / "config.yaml",
            data_dir=work / "state",
            broker_port=broker_port,
            health_interval="10s",
            cameras=cameras,
        )
        pings = _Pings(work / "notify")
        stack.callback(pings.close)
        agent = harness.start_agent(
            procs,
            config,
            extra_env={
                "NOTIFY_SOCKET": str(work / "notify"),
                "WATCHDOG_USEC": str(round(WATCHDOG_S * 1_000_000)),
            },
        )
        began = time.monotonic()
        while pings.ready_at() is None:
            harness.alive(procs, "agent", agent)
            if time.monotonic() - began > harness.START_TIMEOUT_S:
                raise harness.SetupError("the agent sent no READY=1")
            time.sleep(0.1)
        ready = pings.ready_at() or began
        cpu_at_ready = _cpu_seconds(agent.pid)
        peak_rss = peak_threads = 0
        exited_early: int | None = None
        while time.monotonic() < ready + seconds:
            time.sleep(SAMPLE_EVERY_S)
            if agent.poll() is not None:
                exited_early = agent.returncode
                break
            status = _status(agent.pid)
            peak_rss = max(peak_rss, status.get("VmHWM", 0))
            peak_threads = max(peak_threads, status.get("Threads", 0))
        until = time.monotonic()
        longest, ping_count = pings.max_interval(until)
        cpu_share = 100 * (_cpu_seconds(agent.pid) - cpu_at_ready) / (until - ready)
        connections: dict[str, list[int]] = {}
        for mode, _, g in garbage:
            connections.setdefault(mode, []).append(g.connections)
        code = procs.stop(agent) if exited_early is None else exited_early
        procs.stop(camera)
    log = procs.log("agent")
    abandoned = log.count("abandoning it and starting a new one")
    index = SegmentIndex(work / "state" / "footage.sqlite")
    segments = index.segments("front")
    gaps = index.gaps("front")
    joins = [
        (after.start - before.end).total_seconds()
        for before, after in itertools.pairwise(segments)
        if before.end is not None
    ]
    broken_joins = [j for j in joins if abs(j) > JOIN_SLACK_S]
    recorded = sum((s.end - s.start).total_seconds() for s in segments if s.end is not None)
    peak_rss_mb = peak_rss / 1024
    survived = (
        exited_early is None
        and code == 0
        and longest < WATCHDOG_S
        and not gaps
        and not broken_joins
        and abandoned == 0
        and peak_rss_mb < MAX_PEAK_RSS_MB
        and bool(segments)
    )
    tries = ", ".join(f"{mode} {min(n)}-{max(n)}" for mode, n in connections.items())
    return Outcome(
        survived,
        [
            f"{len(garbage)} garbage cameras ({each} x {', '.join(MODES)}) beside 1 good one "
            f"for {until - ready:.0f} s",
            f"watchdog (WatchdogSec {WATCHDOG_S:.0f} s): {ping_count} pings, longest wait "
            f"{longest:.2f} s; agent "
            + (f"exited by itself with {exited_early}" if exited_early is not None else "ran on")
            + f", stopped with {code}",
            f"good camera: {len(segments)} segments, {recorded:.0f} s recorded, "
            f"{len(gaps)} gaps, {len(broken_joins)} joins off by more than {JOIN_SLACK_S} s",
            f"connections per garbage camera (each one a call that ended): {tries}",
            f"abandoned workers: {abandoned}; agent threads at most {peak_threads}",
            f"agent memory: peak resident {peak_rss_mb:.0f} MB (bound {MAX_PEAK_RSS_MB:.0f}); "
            f"CPU {cpu_share:.1f} % of one core",
        ],
    )
