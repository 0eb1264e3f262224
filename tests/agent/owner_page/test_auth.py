"""The owner password, the allowed networks, the config keys, the CLI command, and that every
problem has advice and every string of the page a Dutch translation."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from babel.messages.pofile import read_po
from pydantic import ValidationError

from agent.config import OwnerPageConfig
from agent.i18n import LOCALE_DIR
from agent.owner_page.auth import (
    OwnerPasswordError,
    address_allowed,
    parse_networks,
    password_matches,
    set_owner_password,
    stored_hash,
)
from agent.owner_page.words import PROBLEMS
from tests.agent.owner_page.catalogue import source_strings
from tests.support import REPO_ROOT


def test_the_password_is_stored_as_an_argon2id_hash_only_the_owner_reads(tmp_path: Path) -> None:
    path = set_owner_password(tmp_path / "state", "sunflower seeds")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("$argon2id$") and "sunflower" not in text
    stored = stored_hash(tmp_path / "state")
    assert stored is not None
    assert password_matches(stored, "sunflower seeds")
    assert not password_matches(stored, "sunflower seed")
    assert not PasswordHasher().check_needs_rehash(stored)


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_unusable_passwords_are_refused(tmp_path: Path, password: str) -> None:
    with pytest.raises(OwnerPasswordError):
        set_owner_password(tmp_path, password)
    assert stored_hash(tmp_path) is None


LOCAL = parse_networks(OwnerPageConfig().allow)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("192.168.1.5", True),
        ("10.1.2.3", True),
        ("172.16.0.9", True),
        ("172.32.0.9", False),
        ("127.0.0.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd12:3456::1", True),
        ("::ffff:192.168.1.5", True),  # an IPv4 peer on a dual-stack socket
        ("::ffff:8.8.8.8", False),
        ("8.8.8.8", False),
        ("2001:db8::1", False),
        ("", False),
        (None, False),
        ("not-an-address", False),
    ],
)
def test_only_local_addresses_are_allowed_by_default(address: str | None, allowed: bool) -> None:
    assert address_allowed(address, LOCAL) is allowed


def test_config_keys() -> None:
    default = OwnerPageConfig()
    assert (default.enabled, default.host, default.port) == (False, "0.0.0.0", 8081)
    assert OwnerPageConfig(listen="[::]:8443").host == "::"
    for bad in ("8081", "pi.local:8081", "0.0.0.0:0", "::1:80", "0.0.0.0:99999"):
        with pytest.raises(ValidationError, match="listen"):
            OwnerPageConfig(listen=bad)
    with pytest.raises(ValidationError, match="not an address or network"):
        OwnerPageConfig(allow=["192.168.1.0/33"])
    with pytest.raises(ValidationError, match="extra"):
        OwnerPageConfig.model_validate({"enable": True})
    assert OwnerPageConfig().allowed_hosts == []
    assert OwnerPageConfig(allowed_hosts=["Camera.Home.Arpa"]).allowed_hosts == ["camera.home.arpa"]
    for bad in ("evil.example:80", "http://camera", "*.example", "a b"):
        with pytest.raises(ValidationError, match="not a host name"):
            OwnerPageConfig(allowed_hosts=[bad])


def test_owner_password_command(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "agent": {"id": "shop-42", "data_dir": str(tmp_path / "state")},
                "registry": {"broker": "mqtt://127.0.0.1:1"},
                "cameras": [{"id": "front", "url": "rtsp://192.168.1.20/stream1"}],
            }
        )
    )
    secret = tmp_path / "password.txt"
    secret.write_text("tulips in april\n")
    command = [sys.executable, "-m", "agent", "owner-password", "--config", str(config)]
    done = subprocess.run(
        [*command, "--password-file", str(secret)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Argon2id" in done.stdout and "owner_page.enabled: true" in done.stdout
    stored = stored_hash(tmp_path / "state")
    assert stored is not None and password_matches(stored, "tulips in april")

    secret.write_text("short\n")
    refused = subprocess.run(
        [*command, "--password-file", str(secret)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "at least 10 characters" in refused.stderr
    assert stored_hash(tmp_path / "state") == stored  # unchanged


def test_every_problem_has_words_and_advice() -> None:
    schema = json.loads((REPO_ROOT / "docs/schemas/health.schema.json").read_text())
    codes = schema["properties"]["problems"]["items"]["enum"]
    assert sorted(PROBLEMS) == sorted(codes)
    assert all(said and advice for said, advice in PROBLEMS.values())


def test_every_string_of_the_page_has_a_dutch_translation() -> None:
    with (LOCALE_DIR / "nl/LC_MESSAGES/camera-agent.po").open("rb") as source:
        catalogue = read_po(source, locale="nl")
    strings = source_strings()
    assert len(strings) > 100  # the extraction finds them at all
    untranslated = sorted(s for s in strings if s not in catalogue or not catalogue[s].string)
    # Plurals are stored under their singular.
    untranslated = [s for s in untranslated if not any(s in str(m.id) for m in catalogue)]
    assert untranslated == []
