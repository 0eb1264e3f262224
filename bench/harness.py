"""What the benchmarks share: children started and stopped with their logs kept, a private
mosquitto on a free port, the demo's RTSP camera, the agent, the machine line and verdict of
a report, and a main that turns SIGTERM, setup failures and Ctrl-C into exit codes.

The scripts run as `PYTHONPATH=. python3 bench/X.py` and import it as `bench.harness`.
"""

from __future__ import annotations

import os
import platform
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CAMERA_SCRIPT = REPO_ROOT / "demo" / "rtsp_camera.py"
# GStreamer's gi bindings exist only for Debian's Python.
SYSTEM_PYTHON = "/usr/bin/python3"
MOSQUITTO = "/usr/sbin/mosquitto"
AGENT_ID = "bench"

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# How much of a dead child's log an error message quotes: its end, where the reason is.
LOG_TAIL_CHARS = 3000


class SetupError(Exception):
    """The benchmark cannot run here (a service did not start, no space, a binary missing);
    the message says which and why."""


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Processes:
    """Every child the benchmark starts; `close` ends them all (SIGTERM, then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        command: list[str],
        *,
        env: dict[str, str] | None = None,
        read_stdout: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start a child; its stderr (and stdout, unless we read it) go to NAME.log."""
        with (self._log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if read_stdout else log,
                stderr=log,
                env=env,
            )
        self._procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self._log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, SIGKILL if it lingers; returns the exit code (negative: killed)."""
        self._end(proc, timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def stop_reading(self, proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> str:
        """Like `stop`; returns what it wrote to stdout since we last read."""
        self._end(proc, timeout)
        if proc.stdout is None:
            return ""
        with proc.stdout:
            return proc.stdout.read().decode(errors="replace")

    def close(self) -> None:
        for _name, proc in reversed(self._procs):
            self.stop(proc)

    def _end(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = [(n, p) for n, p in self._procs if p is not proc]


def wait_for_line(proc: subprocess.Popen[bytes], prefix: str, timeout: float) -> str | None:
    """The first stdout line starting with prefix, or None if the process ends or times out."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(remaining):
                continue
            line = proc.stdout.readline().decode(errors="replace")
            if line.startswith(prefix):
                return line.strip()
            if not line:
                return None
    return None


def alive(procs: Processes, name: str, proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        log = procs.log(name)[-LOG_TAIL_CHARS:]
        raise SetupError(f"{name} exited with {proc.returncode}:\n{log}")


def sleep_until(
    moment: float, procs: Processes, watched: dict[str, subprocess.Popen[bytes]]
) -> None:
    """Sleep until `moment` (time.monotonic), failing early if a watched process has died."""
    while (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        for name, proc in watched.items():
            alive(procs, name, proc)


# --- the demo's services ---------------------------------------------------------------------


def check_system_binaries() -> None:
    """mosquitto and Debian's Python (for the camera's GStreamer) are installed."""
    for binary in (MOSQUITTO, SYSTEM_PYTHON):
        if not Path(binary).is_file():
            raise SetupError(f"{binary} is missing (see demo/install-system-packages.sh)")


def start_broker(procs: Processes, directory: Path) -> int:
    """A private mosquitto on a free port, its config and log in `directory`; returns the port."""
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"log_dest file {directory / 'mosquitto-broker.log'}\n"
    )
    proc = procs.start("mosquitto", [MOSQUITTO, "-c", str(config)])
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_accepts(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SetupError(f"mosquitto did not start on port {port}:\n{procs.log('mosquitto')}")
        time.sleep(0.05)
    return port


def start_camera(
    procs: Processes, port: int, options: list[str]
) -> tuple[str, subprocess.Popen[bytes]]:
    """demo/rtsp_camera.py serving /cam on `port` with `options`; returns its URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    command = [SYSTEM_PYTHON, str(CAMERA_SCRIPT), "--port", str(port), "--path", "/cam", *options]
    proc = procs.start("rtsp_camera", command, env=env, read_stdout=True)
    ready = wait_for_line(proc, "READY ", START_TIMEOUT_S)
    if ready is None:
        log = procs.log("rtsp_camera")[-LOG_TAIL_CHARS:]
        raise SetupError(f"rtsp_camera did not get READY:\n{log}")
    return ready.split(" ", 1)[1], proc


def write_agent_config(
    path: Path,
    *,
    data_dir: Path,
    broker_port: int,
    health_interval: str,
    cameras: list[dict[str, Any]],
) -> Path:
    """The agent's YAML config: id AGENT_ID, the private broker, no clock sync required."""
    import yaml

    config = {
        "agent": {"id": AGENT_ID, "data_dir": str(data_dir)},
        "registry": {
            "broker": f"mqtt://127.0.0.1:{broker_port}",
            "health_interval": health_interval,
        },
        "clock": {"require_sync": False},
        "cameras": cameras,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_agent(
    procs: Processes,
    config: Path,
    name: str = "agent",
    *,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`python -m agent run` from this checkout, with `extra_env` added to its environment
    (e.g. a NOTIFY_SOCKET the benchmark reads); its output goes to NAME.log."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Under systemd the benchmark's own NOTIFY_SOCKET must not reach the agent.
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra_env or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return procs.start(
        name, [sys.executable, "-m", "agent", "run", "--config", str(config)], env=env
    )


# --- report ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(*, memory: bool = False) -> str:
    """'CPU, N cores (arch), [RAM,] Linux release, Python version' for a report."""
    ram = ""
    if memory:
        ram = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1e9:.0f} GB RAM, "
    return (
        f"{cpu_model()}, {os.cpu_count()} cores ({platform.machine()}), {ram}"
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def load_average() -> str:
    return "{} {} {}".format(*os.getloadavg())


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


# --- main ------------------------------------------------------------------------------------


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does, through the same cleanup."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_main(name: str, run: Callable[[], int], *, interrupted: str) -> int:
    """`run`'s exit code; a SetupError gives 2 and an interrupt (Ctrl-C or SIGTERM) 130, each
    with one line on stderr: 'NAME: why' or 'NAME: interrupted; INTERRUPTED'."""
    with sigterm_as_interrupt():
        try:
            return run()
        except SetupError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{name}: interrupted; {interrupted}", file=sys.stderr)
            return 130
