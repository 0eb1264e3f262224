"""The simulated RTSP camera (demo/rtsp_camera.py) as a process the tests control."""

from __future__ import annotations

import errno
import os
import selectors
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Literal

import pytest

from tests.support import REPO_ROOT, free_port, wait_port_closed

# GStreamer's gi bindings exist only for Debian's Python, not for the test interpreter.
SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA_SCRIPT = REPO_ROOT / "demo" / "rtsp_camera.py"
# Building the pipeline (gi import, plugin registry) takes ~0.5 s; a cold registry longer.
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0

Scene = Literal["live", "frozen", "synthetic"]
# How long inject() waits for the camera to confirm a command with `DEFECT <name>`.
INJECT_TIMEOUT_S = 10.0


class RtspCamera:
    """One simulated camera on rtsp://127.0.0.1:<free port>/<path>; restarts keep the port."""

    def __init__(
        self,
        *,
        scene: Scene = "live",
        fps: int = 15,
        width: int = 640,
        height: int = 360,
        bitrate_kbps: int = 1000,
        path: str = "/cam",
        user: str | None = None,
        password: str | None = None,
        port: int | None = None,
        seed: int = 1,
        render_size: tuple[int, int] | None = None,
        netns: str | None = None,
        address: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> None:
        if not Path(SYSTEM_PYTHON).is_file():
            pytest.fail(
                f"{SYSTEM_PYTHON} is missing; the RTSP camera needs Debian's Python "
                "with python3-gi and gir1.2-gst-rtsp-server-1.0",
                pytrace=False,
            )
        self.scene = scene
        self.fps = fps
        self.width = width
        self.height = height
        self.bitrate_kbps = bitrate_kbps
        self.path = path if path.startswith("/") else "/" + path
        self.user = user
        self.password = password
        self._port = port if port is not None else free_port()
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self.seed = seed
        # synthetic only: render the street this small, scaled up to width x height.
        self.render_size = render_size
        # Run inside this network namespace (tests/support/netns.py), listening on `address`:
        # a camera on the test LAN beside the test ONVIF device.
        self.netns = netns
        self.address = address
        # Added to the camera's environment: tests/support/wall_clock.py's shifter sets
        # the camera's wall clock, which its RTCP sender reports carry.
        self.env = env or {}
        # The synthetic scene takes defect commands through a named pipe the camera creates.
        self._control_dir: tempfile.TemporaryDirectory[str] | None = None
        self._control: Path | None = None
        if scene == "synthetic":
            self._control_dir = tempfile.TemporaryDirectory(prefix="rtsp-camera-")
            self._control = Path(self._control_dir.name) / "control"

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The stream URL, with credentials if the camera requires them."""
        auth = f"{self.user}:{self.password}@" if self.user is not None else ""
        return f"rtsp://{auth}{self.address}:{self._port}{self.path}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _command(self) -> list[str]:
        command = [
            *(("ip", "netns", "exec", self.netns) if self.netns is not None else ()),
            SYSTEM_PYTHON,
            str(CAMERA_SCRIPT),
            "--port",
            str(self._port),
            "--path",
            self.path,
            "--scene",
            self.scene,
            "--fps",
            str(self.fps),
            "--width",
            str(self.width),
            "--height",
            str(self.height),
            "--bitrate-kbps",
            str(self.bitrate_kbps),
            "--address",
            self.address,
        ]
        if self.user is not None and self.password is not None:
            command += ["--user", self.user, "--password", self.password]
        if self._control is not None:
            command += ["--seed", str(self.seed), "--control", str(self._control)]
        if self.render_size is not None:
            command += ["--render-size", "{}x{}".format(*self.render_size)]
        return command

    def _write_control(self, text: str) -> None:
        assert self._control is not None
        # Non-blocking open: a camera that died must fail the test, not hang it. ENXIO means
        # no reader right now (the camera reopens the pipe after each writer), so retry.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while True:
            try:
                fd = os.open(self._control, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    self._fail(f"cannot write to the camera's control pipe: {exc}")
                time.sleep(0.05)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def inject(self, name: str) -> None:
        """Spoil the synthetic picture: a defect of scene.DEFECTS, `frozen`, `moved` or `clear`.

        Returns once the camera printed `DEFECT <name>`, i.e. frames showing it are being
        encoded (if a client is watching; otherwise from the next client on).
        """
        if self._control is None or self._proc is None or self._proc.stdout is None:
            raise RuntimeError("inject() needs a running camera with scene='synthetic'")
        self._write_control(name + "\n")
        deadline = time.monotonic() + INJECT_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                line = self._proc.stdout.readline()
                if line.strip() == f"DEFECT {name}":
                    return
                if line == "":
                    self._fail(f"rtsp_camera exited while applying {name!r}")
        self._fail(f"rtsp_camera did not confirm {name!r} within {INJECT_TIMEOUT_S}s")

    def start(self) -> None:
        """Start the camera and return once it printed READY (it then accepts clients)."""
        if self.running:
            return
        if self._stderr is not None:
            self._stderr.close()
        # Kept open across the process's life and closed in close(): no `with` fits.
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115
        env = dict(os.environ)
        # The pyenv test interpreter's variables must not leak into Debian's Python.
        for var in ("PYTHONHOME", "PYTHONPATH"):
            env.pop(var, None)
        env.update(self.env)
        proc = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self._proc = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                line = proc.stdout.readline()
                if line.startswith("READY "):
                    return
                if line == "":  # EOF: the process is gone
                    proc.wait(STOP_TIMEOUT_S)
                    self._fail(f"rtsp_camera exited with {proc.returncode} before READY")
        self.kill()
        self._fail(f"rtsp_camera printed no READY within {READY_TIMEOUT_S}s")

    def stderr(self) -> str:
        """What the camera process wrote to stderr since its last start."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()

    def _fail(self, message: str) -> None:
        pytest.fail(
            f"{message}\ncommand: {' '.join(self._command())}\n--- stderr ---\n{self.stderr()}",
            pytrace=False,
        )

    def stop(self) -> None:
        """SIGTERM and wait; afterwards the port refuses connections."""
        self._end(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: the camera hangs with its connections open, sending nothing."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the camera disappears mid-stream."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        wait_port_closed(self._port)

    def close(self) -> None:
        self.stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._control_dir is not None:
            self._control_dir.cleanup()
            self._control_dir = None

    def __enter__(self) -> RtspCamera:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RtspCamera({self.url}, scene={self.scene}, running={self.running})"
