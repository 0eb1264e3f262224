"""A recorder's vendor playback URLs as the tests use them: a recorded H.264 file with a
known wall-clock start, served by GStreamer's RTSP server (playback_rtsp_server.py, run by
Debian's Python) at the Hikvision and Dahua playback paths, its RTCP sender reports
stamped with the recording's time (tests/support/wall_clock_shift.c)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from tests.support import REPO_ROOT, free_port, wait_listening
from tests.support.rtsp import SYSTEM_PYTHON
from tests.support.wall_clock import WallClockShift

SERVER_SCRIPT = REPO_ROOT / "tests" / "support" / "playback_rtsp_server.py"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
Mode = Literal["honest", "ignore-start", "ignore-end"]


class PlaybackRecorder:
    """rtsp://127.0.0.1:<port> plays back `recording`, which began at `start`, by the
    Hikvision and Dahua URL forms (channel 1); Dahua's times are in `timezone`."""

    def __init__(
        self,
        recording: Path,
        start: dt.datetime,
        *,
        mode: Mode = "honest",
        timezone: str = "UTC",
    ) -> None:
        self.recording = recording
        self.start_time = start
        self.mode = mode
        self.timezone = timezone
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory()
        self._proc: subprocess.Popen[str] | None = None
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}"

    def start(self) -> PlaybackRecorder:
        shift = WallClockShift(Path(self._dir.name) / "shift")
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
                "--timezone",
                self.timezone,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, **shift.env},
        )
        wait_listening(self._proc, self.port, "the playback server", READY_TIMEOUT_S, self.output)
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
        self._dir.cleanup()

    def __enter__(self) -> PlaybackRecorder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
