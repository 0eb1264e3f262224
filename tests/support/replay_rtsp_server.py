"""A recorder's ONVIF replay service: GStreamer's RTSP server with ONVIF support
(GstRtspServer.RTSPOnvifServer and RTSPOnvifMediaFactory with replay support) serving one
recorded H.264 file (Matroska) at the clock times it was recorded.

Run by Debian's Python (python3-gi, gir1.2-gst-rtsp-server-1.0), not the test interpreter:
`/usr/bin/python3 tests/support/replay_rtsp_server.py --file REC.mkv --start UNIX --port N`.
Prints `READY <port>` once it serves rtsp://127.0.0.1:N/recording.

What GStreamer does with `Range: clock=...`: the client checks `Require: onvif-replay`
(551 without replay support), and the media converts the range to normal play time by its
`convert_range` method, which plain media do only for npt. This media's method maps the
file's play time to wall-clock time from the file's start (`--start`), both ways: into npt
for the seek, back into clock for the PLAY reply's Range. `Rate-Control: no` makes it send
as fast as it reads.

`--mode` makes it hostile for the attack tests: `wrong-start` claims in its PLAY reply that
the replay starts an hour later than asked; `ignore-end` plays past the asked end, to the
end of the file.
"""

from __future__ import annotations

import argparse
import datetime as dt

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

T = GstRtsp.RTSPTimeType
U = GstRtsp.RTSPRangeUnit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True)
    parser.add_argument("--start", type=float, required=True, help="the file's start, Unix s")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("honest", "wrong-start", "ignore-end"), default="honest")
    parser.add_argument("--user", help="require RTSP digest authentication with this user")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    Gst.init(None)
    start = dt.datetime.fromtimestamp(args.start, dt.UTC)
    claim_shift = dt.timedelta(hours=1) if args.mode == "wrong-start" else dt.timedelta(0)

    def to_npt(t: GstRtsp.RTSPTime, t2: GstRtsp.RTSPTime2) -> None:
        if t.type != T.UTC:
            return
        day = dt.datetime(t2.year, t2.month, t2.day, tzinfo=dt.UTC)
        t.type = T.SECONDS
        t.seconds = max(0.0, (day - start).total_seconds() + t.seconds)

    def to_clock(t: GstRtsp.RTSPTime, t2: GstRtsp.RTSPTime2) -> None:
        if t.type != T.SECONDS:
            return
        at = start + dt.timedelta(seconds=t.seconds) + claim_shift
        day = dt.datetime(at.year, at.month, at.day, tzinfo=dt.UTC)
        t.type = T.UTC
        t2.year, t2.month, t2.day = at.year, at.month, at.day
        t.seconds = (at - day).total_seconds()

    class Media(GstRtspServer.RTSPOnvifMedia):  # type: ignore[misc]
        def do_convert_range(self, rng: GstRtsp.RTSPTimeRange, unit: GstRtsp.RTSPRangeUnit) -> bool:
            if rng.unit == unit:
                return True
            if rng.unit == U.CLOCK and unit == U.NPT:
                to_npt(rng.min, rng.min2)
                if args.mode == "ignore-end":
                    rng.max.type = T.END
                else:
                    to_npt(rng.max, rng.max2)
                rng.unit = unit
                return True
            if rng.unit == U.NPT and unit == U.CLOCK:
                to_clock(rng.min, rng.min2)
                to_clock(rng.max, rng.max2)
                rng.unit = unit
                return True
            return False

    class Factory(GstRtspServer.RTSPOnvifMediaFactory):  # type: ignore[misc]
        def do_create_element(self, url: object) -> Gst.Element:
            return Gst.parse_bin_from_description(
                f"filesrc location={args.file} ! matroskademux ! h264parse"
                " ! rtph264pay name=pay0 pt=96",
                False,
            )

    server = GstRtspServer.RTSPOnvifServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = Factory()
    factory.set_shared(False)
    factory.set_replay_support(True)
    factory.set_media_gtype(Media)
    if args.user:
        # Digest, as recorders ask for it (GstRtspServer.RTSPAuth, since GStreamer 1.16).
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken.new()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_digest(args.user, args.password, token)
        server.set_auth(auth)
        role, _ = Gst.Structure.from_string(
            "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
        factory.add_role_from_structure(role)
    server.get_mount_points().add_factory("/recording", factory)
    server.attach(None)
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
