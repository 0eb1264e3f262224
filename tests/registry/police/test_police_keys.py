"""The police signing key: made with safe permissions, never replaced, loaded with clear
errors, and pinned by agents through the snippet `keygen` prints."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import PoliceKey
from contract import jws
from registry.cli import main
from registry.police import keys
from registry.police.keys import PoliceKeyError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable and writable."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_generate_writes_a_private_key_only_the_owner_can_read(tmp_path: Path) -> None:
    made = keys.generate(tmp_path / "keys", "police-2026")
    assert made.private_path == tmp_path / "keys" / "police-2026.key"
    assert made.public_path == tmp_path / "keys" / "police-2026.pem"
    assert mode(made.private_path) == 0o600
    assert mode(made.public_path) == 0o644
    assert mode(tmp_path / "keys") == 0o700
    assert made.private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not made.encrypted
    key = keys.load_private_key(made.private_path)
    public = jws.public_key_from_pem(made.public_path.read_bytes())
    assert jws.thumbprint(key.public_key()) == jws.thumbprint(public) == made.kid


def test_two_keys_differ(tmp_path: Path) -> None:
    assert keys.generate(tmp_path, "a").kid != keys.generate(tmp_path, "b").kid


@pytest.mark.parametrize("existing", ["police.key", "police.pem"])
def test_generate_never_replaces_a_key(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("the old one")
    with pytest.raises(PoliceKeyError, match="exists already; agents may have pinned it"):
        keys.generate(tmp_path, "police")
    assert (tmp_path / existing).read_text() == "the old one"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_generate_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "police.key").symlink_to(target)
    with pytest.raises(PoliceKeyError, match="exists already"):
        keys.generate(tmp_path, "police")
    assert not target.exists()


@pytest.mark.parametrize("name", ["", "../police", "a/b", ".hidden", "x" * 65, "pol ice"])
def test_bad_key_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(PoliceKeyError, match="key name"):
        keys.generate(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    made = keys.generate(tmp_path, "police", passphrase=b"correct horse")
    assert made.encrypted
    assert keys.is_encrypted(made.private_path)
    assert b"ENCRYPTED PRIVATE KEY" in made.private_path.read_bytes()
    with pytest.raises(PoliceKeyError, match="is encrypted; give its passphrase"):
        keys.load_private_key(made.private_path)
    with pytest.raises(PoliceKeyError, match="wrong passphrase"):
        keys.load_private_key(made.private_path, b"wrong horse")
    key = keys.load_private_key(made.private_path, b"correct horse")
    assert jws.thumbprint(key.public_key()) == made.kid


def test_a_passphrase_for_a_plain_key_is_ignored(tmp_path: Path) -> None:
    made = keys.generate(tmp_path, "police")
    key = keys.load_private_key(made.private_path, b"not needed")
    assert jws.thumbprint(key.public_key()) == made.kid


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PoliceKeyError, match="passphrase is empty"):
        keys.generate(tmp_path, "police", passphrase=b"")


def write_rsa_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_unusable_key_files_are_named(tmp_path: Path) -> None:
    made = keys.generate(tmp_path, "police")
    cases = {
        tmp_path / "missing.key": "no key file at",
        tmp_path: "is a directory",
        made.public_path: "holds a public key; signing needs the private key",
        write_rsa_key(tmp_path / "rsa.key"): "RSAPrivateKey key; police requests are signed "
        "with Ed25519 only",
    }
    garbage = tmp_path / "garbage.key"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    cases[garbage] = "is not a PEM private key"
    for path, words in cases.items():
        with pytest.raises(PoliceKeyError, match=words):
            keys.load_private_key(path)


def test_passphrase_file_loses_only_its_final_line_break(tmp_path: Path) -> None:
    path = tmp_path / "pass"
    path.write_bytes(b"two words \n")
    assert keys.read_passphrase_file(path) == b"two words "
    path.write_bytes(b"windows\r\n")
    assert keys.read_passphrase_file(path) == b"windows"
    path.write_bytes(b"\n")
    with pytest.raises(PoliceKeyError, match="is empty"):
        keys.read_passphrase_file(path)
    with pytest.raises(PoliceKeyError, match="cannot read the passphrase file"):
        keys.read_passphrase_file(tmp_path / "missing")


def test_permission_warning_for_a_readable_private_key(tmp_path: Path) -> None:
    made = keys.generate(tmp_path, "police")
    assert keys.permission_warning(made.private_path) is None
    made.private_path.chmod(0o644)
    warning = keys.permission_warning(made.private_path)
    assert warning is not None
    assert "readable by others (mode 0644)" in warning


def test_pin_snippet_is_an_agent_config_that_pins_the_key(tmp_path: Path) -> None:
    made = keys.generate(tmp_path, "police-2026")
    snippet = yaml.safe_load(keys.pin_snippet(made.public_path, made.kid))
    (entry,) = snippet["police"]["keys"]
    pinned = PoliceKey.model_validate(entry).public_key()
    assert jws.thumbprint(pinned) == made.kid


def test_keygen_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys"
    assert main(["police", "keygen", "--out", str(out), "--name", "police-2026"]) == 0
    printed = capsys.readouterr().out
    key = keys.load_private_key(out / "police-2026.key")
    kid = jws.thumbprint(key.public_key())
    assert f"kid (RFC 7638 thumbprint): {kid}" in printed
    assert "NOT encrypted" in printed
    assert "Keep the private key off the registry server" in printed
    snippet = printed[printed.index("# police request key") :]
    assert yaml.safe_load(snippet) == {
        "police": {"keys": [{"file": "/etc/camera-agent/police-2026.pem"}]}
    }
    # A second run with the same name changes nothing and says why.
    before = (out / "police-2026.key").read_bytes()
    assert main(["police", "keygen", "--out", str(out), "--name", "police-2026"]) == 73
    assert "exists already" in capsys.readouterr().err
    assert (out / "police-2026.key").read_bytes() == before


def test_keygen_command_with_a_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("correct horse\n")
    args = ["police", "keygen", "--out", str(tmp_path), "--name", "p", "--passphrase-file"]
    assert main([*args, str(secret)]) == 0
    assert "encrypted with the passphrase" in capsys.readouterr().out
    key = keys.load_private_key(tmp_path / "p.key", b"correct horse")
    assert isinstance(key, Ed25519PrivateKey)
    assert main([*args[:-3], "--name", "q", "--passphrase-file", str(tmp_path / "none")]) == 1
    assert "cannot read the passphrase file" in capsys.readouterr().err
    assert not (tmp_path / "q.key").exists()


def test_keygen_root_prints_a_root_keys_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    assert main(["police", "keygen", "--out", str(out), "--name", "police-root", "--root"]) == 0
    printed = capsys.readouterr().out
    assert "offline machine" in printed
    snippet = yaml.safe_load(printed[printed.index("# police root key") :])
    # Under root_keys, never keys: pinned as a request key, the root could sign requests.
    assert snippet == {"police": {"root_keys": [{"file": "/etc/camera-agent/police-root.pem"}]}}
