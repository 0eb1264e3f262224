"""The agent as a real process (`python -m agent run`), with a config the test writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support import REPO_ROOT


def write_config(
    path: Path, *, broker_url: str, cameras: list[dict[str, Any]], **sections: Any
) -> Path:
    """A config file for one test: fast intervals, its own data directory."""
    registry = {"broker": broker_url, "health_interval": "2s", **sections.pop("registry", {})}
    config = {
        "agent": {
            "id": "shop-42",
            "data_dir": str(path.parent / "state"),
            **sections.pop("agent", {}),
        },
        "registry": registry,
        "clock": {"require_sync": False},
        "storage": {"path": str(path.parent / "footage"), **sections.pop("storage", {})},
        "cameras": cameras,
        **sections,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def request_config(
    path: Path,
    *,
    broker_url: str,
    clip: Path,
    police_jwk: dict[str, str],
    upload_allow: str,
    police: dict[str, Any] | None = None,
    **sections: Any,
) -> Path:
    """An agent that records one file camera (`front`, 2 s segments), trusts one police key
    and may upload to one endpoint: the set-up of the request tests."""
    return write_config(
        path,
        broker_url=broker_url,
        cameras=[{"id": "front", "url": str(clip), "recording": {"segment": "2s"}}],
        police={"keys": [{"jwk": police_jwk}], "upload_allow": [upload_allow], **(police or {})},
        **sections,
    )


class AgentProcess:
    """`camera-agent run --config PATH` as a child process; its log goes to a file."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env or {}  # added to the test's environment
        self.log_path = config.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        # The test runner's own NOTIFY_SOCKET (under systemd) must not reach the agent;
        # a test's own (its env) does.
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env.update({"PYTHONUNBUFFERED": "1", **self.env})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "--config", str(self.config)],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def post_mortem(self) -> str:
        """For a failure message: whether the agent still runs and, if it does, every thread's
        stack (the daemon prints them on SIGUSR1), then its whole log."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
            state = "still running; its threads' stacks are at the end of the log"
        else:
            state = f"exited with {code}"
        return f"the agent {state}:\n{self.log}"

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
