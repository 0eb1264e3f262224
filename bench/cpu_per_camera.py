"""CPU and memory of `camera-agent run` on live 1080p RTSP cameras, next to OpenCV decode-all.

A real RTSP server (demo/rtsp_camera.py --file) loops a pre-encoded 1080p 25 fps
H.264 clip (4 Mbit/s, keyframe every 2 s, sensor noise and motion) without re-encoding it.
On that URL, side by side and over the same window, run:

- `python -m agent run` with one camera (MQTT on, its own mosquitto on a free port), and
- a plain OpenCV loop, `cv2.VideoCapture(url, cv2.CAP_FFMPEG)` decoding every frame.

Each is measured as a whole process: user + system time of all its threads (and of
children it ran) from /proc/PID/stat. CPU seconds per stream second is the share of one
core one camera costs.
Then the agent runs with 8 cameras on the same URL to measure resident memory.

With `--sub-stream`, a second phase: the clip scaled down to 640x360 (what cameras send as
their sub-stream) is served by a second RTSP server, and the agent runs alone with one
camera twice over the same length of window, without and then with that sub-stream as
the camera's `analysis_url`: what analysing the sub-stream instead of the main stream
changes in the agent's CPU (config `analysis_url`, agent/streams/analysis.py).

    PYTHONPATH=. python3 bench/cpu_per_camera.py [--seconds 60] [--clip-dir DIR] [--sub-stream]

Needs /usr/sbin/mosquitto and Debian's /usr/bin/python3 with GStreamer's gi bindings.
Exits 1 when a target is missed, 2 when the setup fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from bench import harness

# The clip: what a typical 1080p IP camera sends.
WIDTH, HEIGHT, FPS = 1920, 1080, 25
BITRATE_KBPS = 4000
GOP_FRAMES = 2 * FPS  # keyframe every 2 s
# Loop length; a multiple of the GOP so the loop seam is a keyframe.
CLIP_SECONDS = 20
# Bump when the scene or encoder settings change, so a cached clip is not reused.
CLIP_VERSION = 1
# Std. dev. of the per-frame luma noise, in grey levels: a camera's sensor noise by day.
NOISE_SIGMA = 3.0
# The sub-stream (--sub-stream): the same clip as a typical camera's second stream.
SUB_WIDTH, SUB_HEIGHT = 640, 360
SUB_BITRATE_KBPS = 512

ANALYSIS_INTERVAL = "10s"
HEALTH_INTERVAL = "10s"
# Startup (imports, RTSP setup, first keyframe) and the server's initial burst stay
# out of the measured window.
WARMUP_S = 10.0
# Memory is read after the agent has run this long (its caches and queues have filled).
MEMORY_AFTER_S = 30.0
MANY_CAMERAS = 8

TARGET_AGENT_SHARE = 2.0  # % of one core per camera
TARGET_RATIO = 20.0  # times less CPU than OpenCV decoding every frame
TARGET_RSS_MB = 150.0  # with MANY_CAMERAS cameras

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the clip --------------------------------------------------------------------------------


def clip_path(directory: Path) -> Path:
    name = f"street-{WIDTH}x{HEIGHT}-{FPS}fps-{BITRATE_KBPS}k-gop{GOP_FRAMES}-v{CLIP_VERSION}"
    return directory / f"{name}.h264"


def _street(rng: Any) -> tuple[Any, Any, Any]:
    """A static street: sky gradient, buildings with windows, a road, fine texture (Y, U, V)."""
    import cv2
    import numpy as np

    y = np.repeat(np.linspace(175, 110, HEIGHT, dtype=np.float32)[:, None], WIDTH, axis=1)
    u = np.full((HEIGHT // 2, WIDTH // 2), 134, np.float32)
    v = np.full((HEIGHT // 2, WIDTH // 2), 122, np.float32)
    for _ in range(40):
        x0, w = int(rng.integers(0, WIDTH - 200)), int(rng.integers(60, 300))
        h = int(rng.integers(150, 700))
        top = HEIGHT - 200 - h
        y[top : HEIGHT - 200, x0 : x0 + w] = rng.uniform(50, 160)
        u[top // 2 : (HEIGHT - 200) // 2, x0 // 2 : (x0 + w) // 2] = rng.uniform(115, 140)
        v[top // 2 : (HEIGHT - 200) // 2, x0 // 2 : (x0 + w) // 2] = rng.uniform(115, 145)
        for wy in range(top + 20, HEIGHT - 230, 45):
            for wx in range(x0 + 10, x0 + w - 25, 35):
                y[wy : wy + 22, wx : wx + 15] = rng.uniform(30, 220)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (HEIGHT, WIDTH)).astype(np.float32), (0, 0), 2)
    y += texture * 12
    y[HEIGHT - 200 :, :] = 72 + texture[HEIGHT - 200 :, :] * 6  # asphalt
    y[HEIGHT - 105 : HEIGHT - 95, ::120] = 200  # lane marks
    return y, u, v


# Moving objects: (bottom row, speed px/frame, length px, height px, Y, U, V).
_MOVERS = (
    (HEIGHT - 120, 14, 260, 110, 40, 200, 110),
    (HEIGHT - 30, -19, 300, 130, 200, 60, 170),
    (HEIGHT - 205, 3, 40, 170, 90, 140, 140),  # a pedestrian on the pavement
    (HEIGHT - 205, -2, 45, 160, 160, 110, 150),
)


def make_clip(path: Path) -> None:
    """Encode the looping street clip once (about a minute): libx264, no B-frames,
    one slice per frame, SPS/PPS before every keyframe, like a camera sends."""
    import av
    import numpy as np

    rng = np.random.default_rng(7)
    street_y, street_u, street_v = _street(rng)
    partial = path.with_suffix(".partial")
    print(f"encoding the benchmark clip (once) to {path} ...", flush=True)
    with av.open(str(partial), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = BITRATE_KBPS * 1000
        stream.time_base = Fraction(1, FPS)
        stream.options = {
            "preset": "veryfast",
            "g": str(GOP_FRAMES),
            "keyint_min": str(GOP_FRAMES),
            "sc_threshold": "0",  # no extra keyframes at "scene cuts": a fixed GOP
            "bf": "0",
            "maxrate": f"{BITRATE_KBPS}k",
            "bufsize": f"{BITRATE_KBPS}k",
            # Sliced threads split frames into slices; with SPS/PPS repeated per IDR slice
            # the RTP payloader makes FFmpeg clients see each keyframe as two packets.
            "x264-params": "repeat-headers=1:sliced-threads=0",
        }
        for i in range(CLIP_SECONDS * FPS):
            y, u, v = street_y.copy(), street_u.copy(), street_v.copy()
            for bottom, speed, length, height, ly, lu, lv in _MOVERS:
                x = (i * speed) % (WIDTH + length) - length
                a, b = max(x, 0), min(x + length, WIDTH)
                if b > a:
                    y[bottom - height : bottom, a:b] = ly
                    rows = slice((bottom - height) // 2, bottom // 2)
                    u[rows, a // 2 : b // 2] = lu
                    v[rows, a // 2 : b // 2] = lv
            y += rng.normal(0, NOISE_SIGMA, y.shape).astype(np.float32)
            planes = [np.clip(p, 0, 255).astype(np.uint8) for p in (y, u, v)]
            packed = np.concatenate(
                [planes[0], planes[1].reshape(HEIGHT // 4, WIDTH), planes[2].reshape(-1, WIDTH)]
            )
            for packet in stream.encode(av.VideoFrame.from_ndarray(packed, format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    partial.replace(path)


def sub_clip_path(directory: Path) -> Path:
    name = (
        f"street-{SUB_WIDTH}x{SUB_HEIGHT}-{FPS}fps-{SUB_BITRATE_KBPS}k-gop{GOP_FRAMES}"
        f"-v{CLIP_VERSION}"
    )
    return directory / f"{name}.h264"


def make_sub_clip(clip: Path, path: Path) -> None:
    """The clip scaled down, encoded as make_clip does: the same scene, frame for frame."""
    import av

    partial = path.with_suffix(".partial")
    print(f"encoding the sub-stream clip (once) to {path} ...", flush=True)
    with av.open(str(clip)) as source, av.open(str(partial), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SUB_WIDTH, SUB_HEIGHT, "yuv420p"
        stream.bit_rate = SUB_BITRATE_KBPS * 1000
        stream.time_base = Fraction(1, FPS)
        stream.options = {
            "preset": "veryfast",
            "g": str(GOP_FRAMES),
            "keyint_min": str(GOP_FRAMES),
            "sc_threshold": "0",
            "bf": "0",
            "maxrate": f"{SUB_BITRATE_KBPS}k",
            "bufsize": f"{SUB_BITRATE_KBPS}k",
            "x264-params": "repeat-headers=1:sliced-threads=0",
        }
        for i, frame in enumerate(source.decode(video=0)):
            small = frame.reformat(width=SUB_WIDTH, height=SUB_HEIGHT, format="yuv420p")
            # An elementary stream has no timestamps; the encoder needs them rising.
            small.pts, small.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(small):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    partial.replace(path)


# --- processes -------------------------------------------------------------------------------


def agent_config(
    path: Path, *, url: str, broker_port: int, cameras: int, analysis_url: str | None = None
) -> Path:
    sub = {} if analysis_url is None else {"analysis_url": analysis_url}
    return harness.write_agent_config(
        path,
        data_dir=path.parent / f"state-{cameras}{'-sub' if sub else ''}",
        broker_port=broker_port,
        health_interval=HEALTH_INTERVAL,
        cameras=[
            {"id": f"cam{i + 1}", "url": url, "analysis_interval": ANALYSIS_INTERVAL, **sub}
            for i in range(cameras)
        ],
    )


def start_opencv(procs: harness.Processes, url: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(Path(__file__).resolve()), "--opencv-loop", url]
    return procs.start("opencv", command, read_stdout=True)


def opencv_loop(url: str) -> int:
    """The naive monitor: decode every frame. Prints frames read when SIGTERM stops it."""
    import cv2

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    frames = 0
    started = time.monotonic()
    while not stop.is_set() and capture.read()[0]:
        frames += 1
    capture.release()
    print(f"FRAMES {frames} {time.monotonic() - started:.2f}", flush=True)
    return 0


# --- measuring -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system time of the whole process (all threads) and of the children it has
    waited for (cutime + cstime: a helper it runs costs the machine too), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in (...) may hold spaces
    return sum(int(ticks) for ticks in fields[11:15]) / CLK_TCK


@dataclass(frozen=True)
class Memory:
    rss_mb: float  # VmRSS
    peak_mb: float  # VmHWM


def memory(pid: int) -> Memory:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024 / 1e6  # kB -> MB
    return Memory(values["VmRSS"], values["VmHWM"])


class HealthWatch:
    """The agent's retained health messages, to show it saw the stream as the owner would."""

    def __init__(self, port: int) -> None:
        import json

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from contract.topics import Topics

        self.latest: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

        def on_message(_c: Any, _u: Any, message: Any) -> None:
            payload = json.loads(message.payload or b"null")
            if isinstance(payload, dict):
                with self._lock:
                    self.latest[str(payload.get("camera"))] = payload

        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-watch")
        self._client.on_message = on_message
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(Topics("camreg/v1", harness.AGENT_ID).health("+"))
        self._client.loop_start()

    def clear(self) -> None:
        with self._lock:
            self.latest.clear()

    def summary(self) -> str:
        with self._lock:
            latest = dict(sorted(self.latest.items()))
        if not latest:
            return "no health message yet"
        parts = []
        for camera, health in latest.items():
            stream = health.get("stream") or {}
            problems = ",".join(health.get("problems") or []) or "-"
            analysed = stream.get("analysed") or {}
            on = f", analysed {analysed.get('stream')} " if analysed else ""
            if analysed:
                on += f"{analysed.get('width')}x{analysed.get('height')}"
            parts.append(
                f"{camera} {health.get('status')} (problems {problems}, "
                f"{stream.get('fps')} fps, {stream.get('bitrate_kbps')} kbit/s{on})"
            )
        return "; ".join(parts)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@dataclass(frozen=True)
class CpuRun:
    agent_share: float  # % of one core per camera
    opencv_share: float
    opencv_fps: float
    memory_1: Memory
    health: str


def measure_one_camera(
    procs: harness.Processes,
    tmp: Path,
    url: str,
    broker: int,
    seconds: float,
    watch: HealthWatch,
    services: dict[str, subprocess.Popen[bytes]],
) -> CpuRun:
    config = agent_config(tmp / "agent-1.yaml", url=url, broker_port=broker, cameras=1)
    started = time.monotonic()
    agent = harness.start_agent(procs, config, "agent-1")
    opencv = start_opencv(procs, url)
    watched = {**services, "agent-1": agent, "opencv": opencv}
    harness.sleep_until(started + WARMUP_S, procs, watched)
    window_start = time.monotonic()
    agent_cpu, opencv_cpu = cpu_seconds(agent.pid), cpu_seconds(opencv.pid)
    harness.sleep_until(started + MEMORY_AFTER_S, procs, watched)
    memory_1 = memory(agent.pid)
    harness.sleep_until(window_start + seconds, procs, watched)
    window = time.monotonic() - window_start
    agent_cpu = cpu_seconds(agent.pid) - agent_cpu
    opencv_cpu = cpu_seconds(opencv.pid) - opencv_cpu
    health = watch.summary()
    output = procs.stop_reading(opencv).split()  # "FRAMES <count> <seconds>"
    frames, run_s = (output[1], output[2]) if output[:1] == ["FRAMES"] else ("0", "1")
    procs.stop(agent)
    return CpuRun(
        agent_share=100 * agent_cpu / window,
        opencv_share=100 * opencv_cpu / window,
        opencv_fps=int(frames) / float(run_s),
        memory_1=memory_1,
        health=health,
    )


@dataclass(frozen=True)
class ManyRun:
    memory: Memory
    share_per_camera: float
    health: str


def measure_many_cameras(
    procs: harness.Processes,
    tmp: Path,
    url: str,
    broker: int,
    watch: HealthWatch,
    services: dict[str, subprocess.Popen[bytes]],
) -> ManyRun:
    config = agent_config(
        tmp / f"agent-{MANY_CAMERAS}.yaml", url=url, broker_port=broker, cameras=MANY_CAMERAS
    )
    watch.clear()
    name = f"agent-{MANY_CAMERAS}"
    started = time.monotonic()
    agent = harness.start_agent(procs, config, name)
    watched = {**services, name: agent}
    harness.sleep_until(started + WARMUP_S, procs, watched)
    window_start, cpu = time.monotonic(), cpu_seconds(agent.pid)
    harness.sleep_until(started + MEMORY_AFTER_S, procs, watched)
    share = 100 * (cpu_seconds(agent.pid) - cpu) / (time.monotonic() - window_start)
    result = ManyRun(memory(agent.pid), share / MANY_CAMERAS, watch.summary())
    procs.stop(agent)
    return result


@dataclass(frozen=True)
class SubStreamRun:
    without_share: float  # % of one core, the camera analysed on its main stream
    with_share: float  # the same camera with the sub-stream as its analysis_url
    without_health: str
    with_health: str
    main_keyframe_ms: float  # decoding and analysing one keyframe, in this process
    sub_keyframe_ms: float


# Keyframes timed per clip for the per-picture cost (the median is reported).
TIMED_KEYFRAMES = 10


def keyframe_ms(clip: Path) -> float:
    """Median milliseconds to decode one keyframe of the clip as the agent does (a fresh
    single-threaded decoder per picture) and analyse it: the cost the sub-stream cuts."""
    import statistics

    import av

    from agent.quality import diagnose, metrics
    from agent.streams.source import planes_of

    times: list[float] = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if not packet.is_keyframe or packet.size == 0:
                continue
            began = time.perf_counter()
            ctx = av.CodecContext.create(stream.codec_context.name, "r")
            if stream.codec_context.extradata:
                ctx.extradata = stream.codec_context.extradata
            ctx.thread_count = 1
            frames = [*ctx.decode(packet), *ctx.decode(None)]
            prepared = metrics.prepare(planes_of(frames[0]))
            diagnose.diagnose(diagnose.measure(prepared, None, None, None))
            times.append(1000 * (time.perf_counter() - began))
            if len(times) >= TIMED_KEYFRAMES:
                break
    return statistics.median(times)


def measure_sub_stream(
    procs: harness.Processes,
    tmp: Path,
    clips: tuple[Path, Path],
    url: str,
    sub_url: str,
    broker: int,
    seconds: float,
    watch: HealthWatch,
    services: dict[str, subprocess.Popen[bytes]],
) -> SubStreamRun:
    """The agent alone with one camera, without and then with `analysis_url`."""
    shares: list[float] = []
    healths: list[str] = []
    for name, analysis_url in (("agent-main", None), ("agent-sub", sub_url)):
        config = agent_config(
            tmp / f"{name}.yaml", url=url, broker_port=broker, cameras=1, analysis_url=analysis_url
        )
        watch.clear()
        started = time.monotonic()
        agent = harness.start_agent(procs, config, name)
        watched = {**services, name: agent}
        harness.sleep_until(started + WARMUP_S, procs, watched)
        window_start, cpu = time.monotonic(), cpu_seconds(agent.pid)
        harness.sleep_until(window_start + seconds, procs, watched)
        shares.append(100 * (cpu_seconds(agent.pid) - cpu) / (time.monotonic() - window_start))
        healths.append(watch.summary())
        procs.stop(agent)
    main_ms, sub_ms = (keyframe_ms(clip) for clip in clips)
    return SubStreamRun(shares[0], shares[1], healths[0], healths[1], main_ms, sub_ms)


def report_sub_stream(out: IO[str], run: SubStreamRun, seconds: float) -> None:
    w = out.write
    w(
        f"\nsub-stream phase: the agent alone, 1 camera, {seconds:g} s each, analysis every "
        f"{ANALYSIS_INTERVAL}; the sub-stream is the clip at {SUB_WIDTH}x{SUB_HEIGHT}, "
        f"{SUB_BITRATE_KBPS} kbit/s\n"
    )
    w(f"analysed on the 1080p main stream:   {run.without_share:6.2f} % of one core\n")
    w(
        f"analysed on the {SUB_WIDTH}x{SUB_HEIGHT} sub-stream:  {run.with_share:6.2f} %"
        " of one core\n"
    )
    w(
        f"one keyframe decoded and analysed: {run.main_keyframe_ms:.1f} ms at {WIDTH}x{HEIGHT}, "
        f"{run.sub_keyframe_ms:.1f} ms at {SUB_WIDTH}x{SUB_HEIGHT} (median of "
        f"{TIMED_KEYFRAMES})\n"
    )
    w(f"health seen, main: {run.without_health}\n")
    w(f"health seen, sub:  {run.with_health}\n\n")
    w("| 1 camera, recording the 1080p stream | agent CPU |\n|---|---|\n")
    w(
        f"| analysed on the main stream (no `analysis_url`) | {run.without_share:.2f} %"
        " of one core |\n"
    )
    w(
        f"| analysed on a {SUB_WIDTH}x{SUB_HEIGHT} sub-stream (`analysis_url`) "
        f"| {run.with_share:.2f} % of one core |\n"
    )
    w(
        f"| one keyframe decoded and analysed, main / sub | {run.main_keyframe_ms:.1f} ms / "
        f"{run.sub_keyframe_ms:.1f} ms |\n"
    )


# --- report ----------------------------------------------------------------------------------


def report(out: IO[str], clip: Path, seconds: float, one: CpuRun, many: ManyRun, load: str) -> bool:
    import av
    import cv2

    ratio = one.opencv_share / one.agent_share if one.agent_share > 0 else float("inf")
    checks = {
        "agent": one.agent_share <= TARGET_AGENT_SHARE,
        "ratio": ratio >= TARGET_RATIO,
        "rss": many.memory.rss_mb <= TARGET_RSS_MB,
    }
    bitrate = clip.stat().st_size * 8 / CLIP_SECONDS / 1000
    clip_text = (
        f"{WIDTH}x{HEIGHT} {FPS} fps H.264, {bitrate:.0f} kbit/s, keyframe every "
        f"{GOP_FRAMES / FPS:g} s, no B-frames, {CLIP_SECONDS} s loop served over RTSP (TCP)"
    )
    w = out.write
    w("\n")
    w(f"machine: {harness.machine()}\n")
    w(f"load before the run: {load}; PyAV {av.__version__}, OpenCV {cv2.__version__}\n")
    w(f"clip:    {clip_text}\n")
    w(f"window:  {seconds:g} s after {WARMUP_S:g} s warm-up, agent and OpenCV side by side\n\n")
    w(
        f"agent, 1 camera (1 keyframe / {ANALYSIS_INTERVAL}): {one.agent_share:6.2f} % of one core"
        f"   target <= {TARGET_AGENT_SHARE:g} %: {harness.verdict(checks['agent'])}\n"
    )
    w(
        f"OpenCV decode every frame:            {one.opencv_share:6.2f} % of one core"
        f"   ({one.opencv_fps:.1f} frames/s decoded)\n"
    )
    w(
        f"ratio:                                {ratio:6.1f}x less CPU"
        f"        target >= {TARGET_RATIO:g}x: {harness.verdict(checks['ratio'])}\n"
    )
    w(
        f"agent RSS, 1 camera after {MEMORY_AFTER_S:g} s:         {one.memory_1.rss_mb:6.1f} MB"
        f" (peak {one.memory_1.peak_mb:.1f} MB)\n"
    )
    w(
        f"agent RSS, {MANY_CAMERAS} cameras after {MEMORY_AFTER_S:g} s:        "
        f"{many.memory.rss_mb:6.1f} MB (peak {many.memory.peak_mb:.1f} MB)"
        f"   target <= {TARGET_RSS_MB:g} MB: {harness.verdict(checks['rss'])}\n"
    )
    w(
        f"agent with {MANY_CAMERAS} cameras:                 {many.share_per_camera:6.2f} %"
        " of one core per camera\n"
    )
    w(f"health seen on MQTT, 1 camera:  {one.health}\n")
    w(f"health seen on MQTT, {MANY_CAMERAS} cameras: {many.health}\n\n")
    w("| 1080p25 H.264 4 Mbit/s camera over RTSP | measured | target |\n")
    w("|---|---|---|\n")
    w(
        f"| `camera-agent run`, 1 camera, MQTT on | {one.agent_share:.2f} % of one core "
        f"| ≤ {TARGET_AGENT_SHARE:g} % |\n"
    )
    w(f"| OpenCV `VideoCapture`, every frame decoded | {one.opencv_share:.1f} % of one core | |\n")
    w(f"| OpenCV / agent | {ratio:.0f}x | ≥ {TARGET_RATIO:g}x |\n")
    w(
        f"| agent, {MANY_CAMERAS} cameras | {many.share_per_camera:.2f} % of one core per camera "
        "| |\n"
    )
    w(
        f"| agent resident memory, 1 camera | {one.memory_1.rss_mb:.0f} MB "
        f"(peak {one.memory_1.peak_mb:.0f} MB) | |\n"
    )
    w(
        f"| agent resident memory, {MANY_CAMERAS} cameras | {many.memory.rss_mb:.0f} MB "
        f"(peak {many.memory.peak_mb:.0f} MB) | ≤ {TARGET_RSS_MB:g} MB |\n"
    )
    w(f"\nMachine: {harness.machine()}; {seconds:g} s window.\n")
    return all(checks.values())


# --- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    harness.check_system_binaries()
    clip_dir = args.clip_dir or Path(tempfile.gettempdir()) / "camera-agent-bench"
    clip_dir.mkdir(parents=True, exist_ok=True)
    clip = clip_path(clip_dir)
    if not clip.is_file():
        make_clip(clip)
    sub_clip = sub_clip_path(clip_dir)
    if args.sub_stream and not sub_clip.is_file():
        make_sub_clip(clip, sub_clip)
    load = harness.load_average()
    total = WARMUP_S + max(args.seconds, MEMORY_AFTER_S - WARMUP_S) + MEMORY_AFTER_S
    print(f"clip {clip}; measuring for about {total:.0f} s ...", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="cpu-bench-"))
    procs = harness.Processes(tmp)
    watch: HealthWatch | None = None
    try:
        broker = harness.start_broker(procs, tmp)
        url, camera = harness.start_camera(
            procs, harness.free_port(), ["--file", str(clip), "--fps", str(FPS)]
        )
        services = {"rtsp_camera": camera}
        watch = HealthWatch(broker)
        print(f"1 camera and OpenCV on {url} ...", flush=True)
        one = measure_one_camera(procs, tmp, url, broker, args.seconds, watch, services)
        print(f"{MANY_CAMERAS} cameras on {url} ...", flush=True)
        many = measure_many_cameras(procs, tmp, url, broker, watch, services)
        ok = report(sys.stdout, clip, args.seconds, one, many, load)
        if args.sub_stream:
            sub_url, sub_camera = harness.start_camera(
                procs, harness.free_port(), ["--file", str(sub_clip), "--fps", str(FPS)]
            )
            services["rtsp_sub_camera"] = sub_camera
            print(f"1 camera on {url}, without and with the sub-stream {sub_url} ...", flush=True)
            sub_run = measure_sub_stream(
                procs, tmp, (clip, sub_clip), url, sub_url, broker, args.seconds, watch, services
            )
            report_sub_stream(sys.stdout, sub_run, args.seconds)
    except BaseException:
        print(f"logs kept in {tmp}", file=sys.stderr)
        raise
    finally:
        if watch is not None:
            watch.close()
        procs.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="measured window per process (default 60)"
    )
    parser.add_argument(
        "--clip-dir", type=Path, help="where the encoded clip is cached (default: a temp dir)"
    )
    parser.add_argument(
        "--sub-stream",
        action="store_true",
        help="then also measure one camera analysed on a 640x360 sub-stream (analysis_url)",
    )
    parser.add_argument("--opencv-loop", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.opencv_loop:
        return opencv_loop(args.opencv_loop)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return harness.run_main(
        "cpu_per_camera", lambda: run(args), interrupted="all processes stopped"
    )


if __name__ == "__main__":
    sys.exit(main())
