"""A recorder's replay as the tests use it: a recorded H.264 file with a known wall-clock
start, served by GStreamer's ONVIF RTSP server (replay_rtsp_server.py, run by Debian's
Python) at the clock times it covers."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from tests.support import REPO_ROOT, free_port, wait_listening
from tests.support.rtsp import SYSTEM_PYTHON

SERVER_SCRIPT = REPO_ROOT / "tests" / "support" / "replay_rtsp_server.py"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
Mode = Literal["honest", "wrong-start", "ignore-end"]


def record_h264(path: Path, seconds: int, fps: int = 10) -> Path:
    """A real H.264 recording (Matroska, 320x240, a keyframe every second) made by
    GStreamer's x264enc: what a recorder holds for one camera."""
    subprocess.run(
        [
            "gst-launch-1.0",
            "-q",
            "videotestsrc",
            f"num-buffers={seconds * fps}",
            "pattern=ball",
            "!",
            f"video/x-raw,framerate={fps}/1,width=320,height=240",
            "!",
            "x264enc",
            f"key-int-max={fps}",
            "speed-preset=ultrafast",
            "tune=zerolatency",
            "!",
            "h264parse",
            "!",
            "matroskamux",
            "!",
            "filesink",
            f"location={path}",
        ],
        check=True,
        timeout=60,
    )
    return path


class ReplayRecorder:
    """rtsp://127.0.0.1:<port>/recording replays `recording`, which began at `start`."""

    def __init__(
        self,
        recording: Path,
        start: dt.datetime,
        *,
        mode: Mode = "honest",
        user: str | None = None,
        password: str = "",
    ) -> None:
        self.recording = recording
        self.user = user
        self.password = password
        self.start_time = start
        self.mode = mode
        self.port = free_port()
        self._proc: subprocess.Popen[str] | None = None
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/recording"

    def start(self) -> ReplayRecorder:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        self._proc = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(SERVER_SCRIPT),
                "--file",
                str(self.recording),
                "--start",
                str(self.start_time.timestamp()),
                "--port",
                str(self.port),
                "--mode",
                self.mode,
                *(["--user", self.user, "--password", self.password] if self.user else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        wait_listening(self._proc, self.port, "the replay server", READY_TIMEOUT_S, self.output)
        return self

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        self._log.close()

    def __enter__(self) -> ReplayRecorder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
