"""A simulated RTSP camera: H.264 from a GStreamer test source, for the demo and the tests.

Run it with Debian's system Python, which is where GStreamer's `gi` bindings live:

    /usr/bin/python3 demo/rtsp_camera.py --port 8554 --path /cam --scene live

`live` looks like a working camera (a moving ball over colour bars, a running clock and
sensor-like noise, so no two frames are the same); `frozen` encodes one picture forever,
like a camera whose image pipeline has hung (decoded frames then differ only by a few
levels of coding noise). `--file PATH` serves a pre-encoded H.264 elementary stream
(Annex B, e.g. `clip.h264`) in a loop at `--fps` without re-encoding it, so serving costs
little CPU (benchmarks use it). `synthetic` renders a CCTV street scene (people, cars,
sensor noise; `--seed` varies it) with the sibling scene package and can spoil it on request:
`--control PATH` creates a named pipe that takes one command a line, a defect of
scene.DEFECTS (applied at clear strength), `frozen`, `moved` (camera turned) or `clear`,
and prints `DEFECT <name>` once the first frame showing it is on its way to the encoder.
`--render-size WxH` renders the synthetic street that small and scales it up to
`--width`x`--height` in the pipeline: a cheap main stream of the same street that a
second camera process serves as a sub-stream (the scene costs ~130 ms a frame at 1080p).
`--user/--password` require RTSP basic auth. Once the server
listens it prints `READY rtsp://127.0.0.1:PORT/PATH` on stdout; SIGTERM or SIGINT stop it
with exit 0. A port already in use exits 2. Only stdlib, gi and, for `synthetic`, numpy and
the scene package are imported, never the agent package.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import stat
import sys
import threading
import time
from types import ModuleType

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

EXIT_USAGE = 2

# Keyframe every 2 s: a new client can start decoding within 2 s, like a typical NVR setting.
KEYFRAME_INTERVAL_S = 2

# Alpha of the snow layer: visible sensor-like noise that still leaves the scene readable.
NOISE_ALPHA = 0.12

AUTH_ROLE = "viewer"

FILE_PARSER = "fileparse"
SYNTHETIC_SOURCE = "synthsrc"
# Control commands besides the defects of scene.DEFECTS.
CONTROL_COMMANDS = ("frozen", "moved", "clear")


def _raw_caps(args: argparse.Namespace, fmt: str) -> str:
    return (
        f"video/x-raw,format={fmt},width={args.width},height={args.height},framerate={args.fps}/1"
    )


def _encoder(args: argparse.Namespace) -> str:
    # threads=1: zerolatency's sliced threads made FFmpeg clients (PyAV) decode some frames
    # with their top slices missing (green); one slice per frame is cheap at these sizes.
    return (
        "videoconvert ! video/x-raw,format=I420 ! "
        f"x264enc threads=1 tune=zerolatency speed-preset=ultrafast bitrate={args.bitrate_kbps} "
        f"key-int-max={KEYFRAME_INTERVAL_S * args.fps} ! "
        "video/x-h264,profile=constrained-baseline ! "
        # config-interval=-1: SPS/PPS before every keyframe, so late joiners can decode.
        "rtph264pay name=pay0 pt=96 config-interval=-1"
    )


def _file_source(args: argparse.Namespace) -> str:
    """Loop an Annex B file; h264parse splits it into frames and gives them DTS at --fps."""
    location = args.file.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'multifilesrc location="{location}" loop=true '
        f'caps="video/x-h264,stream-format=byte-stream,framerate={args.fps}/1" ! '
        f"h264parse name={FILE_PARSER} ! "
        # config-interval=-1: SPS/PPS before every keyframe, so late joiners can decode.
        "rtph264pay name=pay0 pt=96 config-interval=-1"
    )


def _stamp_pts(media: GstRtspServer.RTSPMedia) -> None:
    """Copy each frame's DTS to its PTS after the parser: an elementary stream has no PTS,
    h264parse only interpolates DTS, and rtph264pay needs PTS for the RTP timestamps
    (without it every packet carries time 0 and clients see no frame rate). Right for
    streams without B-frames, as cameras send; h264timestamper cannot help, it needs PTS."""

    def probe(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buffer = info.get_buffer()
        if buffer is not None and buffer.pts == Gst.CLOCK_TIME_NONE:
            buffer.pts = buffer.dts
        return Gst.PadProbeReturn.OK

    parser = media.get_element().get_by_name(FILE_PARSER)
    parser.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)


def launch_line(args: argparse.Namespace) -> str:
    """The gst-launch description of the camera pipeline for the chosen scene or file."""
    if args.file is not None:
        return f"( {_file_source(args)} )"
    if args.scene == "synthetic":
        # Frames come from SyntheticCamera, stamped with the pipeline clock as pushed (live);
        # a full queue drops the oldest, so a slow encoder never delays the picture.
        width, height = _render_size(args)
        rendered = f"video/x-raw,format=RGB,width={width},height={height},framerate={args.fps}/1"
        source = (
            f"appsrc name={SYNTHETIC_SOURCE} is-live=true format=time do-timestamp=true "
            f"max-buffers=2 leaky-type=downstream block=false caps={rendered} ! "
        )
        if (width, height) != (args.width, args.height):
            source += f"videoscale ! {_raw_caps(args, 'RGB')} ! "
        return f"( {source}{_encoder(args)} )"
    if args.scene == "frozen":
        # One picture frozen by imagefreeze: smpte itself has a noise patch (PLUGE corner).
        source = (
            f"videotestsrc num-buffers=1 pattern=smpte ! {_raw_caps(args, 'I420')} ! "
            f"imagefreeze is-live=true ! {_raw_caps(args, 'I420')} ! "
        )
        return f"( {source}{_encoder(args)} )"
    mix = (
        "compositor name=mix background=black "
        f"sink_2::alpha={NOISE_ALPHA} ! "
        'timeoverlay halignment=left valignment=top font-desc="Sans 24" ! '
    )
    bars = f"videotestsrc is-live=true pattern=smpte ! {_raw_caps(args, 'AYUV')} ! mix.sink_0 "
    ball = (
        "videotestsrc is-live=true pattern=ball motion=sweep background-color=0x00000000 ! "
        f"{_raw_caps(args, 'AYUV')} ! mix.sink_1 "
    )
    snow = f"videotestsrc is-live=true pattern=snow ! {_raw_caps(args, 'AYUV')} ! mix.sink_2 "
    return f"( {mix}{_encoder(args)} {bars}{ball}{snow})"


def _render_size(args: argparse.Namespace) -> tuple[int, int]:
    """The size the synthetic street is rendered at: --render-size, else the stream's."""
    if args.render_size is None:
        return args.width, args.height
    width, _, height = args.render_size.partition("x")
    return int(width), int(height)


def _scene_module() -> ModuleType:
    """The scene package beside this file, imported without the agent package (numpy only)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    # Top-level `scene`, found through sys.path: only the synthetic camera needs it (and numpy).
    return importlib.import_module("scene")


class SyntheticCamera:
    """Renders the synthetic street into the appsrc of each media, spoilt on command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._scene_mod = _scene_module()
        width, height = _render_size(args)
        self._scene = self._scene_mod.Scene("street", args.seed, width, height)
        self._fps = args.fps
        self._lock = threading.Lock()
        self._defect: str | None = None  # a key of scene.DEFECTS
        self._frozen = False
        self._pan = 0.0
        self._held = None  # the picture a frozen camera repeats
        self._announce: str | None = None  # command to print once a frame shows it
        self._feeding = 0  # media being fed right now
        self._start = time.monotonic()

    def command(self, line: str) -> None:
        name = line.strip()
        if not name:
            return
        if name not in self._scene_mod.DEFECTS and name not in CONTROL_COMMANDS:
            print(f"rtsp_camera: unknown control command {name!r}", file=sys.stderr, flush=True)
            return
        with self._lock:
            if name == "clear":
                self._defect, self._frozen, self._pan, self._held = None, False, 0.0, None
            elif name == "frozen":
                self._frozen = True
            elif name == "moved":
                self._pan = self._scene_mod.SCENE_CHANGE_PAN["clear"]
            else:
                self._defect = name
            # With nobody watching there is no frame to wait for: it applies from the next.
            watched = self._feeding > 0
            self._announce = name if watched else None
        if not watched:
            print(f"DEFECT {name}", flush=True)

    def listen(self, path: str) -> None:
        """Create the named pipe and read commands from it in a daemon thread."""
        if os.path.exists(path):
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                raise SystemExit(f"rtsp_camera: --control {path} exists and is not a FIFO")
        else:
            os.mkfifo(path)

        def read() -> None:
            while True:
                # Blocks until a writer opens the pipe; EOF when it closes: open again.
                with open(path, encoding="utf-8") as pipe:
                    for line in pipe:
                        self.command(line)

        threading.Thread(target=read, name="control", daemon=True).start()

    def frame(self, t: float) -> bytes:
        """The picture at `t` seconds with the current defects applied, as packed RGB."""
        with self._lock:
            defect, frozen, pan, held = self._defect, self._frozen, self._pan, self._held
        if frozen and held is not None:
            picture = held
        else:
            picture = self._scene.render(t, pan=pan)
            if defect is not None:
                rng = self._scene_mod.np.random.default_rng([self._scene.seed, round(t * 1000)])
                strength = self._scene_mod.STRENGTHS["clear"][defect]
                picture = self._scene_mod.DEFECTS[defect](picture, strength, rng)
            if frozen:
                with self._lock:
                    self._held = picture
        return bytes(picture.data)

    def _announced(self) -> None:
        with self._lock:
            name, self._announce = self._announce, None
        if name is not None:
            print(f"DEFECT {name}", flush=True)

    def attach(self, media: GstRtspServer.RTSPMedia) -> None:
        """Feed this media's appsrc from a thread at the frame rate until the media ends."""
        source = media.get_element().get_by_name(SYNTHETIC_SOURCE)
        stop = threading.Event()
        media.connect("unprepared", lambda _media: stop.set())
        threading.Thread(target=self._feed, args=(source, stop), name="render", daemon=True).start()

    def _feed(self, source: Gst.Element, stop: threading.Event) -> None:
        with self._lock:
            self._feeding += 1
        try:
            self._pump(source, stop)
        finally:
            with self._lock:
                self._feeding -= 1
            self._announced()

    def _pump(self, source: Gst.Element, stop: threading.Event) -> None:
        period = 1.0 / self._fps
        next_at = time.monotonic()
        while not stop.is_set():
            t = time.monotonic() - self._start
            data = self.frame(t)
            result = source.emit("push-buffer", Gst.Buffer.new_wrapped(data))
            if result not in (Gst.FlowReturn.OK, Gst.FlowReturn.NOT_LINKED):
                if result == Gst.FlowReturn.FLUSHING and not stop.is_set():
                    stop.wait(period)  # media still starting or pausing
                    continue
                return
            self._announced()
            # Keep to the frame rate; when rendering falls behind, skip rather than queue.
            next_at = max(next_at + period, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _enable_auth(
    server: GstRtspServer.RTSPServer,
    factory: GstRtspServer.RTSPMediaFactory,
    user: str,
    password: str,
) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken.new()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, AUTH_ROLE)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    role, _ = Gst.Structure.from_string(
        f"{AUTH_ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
    )
    factory.add_role_from_structure(role)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--bitrate-kbps", type=int, default=2000)
    parser.add_argument("--scene", choices=("live", "frozen", "synthetic"), default="live")
    parser.add_argument("--seed", type=int, default=1, help="which synthetic street to render")
    parser.add_argument(
        "--control", help="with --scene synthetic: named pipe (created) taking defect commands"
    )
    parser.add_argument(
        "--file", help="serve this H.264 Annex B file (.h264) in a loop, at --fps, not --scene"
    )
    parser.add_argument(
        "--render-size",
        help="with --scene synthetic: render at WxH and scale to --width x --height",
    )
    parser.add_argument("--user", help="require RTSP basic auth with this user")
    parser.add_argument("--password", help="password for --user")
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        args.path = "/" + args.path
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    if args.file is not None and not os.path.isfile(args.file):
        parser.error(f"--file {args.file}: no such file")
    if args.control is not None and args.scene != "synthetic":
        parser.error("--control needs --scene synthetic")
    if args.render_size is not None:
        if args.scene != "synthetic":
            parser.error("--render-size needs --scene synthetic")
        width, x, height = args.render_size.partition("x")
        if not (x and width.isdigit() and height.isdigit() and int(width) and int(height)):
            parser.error(f"--render-size {args.render_size}: give WIDTHxHEIGHT, e.g. 640x360")
    for name in ("port", "width", "height", "fps", "bitrate_kbps"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Gst.init(None)

    # GstRtspServer binds with SO_REUSEADDR and only reports a clash as attach() == 0,
    # so check first to give a clear message.
    if not _port_free(args.address, args.port):
        print(f"rtsp_camera: port {args.port} on {args.address} is already in use", file=sys.stderr)
        return EXIT_USAGE

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args))
    factory.set_shared(True)
    if args.file is not None:
        factory.connect("media-configure", lambda _factory, media: _stamp_pts(media))
    camera = None
    if args.scene == "synthetic" and args.file is None:
        camera = SyntheticCamera(args)
        factory.connect("media-configure", lambda _factory, media: camera.attach(media))
        if args.control is not None:
            camera.listen(args.control)
    if args.user is not None:
        _enable_auth(server, factory, args.user, args.password)
    server.get_mount_points().add_factory(args.path, factory)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"rtsp_camera: cannot listen on {args.address}:{args.port}", file=sys.stderr)
        return EXIT_USAGE

    def _quit() -> bool:
        loop.quit()
        return False  # GLib.SOURCE_REMOVE: one signal is enough

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, _quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, _quit)

    host = "127.0.0.1" if args.address == "0.0.0.0" else args.address
    print(f"READY rtsp://{host}:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
