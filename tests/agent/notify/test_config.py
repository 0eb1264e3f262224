"""The `notifications:` section: defaults, and each mistake named by key path and line."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from agent.config import AgentConfig, load_config
from contract.errors import ConfigError
from tests.support import REPO_ROOT

BASE = """\
agent:
  id: shop-42
registry:
  broker: mqtt://localhost
cameras:
  - id: front
    url: rtsp://cam.local/stream
"""


def load(tmp_path: Path, section: str) -> AgentConfig:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + dedent(section))
    return load_config(path)


def errors(tmp_path: Path, section: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, section)
    return caught.value.errors


def test_no_section_means_no_notifications(tmp_path: Path) -> None:
    assert load_config_text(tmp_path, BASE).notifications is None


def load_config_text(tmp_path: Path, text: str) -> AgentConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path)


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "notifications:\n  ntfy: {url: https://ntfy.sh/shop-42}\n")
    settings = config.notifications
    assert settings is not None and settings.ntfy is not None
    assert settings.min_interval == 3600 and settings.digest == "none"
    assert settings.digest_at == dt.time(8, 0)
    assert settings.events == [
        "camera_failed", "camera_recovered", "storage_low", "clock_unsynced",
        "request_received", "request_completed",
    ]  # fmt: skip
    assert settings.ntfy.token is None and settings.email is None


def test_email_defaults_and_secret_from_file(tmp_path: Path) -> None:
    (tmp_path / "smtp.pass").write_text("hunter2\n")
    config = load(
        tmp_path,
        """\
        notifications:
          digest: off
          email:
            host: smtp.example.org
            username: shop
            password_file: smtp.pass
            from: shop@example.org
            to: [owner@example.org]
        """,
    )
    settings = config.notifications
    assert settings is not None and settings.email is not None
    email = settings.email
    assert email.password is not None
    assert (email.security, email.effective_port, email.timeout) == ("starttls", 587, 30)
    assert email.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(config)
    assert settings.digest == "none"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "notifications:\n  min_interval: 1h\n",
            "notifications: needs at least one of email, webhook or ntfy (line 8)",
        ),
        (
            "notifications:\n  webhook: {url: http://hooks.example.org/x}\n",
            "notifications.webhook.url: must be an https:// URL (http:// only for 127.0.0.1 "
            "or localhost) (line 9)",
        ),
        (
            "notifications:\n  webhook: {url: 'https://user:pw@hooks.example.org/x'}\n",
            "notifications.webhook.url: put a token in token_file, not in the URL (line 9)",
        ),
        (
            "notifications:\n  ntfy: {url: https://ntfy.sh/}\n",
            "notifications.ntfy.url: must name the topic, e.g. https://ntfy.sh/my-shop-cameras "
            "(line 9)",
        ),
        (
            "notifications:\n  ntfy: {url: https://ntfy.sh/x, token_file: nope.token}\n",
            "notifications.ntfy.token_file: cannot read {dir}/nope.token: No such file or "
            "directory (line 9)",
        ),
        (
            "notifications:\n  ntfy: {url: https://ntfy.sh/x, token: abc}\n",
            "notifications.ntfy.token: unknown key; a token never goes in the config: use "
            "token_file (line 9)",
        ),
        (
            "notifications:\n  ntfy: {url: https://ntfy.sh/x}\n  events: [camera_fire]\n",
            "notifications.events[0]: must be 'camera_failed', 'camera_recovered', "
            "'storage_low', 'clock_unsynced', 'request_received' or 'request_completed' "
            "(line 10)",
        ),
        (
            "notifications:\n  ntfy: {url: https://ntfy.sh/x}\n  digest_at: '25:00'\n",
            'notifications.digest_at: must be a time of day like "08:00" (hours:minutes, '
            "24-hour) (line 10)",
        ),
        (
            "notifications:\n  ntfy: {url: https://ntfy.sh/x}\n  min_interval: soon\n",
            "notifications.min_interval:",
        ),
        (
            "notifications:\n  email: {host: smtp.example.org, security: none, "
            "from: a@example.org, to: [b@example.org]}\n",
            "notifications.email.security: must be starttls or ssl for a mail server on "
            "another machine (none only for a relay on 127.0.0.1 or localhost) (line 9)",
        ),
        (
            "notifications:\n  email: {host: smtp.example.org, username: shop, "
            "from: a@example.org, to: [b@example.org]}\n",
            "notifications.email.password_file: missing (needed with username) (line 9)",
        ),
        (
            "notifications:\n  email: {host: smtp.example.org, from: a@example.org, to: []}\n",
            "notifications.email.to: must not be empty (line 9)",
        ),
        (
            "notifications:\n  email: {host: smtp.example.org, from: a@example.org, to: "
            + "[owner]}\n",
            "notifications.email.to[0]: 'owner' is not a mail address like owner@example.org "
            "(line 9)",
        ),
        (
            "notifications:\n  email: {host: 'smtp.example.org:587', from: a@example.org, "
            "to: [b@example.org]}\n",
            "notifications.email.host: must be a host name such as smtp.example.org (no URL, "
            "no port) (line 9)",
        ),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, section: str, expected: str) -> None:
    found = errors(tmp_path, section)
    expected = expected.replace("{dir}", str(tmp_path))
    assert any(error.startswith(expected) for error in found), found


def test_check_reports_notification_errors_and_exits_78(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + "notifications:\n  webhook: {url: ftp://x}\n")
    done = subprocess.run(
        [sys.executable, "-m", "agent", "check", "--config", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "notifications.webhook.url: must be an https:// URL" in done.stdout + done.stderr
