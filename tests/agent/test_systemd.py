"""The systemd unit's hardening and contract, and the sd_notify client against real sockets."""

import logging
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.systemd import Notifier, watchdog_interval
from tests.support import REPO_ROOT

UNIT = REPO_ROOT / "systemd" / "camera-agent.service"
MAX_EXPOSURE = 2.0


def unit_settings() -> dict[str, list[str]]:
    """Every `Key=value` in the unit, by key, ignoring comments and section headers."""
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_exposure_is_low() -> None:
    # No skip: a missing systemd-analyze fails here, like any missing tool.
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is not installed"
    result = subprocess.run(
        [analyze, "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match is not None, f"no exposure level in output (exit {result.returncode}):\n{output}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{output}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "30"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "camera-agent"),
        ("RuntimeDirectory", "camera-agent"),
        ("ConfigurationDirectory", "camera-agent"),
        (
            "ExecStart",
            "/opt/camera-agent/venv/bin/camera-agent run --config /etc/camera-agent/config.yaml",
        ),
    ],
)
def test_unit_declares(key: str, value: str) -> None:
    assert unit_settings().get(key) == [value]


def test_unit_allows_only_the_socket_families_it_uses() -> None:
    families = " ".join(unit_settings()["RestrictAddressFamilies"]).split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]


def test_unit_lets_the_owner_page_listen() -> None:
    """owner_page.listen is an unprivileged port on the local network: no capability needed,
    and nothing in the unit may refuse the incoming connections or the bind."""
    settings = unit_settings()
    for key in ("IPAddressDeny", "IPAddressAllow", "SocketBindDeny", "PrivateNetwork"):
        assert key not in settings, key
    assert "@network-io" not in " ".join(settings.get("SystemCallFilter", []))


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket playing PID 1, and its $NOTIFY_SOCKET spelling."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    if request.param == "path":
        path = tmp_path / "notify"
        sock.bind(str(path))
        env_value = str(path)
    else:
        name = f"camera-agent-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        env_value = "@" + name
    with sock:
        yield env_value, sock


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_and_watchdog_reach_systemd(
    notify_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    env_value, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env_value)
    notifier = Notifier.from_env()
    assert notifier.enabled
    assert notifier.ready()
    assert received(sock) == "READY=1"
    assert notifier.watchdog()
    assert received(sock) == "WATCHDOG=1"
    assert notifier.stopping()
    assert received(sock) == "STOPPING=1"


def test_status_cannot_inject_other_assignments(
    notify_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    env_value, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env_value)
    Notifier.from_env().status("2 cameras\nREADY=1")
    assert received(sock) == "STATUS=2 cameras READY=1"


def test_without_notify_socket_nothing_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A listener that would catch a stray datagram, not named anywhere in the environment.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.setblocking(False)
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        notifier = Notifier.from_env()
        assert not notifier.enabled
        assert not notifier.ready()
        assert not notifier.watchdog()
        assert not notifier.stopping()
        assert not notifier.status("idle")
        with pytest.raises(BlockingIOError):
            sock.recv(4096)
    assert caplog.records == []


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_vanished_socket_does_not_raise_and_warns_once(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if kind == "path":
        path = tmp_path / "notify"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
        path.unlink()
        env_value = str(path)
    else:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            name = f"camera-agent-test-{uuid.uuid4().hex}"
            sock.bind("\0" + name)
        env_value = "@" + name
    monkeypatch.setenv("NOTIFY_SOCKET", env_value)
    notifier = Notifier.from_env()
    with caplog.at_level(logging.WARNING, logger="agent.systemd"):
        assert not notifier.ready()
        assert not notifier.watchdog()
        assert not notifier.watchdog()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_relative_notify_socket_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/notify")
    notifier = Notifier.from_env()
    assert not notifier.enabled
    assert not notifier.ready()


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("1000000", None, 0.5),
        ("30000000", "foreign", None),
        ("30000000", "not-a-pid", None),
        (None, None, None),
        ("", None, None),
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval(
    usec: str | None,
    pid: str | None,
    expected: float | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pids = {"self": str(os.getpid()), "foreign": str(os.getpid() + 1)}
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, pids.get(value, value))
    assert watchdog_interval() == expected
