"""A simulated RTSP camera: H.264 from a GStreamer test source, for the demo and the tests.

Run it with Debian's system Python, which is where GStreamer's `gi` bindings live:

    /usr/bin/python3 agent/demo/rtsp_camera.py --port 8554 --path /cam --scene live

`live` looks like a working camera (a moving ball over colour bars, a running clock and
sensor-like noise, so no two frames are the same); `frozen` encodes one picture forever,
like a camera whose image pipeline has hung (decoded frames then differ only by a few
levels of coding noise). `--user/--password` require RTSP basic auth. Once the server
listens it prints `READY rtsp://127.0.0.1:PORT/PATH` on stdout; SIGTERM or SIGINT stop it
with exit 0. A port already in use exits 2. Only stdlib and gi are imported, never the agent.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys

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


def launch_line(args: argparse.Namespace) -> str:
    """The gst-launch description of the camera pipeline for the chosen scene."""
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
    parser.add_argument("--scene", choices=("live", "frozen"), default="live")
    parser.add_argument("--user", help="require RTSP basic auth with this user")
    parser.add_argument("--password", help="password for --user")
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        args.path = "/" + args.path
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
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
