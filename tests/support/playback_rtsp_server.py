"""A recorder's vendor playback URLs (Hikvision /Streaming/tracks/<ch>01, Dahua
/cam/playback) served by GStreamer's RTSP server from one recorded H.264 file (Matroska)
whose wall-clock start is known.

Run by Debian's Python (python3-gi, gir1.2-gst-rtsp-server-1.0), not the test interpreter:
`/usr/bin/python3 tests/support/playback_rtsp_server.py --file REC.mkv --start UNIX --port N`.
Prints `READY <port>` once it serves.

GStreamer's mount points match the whole path with its query, so `?starttime=...` would be
404: MountPoints.do_make_path keeps only the path. The factory reads starttime/endtime from
the URL's query (Hikvision's UTC form or Dahua's local form, `--timezone`) and serves the
file from that offset: a seek on the demuxer, once the media is prepared and again for
the client's PLAY (a probe on the payloader turns its npt seek into one to the offset), to
the asked end. The first buffer after such a seek does not reach the client, so it seeks a
second early: the window's keyframe arrives, and the agent skips what comes before it.

Its RTCP sender reports carry the recording's time, as a recorder's playback does: run
under tests/support/wall_clock_shift.c (LD_PRELOAD, WALL_CLOCK_SHIFT_FILE), it sets its
own wall clock to the served footage's time at each seek (stamp_clock).

`--mode` makes it hostile: `ignore-start` serves the file from its beginning whatever the
URL asks (and its RTCP says so); `ignore-end` plays to the file's end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import struct
import time
import zoneinfo
from urllib.parse import parse_qs

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def stamp_clock(offset: float) -> None:
    """Under tests/support/wall_clock_shift.c (LD_PRELOAD): set this process's wall clock
    to the recording's time being served, so RTCP sender reports carry it."""
    path = os.environ.get("WALL_CLOCK_SHIFT_FILE")
    if path is None:
        return
    with open(path, "r+b") as shift_file:
        current = struct.unpack("q", shift_file.read(8))[0] / 1e9
        real_now = time.time() - current
        shift_file.seek(0)
        shift_file.write(struct.pack("q", round((FILE_START[0] + offset - real_now) * 1e9)))


FILE_START = [0.0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True)
    parser.add_argument("--start", type=float, required=True, help="the file's start, Unix s")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timezone", default="UTC", help="Dahua's local time zone")
    parser.add_argument(
        "--mode", choices=("honest", "ignore-start", "ignore-end"), default="honest"
    )
    args = parser.parse_args()
    Gst.init(None)
    file_start = dt.datetime.fromtimestamp(args.start, dt.UTC)
    FILE_START[0] = args.start
    zone = zoneinfo.ZoneInfo(args.timezone)

    def parse(value: str) -> dt.datetime:
        if "t" in value:  # Hikvision: 20261130t080010z, UTC
            return dt.datetime.strptime(value, "%Y%m%dt%H%M%Sz").replace(tzinfo=dt.UTC)
        return dt.datetime.strptime(value, "%Y_%m_%d_%H_%M_%S").replace(tzinfo=zone)

    class Mounts(GstRtspServer.RTSPMountPoints):  # type: ignore[misc]
        def do_make_path(self, url: GstRtspServer.RTSPUrl) -> str:
            return str(url.abspath)

    class Factory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
        def do_create_element(self, url: GstRtspServer.RTSPUrl) -> Gst.Element:
            query = parse_qs(url.query or "")
            begin = parse(query["starttime"][0])
            finish = parse(query["endtime"][0])
            offset = max(0.0, (begin - file_start).total_seconds())
            length = (finish - begin).total_seconds()
            if args.mode == "ignore-start":
                offset = 0.0
            if args.mode == "ignore-end":
                length = 1e6
            bin_ = Gst.parse_bin_from_description(
                f"filesrc location={args.file} ! matroskademux name=d ! h264parse"
                " ! rtph264pay name=pay0 pt=96",
                False,
            )
            demux = bin_.get_by_name("d")

            def on_seek(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
                # The client's PLAY seeks to npt 0: on the demuxer that is the asked offset,
                # from the keyframe at or before it, to the asked end.
                event = info.get_event()
                if event.type != Gst.EventType.SEEK:
                    return Gst.PadProbeReturn.OK
                seek_to(event.parse_seek()[4])
                return Gst.PadProbeReturn.DROP

            def seek_to(start: int) -> None:
                stamp_clock(offset)
                demux.seek(
                    1.0,
                    Gst.Format.TIME,
                    Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT | Gst.SeekFlags.SNAP_BEFORE,
                    Gst.SeekType.SET,
                    # A second early: the first buffer after this server's seek never
                    # reaches the client, so it starts a keyframe early, and the window's
                    # own keyframe arrives (the agent skips what comes before it).
                    int(max(0.0, offset - 1.0 + max(0, start) / Gst.SECOND) * Gst.SECOND),
                    Gst.SeekType.SET,
                    int((offset + length) * Gst.SECOND),
                )

            self.seeks[url.query] = seek_to  # the first seek, once the media is prepared

            pay = bin_.get_by_name("pay0")
            pay.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_UPSTREAM, on_seek)
            return bin_

    factory = Factory()
    factory.seeks = {}
    factory.set_shared(False)

    def configure(_factory: Factory, media: GstRtspServer.RTSPMedia) -> None:
        # The client's PLAY may not seek (npt 0 is where the media is): seek once here.
        seek_to = factory.seeks.pop(next(iter(factory.seeks)))
        media.connect("prepared", lambda _media: seek_to(0))

    factory.connect("media-configure", configure)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = Mounts()
    server.set_mount_points(mounts)
    mounts.add_factory("/Streaming/tracks/101", factory)
    mounts.add_factory("/cam/playback", factory)
    server.attach(None)
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
