"""Recording continuity: minutes of a live RTSP camera give playable segments whose
durations add up to the wall-clock time minus the recorded gaps.

The demo's parts, as real processes: a private mosquitto on a free port, the simulated RTSP
camera (demo/rtsp_camera.py, by default the demo's synthetic street, 1280x720 at
10 fps) and `python -m agent run` recording it into segments of --segment seconds. With
--drop-seconds the camera is stopped in the middle of the run and started again on the same
port, so the footage has a gap. After --minutes the agent gets SIGTERM. Then, from the
footage index the agent wrote (agent.recording.index.SegmentIndex), every segment is:

- decoded frame by frame with PyAV (any decoder error or FFmpeg error message fails it),
- measured by its own timestamps: last PTS - first PTS + one frame (the median PTS step),
- re-hashed and compared with the SHA-256 and size the agent recorded when it closed it.

The rule (issue 4): the segments' durations add up to the wall-clock time from the start of
the first segment to the end of the last, minus the gaps recorded in that span, within one
segment length. Also checked: every file on disk is in the index, no segment is left
`writing`, and the agent stops cleanly.

    PYTHONPATH=. python3 bench/recording_continuity.py [--minutes 3] [--segment 60]
        [--drop-seconds 20]

Needs /usr/sbin/mosquitto and Debian's /usr/bin/python3 with GStreamer's gi bindings.
Exits 1 when a check fails, 2 when the setup fails.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from bench import harness

CAMERA = "front"

# The demo's camera (demo/demo.sh): the synthetic street, 720p at 10 fps.
DEFAULT_SCENE = "synthetic"
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 1280, 720, 10
DEFAULT_BITRATE_KBPS = 2000
DEFAULT_MINUTES = 3.0
DEFAULT_SEGMENT_S = 60.0  # the product default (recording.segment)

# The agent finishes its segment (trailer, fsync, hash) before it exits on SIGTERM.
AGENT_STOP_TIMEOUT_S = 30.0

# Two consecutive segments of one connection should join up to within this many frames.
BOUNDARY_SLACK_FRAMES = 0.5


# --- processes -------------------------------------------------------------------------------


def start_demo_camera(
    procs: harness.Processes, args: argparse.Namespace, port: int
) -> tuple[str, subprocess.Popen[bytes]]:
    options = ["--scene", args.scene, "--fps", str(args.fps)]
    options += ["--width", str(args.width), "--height", str(args.height)]
    options += ["--bitrate-kbps", str(args.bitrate_kbps)]
    return harness.start_camera(procs, port, options)


def agent_config(path: Path, *, url: str, broker_port: int, segment_s: float) -> Path:
    return harness.write_agent_config(
        path,
        data_dir=path.parent / "state",
        broker_port=broker_port,
        health_interval="10s",
        cameras=[
            {
                "id": CAMERA,
                "url": url,
                "analysis_interval": "10s",
                "recording": {"mode": "record", "segment": f"{segment_s:g}s"},
            }
        ],
    )


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What happened, by the benchmark's own clock."""

    data_dir: Path
    footage_dir: Path
    agent_start: datetime
    agent_stop: datetime  # SIGTERM sent
    agent_exit: int
    agent_stop_s: float  # SIGTERM to exit
    camera_down: tuple[datetime, datetime] | None


def record(args: argparse.Namespace, procs: harness.Processes, tmp: Path) -> Run:
    broker = harness.start_broker(procs, tmp)
    camera_port = harness.free_port()
    url, camera = start_demo_camera(procs, args, camera_port)
    config = agent_config(tmp / "agent.yaml", url=url, broker_port=broker, segment_s=args.segment)
    run_s = args.minutes * 60
    started = time.monotonic()
    agent_start = datetime.now(UTC)
    agent = harness.start_agent(procs, config)
    print(f"recording {url} for {run_s:g} s, {args.segment:g} s segments ...", flush=True)
    camera_down = None
    if args.drop_seconds > 0:
        drop_at = started + (run_s - args.drop_seconds) / 2
        harness.sleep_until(drop_at, procs, {"agent": agent, "rtsp_camera": camera})
        down_from = datetime.now(UTC)
        procs.stop(camera)
        print(f"camera stopped for {args.drop_seconds:g} s ...", flush=True)
        harness.sleep_until(drop_at + args.drop_seconds, procs, {"agent": agent})
        _url, camera = start_demo_camera(procs, args, camera_port)
        camera_down = (down_from, datetime.now(UTC))
        print("camera back", flush=True)
    harness.sleep_until(started + run_s, procs, {"agent": agent, "rtsp_camera": camera})
    agent_stop = datetime.now(UTC)
    stopping = time.monotonic()
    code = procs.stop(agent, AGENT_STOP_TIMEOUT_S)
    stop_s = time.monotonic() - stopping
    procs.close()
    return Run(
        data_dir=tmp / "state",
        footage_dir=tmp / "state" / "footage",
        agent_start=agent_start,
        agent_stop=agent_stop,
        agent_exit=code,
        agent_stop_s=stop_s,
        camera_down=camera_down,
    )


# --- checking the footage --------------------------------------------------------------------


@dataclass(frozen=True)
class Playback:
    frames: int
    first_pts_s: float | None  # seconds
    last_pts_s: float | None
    frame_s: float | None  # the median PTS step
    errors: list[str]

    @property
    def duration_s(self) -> float:
        if self.first_pts_s is None or self.last_pts_s is None:
            return 0.0
        return self.last_pts_s - self.first_pts_s + (self.frame_s or 0.0)


def play(path: Path) -> Playback:
    """Decode every frame; FFmpeg's error messages and exceptions are the errors."""
    import av
    import av.logging

    av.logging.set_level(av.logging.ERROR)
    errors: list[str] = []
    pts: list[int] = []
    frames = 0
    time_base = None
    with av.logging.Capture(local=False) as logs:
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                time_base = stream.time_base
                for packet in container.demux(stream):
                    if packet.pts is not None:
                        pts.append(packet.pts)
                    frames += len(packet.decode())
        except (av.FFmpegError, OSError, IndexError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    av.logging.set_level(None)
    errors += [f"{name}: {message.strip()}" for _level, name, message in logs]
    if not pts or time_base is None:
        return Playback(frames, None, None, None, errors or ["no timestamps"])
    pts.sort()
    steps = [b - a for a, b in itertools.pairwise(pts) if b > a]
    tb = float(time_base)
    frame_s = statistics.median(steps) * tb if steps else None
    return Playback(frames, pts[0] * tb, pts[-1] * tb, frame_s, errors)


@dataclass(frozen=True)
class SegmentCheck:
    number: int
    path: Path
    state: str
    start: datetime
    end: datetime | None
    playback: Playback
    hash_ok: bool

    @property
    def index_s(self) -> float:
        return (self.end - self.start).total_seconds() if self.end is not None else 0.0

    @property
    def playable(self) -> bool:
        return self.playback.frames > 0 and not self.playback.errors


@dataclass(frozen=True)
class GapSpan:
    start: datetime
    end: datetime
    reason: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Footage:
    segments: list[SegmentCheck]
    gaps: list[GapSpan]  # clipped to [first start, last end]
    unindexed: list[Path]  # files on disk the index does not list


def check_footage(run: Run) -> Footage:
    from agent.recording.index import SegmentIndex, sha256_file
    from agent.recording.storage import INDEX_FILE

    index_path = run.data_dir / INDEX_FILE
    if not index_path.is_file():
        raise harness.SetupError(f"the agent wrote no footage index at {index_path}")
    index = SegmentIndex(index_path)
    try:
        rows = index.segments(CAMERA)
        all_gaps = index.gaps(CAMERA)
    finally:
        index.close_db()
    checks = []
    for number, row in enumerate(rows, 1):
        print(f"  checking segment {number}/{len(rows)} {row.path.name} ...", flush=True)
        try:
            size, digest = sha256_file(row.path)
            hash_ok = (size, digest) == (row.bytes, row.sha256)
        except OSError:
            hash_ok = False
        playback = play(row.path) if row.path.is_file() else Playback(0, None, None, None, [])
        if not row.path.is_file():
            playback.errors.append("file missing")
        checks.append(
            SegmentCheck(number, row.path, row.state, row.start, row.end, playback, hash_ok)
        )
    gaps = []
    if checks:
        first = checks[0].start
        last = max(c.end or c.start for c in checks)
        for gap in all_gaps:
            start, end = max(gap.start, first), min(gap.end, last)
            if end > start:
                gaps.append(GapSpan(start, end, gap.reason))
    listed = {row.path.resolve() for row in rows}
    on_disk = sorted(p for p in run.footage_dir.rglob("*") if p.is_file())
    unindexed = [p for p in on_disk if p.resolve() not in listed]
    return Footage(checks, gaps, unindexed)


# --- report ----------------------------------------------------------------------------------


def clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%H:%M:%S.%f")[:-3]


def verdict(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def boundaries(footage: Footage) -> list[tuple[int, float]]:
    """(segment number, seconds of stream time missing or doubled before it) for each
    segment that follows another of the same connection (no gap between them)."""
    result = []
    for before, after in itertools.pairwise(footage.segments):
        end = before.end or before.start
        if any(g.start < after.start and g.end > end for g in footage.gaps):
            continue  # a reconnection: the camera's timestamps start again
        a, b = before.playback, after.playback
        if a.last_pts_s is None or b.first_pts_s is None or a.frame_s is None:
            continue
        result.append((after.number, b.first_pts_s - (a.last_pts_s + a.frame_s)))
    return result


def report(out: IO[str], args: argparse.Namespace, run: Run, footage: Footage) -> bool:
    segments = footage.segments
    w = out.write
    w("\n")
    w(f"machine: {harness.machine()}; load {harness.load_average()}\n")
    w(
        f"camera:  rtsp_camera.py --scene {args.scene}, {args.width}x{args.height} "
        f"{args.fps} fps, {args.bitrate_kbps} kbit/s H.264 over RTSP (TCP)\n"
    )
    run_s = (run.agent_stop - run.agent_start).total_seconds()
    w(
        f"agent:   started {clock(run.agent_start)}, SIGTERM {clock(run.agent_stop)} "
        f"({run_s:.1f} s), exited {run.agent_exit} after {run.agent_stop_s:.1f} s; "
        f"segment {args.segment:g} s\n"
    )
    if run.camera_down is not None:
        down, up = run.camera_down
        w(
            f"camera:  stopped {clock(down)}, serving again {clock(up)} "
            f"({(up - down).total_seconds():.1f} s down)\n"
        )
    # index s: end - start as the index has them; content s: by the segment's own timestamps.
    w("\n| # | start (UTC) | end | index s | content s | content - index | frames | fps ")
    w("| plays | SHA-256 | state |\n")
    w("|---|---|---|---|---|---|---|---|---|---|---|\n")
    for c in segments:
        p = c.playback
        fps = p.frames / p.duration_s if p.duration_s > 0 else 0.0
        w(
            f"| {c.number} | {clock(c.start)} | {clock(c.end)} | {c.index_s:.3f} | "
            f"{p.duration_s:.3f} | {p.duration_s - c.index_s:+.3f} | {p.frames} | {fps:.2f} | "
            f"{verdict(c.playable)} | "
            f"{verdict(c.hash_ok)} | {c.state} |\n"
        )
    for c in segments:
        for error in c.playback.errors[:5]:
            w(f"  segment {c.number}: {error}\n")
    if not segments:
        w("no segments recorded\n")
        return False
    first = segments[0]
    last_end = max(c.end or c.start for c in segments)
    wall = (last_end - first.start).total_seconds()
    gap_s = sum(g.seconds for g in footage.gaps)
    content = sum(c.playback.duration_s for c in segments)
    expected = wall - gap_s
    diff = content - expected
    frame_s = statistics.median(c.playback.frame_s for c in segments if c.playback.frame_s) or 0
    w("\n")
    for g in footage.gaps:
        w(f"recorded gap: {clock(g.start)} - {clock(g.end)} ({g.seconds:.3f} s, {g.reason})\n")
    joins = boundaries(footage)
    if joins:
        worst = max(joins, key=lambda j: abs(j[1]))
        w(
            f"joins between segments of one connection: {len(joins)}, largest "
            f"{worst[1] * 1000:+.0f} ms (before segment {worst[0]}; one frame is "
            f"{frame_s * 1000:.0f} ms)\n"
        )
    after_stop = (last_end - run.agent_stop).total_seconds()
    w(
        f"first segment started {(first.start - run.agent_start).total_seconds():.1f} s after "
        f"the agent; the last ended {abs(after_stop):.2f} s "
        f"{'after' if after_stop >= 0 else 'before'} the SIGTERM\n"
    )
    w(f"wall clock, start of first segment to end of last: {wall:10.3f} s\n")
    w(f"recorded gaps in that span ({len(footage.gaps)}):               {gap_s:10.3f} s\n")
    w(f"wall clock minus gaps:                              {expected:10.3f} s\n")
    w(f"sum of the segments' own durations:                 {content:10.3f} s\n")
    frames = f" ({diff / frame_s:+.1f} frames)" if frame_s else ""
    ok_total = abs(diff) <= args.segment
    w(
        f"difference:                                         {diff:+10.3f} s{frames}"
        f"   rule |difference| <= one segment ({args.segment:g} s): {verdict(ok_total)}\n"
    )
    checks = {
        "durations add up": ok_total,
        "every segment plays": all(c.playable for c in segments),
        "every SHA-256 verifies": all(c.hash_ok for c in segments),
        "every segment sealed (closed or partial)": all(
            c.state in ("closed", "partial") for c in segments
        ),
        "every file on disk is indexed": not footage.unindexed,
        "agent stopped cleanly (exit 0)": run.agent_exit == 0,
    }
    if run.camera_down is not None:
        checks["the camera's outage is a recorded gap"] = any(
            g.start <= run.camera_down[1] and g.end >= run.camera_down[0] for g in footage.gaps
        )
    for path in footage.unindexed:
        w(f"not in the index: {path}\n")
    w("\n")
    for name, ok in checks.items():
        w(f"{verdict(ok):>4}  {name}\n")
    passed = all(checks.values())
    w(f"\n{'PASS' if passed else 'FAIL'}  ({len(segments)} segments, {content:.1f} s of video)\n")
    return passed


# --- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    harness.check_system_binaries()
    tmp = Path(tempfile.mkdtemp(prefix="continuity-bench-"))
    procs = harness.Processes(tmp)
    try:
        recorded = record(args, procs, tmp)
        print("checking the footage ...", flush=True)
        footage = check_footage(recorded)
        ok = report(sys.stdout, args, recorded, footage)
    except BaseException:
        procs.close()
        print(f"logs and footage kept in {tmp}", file=sys.stderr)
        raise
    if ok and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"logs and footage kept in {tmp}", file=sys.stderr)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, default=DEFAULT_MINUTES, help="how long the agent records"
    )
    parser.add_argument(
        "--segment",
        type=float,
        default=DEFAULT_SEGMENT_S,
        help=f"segment length, s (default {DEFAULT_SEGMENT_S:g}, the product default)",
    )
    parser.add_argument(
        "--drop-seconds",
        type=float,
        default=0.0,
        help="stop the camera this long in the middle of the run (default 0: no drop)",
    )
    parser.add_argument("--scene", choices=("synthetic", "live"), default=DEFAULT_SCENE)
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    parser.add_argument("--height", type=int, default=DEFAULT_HEIGHT)
    parser.add_argument("--fps", type=int, default=DEFAULT_FPS)
    parser.add_argument("--bitrate-kbps", type=int, default=DEFAULT_BITRATE_KBPS)
    parser.add_argument(
        "--keep", action="store_true", help="keep the footage and logs even when all passes"
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.segment <= 0 or args.drop_seconds < 0:
        parser.error("--minutes and --segment must be positive, --drop-seconds not negative")
    if args.drop_seconds >= args.minutes * 60 / 2:
        parser.error("--drop-seconds must be less than half the run")
    return harness.run_main(
        "recording_continuity", lambda: run(args), interrupted="all processes stopped"
    )


if __name__ == "__main__":
    sys.exit(main())
