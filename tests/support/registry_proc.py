"""`camera-registry serve` as a child process with its own config, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support import REPO_ROOT, eventually, free_port, wait_listening

START_TIMEOUT_S = 20.0
POLL_S = 0.3


def wait_for(what: str, probe: Callable[[], Any], timeout: float, *logs: Callable[[], str]) -> Any:
    """`probe()`'s first truthy value within `timeout` s, else fail showing the logs' tails."""
    try:
        return eventually(probe, what, timeout, POLL_S)
    except pytest.fail.Exception as failed:
        tails = "\n".join(f"--- log ---\n{log()[-3000:]}" for log in logs)
        pytest.fail(f"{failed.msg}\n{tails}", pytrace=False)


def registry_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `camera-registry ARGS...` to completion; its output as text."""
    result = subprocess.run(
        [sys.executable, "-m", "registry", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"camera-registry {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
    return result


class RegistryProcess:
    def __init__(self, directory: Path, **config: Any) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = directory / "registry.yaml"
        self.log_path = directory / "registry.log"
        settings = {
            "data_dir": str(directory / "data"),
            "http": {"listen": f"127.0.0.1:{self.port}"},
            "map": {"tile_url": ""},
            **config,
        }
        self.config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return registry_cli(*args, "--config", str(self.config_file), check=check)

    def start(self) -> RegistryProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "registry", "serve", "--config", str(self.config_file)],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        wait_listening(self.proc, self.port, "the registry", START_TIMEOUT_S, lambda: self.log)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, token: str, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(
            method,
            self.url + path,
            json=body,
            timeout=15,
            headers={"Authorization": f"Bearer {token}"},
        )
        if answer.status_code >= 400:
            pytest.fail(f"{method} {path}: {answer.status_code} {answer.text}", pytrace=False)
        return json.loads(answer.content) if answer.content else None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
