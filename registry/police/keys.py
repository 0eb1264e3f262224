"""The police request-signing key: an Ed25519 pair made and kept off the registry server.

The registry relays requests but must never be able to make one (DESIGN.md, actors), so
the private half lives on the officer's or the authority's own machine, optionally
encrypted with a passphrase; agent owners pin only the public half (`police.keys`).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract import jws
from registry.errors import RegistryError

__all__ = [
    "GeneratedKey",
    "PoliceKeyError",
    "generate",
    "is_encrypted",
    "load_private_key",
    "permission_warning",
    "pin_snippet",
    "public_pem",
    "read_key_file",
    "read_passphrase_file",
]

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pem"  # what owners pin, as in config.example.yaml (police-2026.pem)
# A name becomes two file names; no path separators, no hidden files.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
# A passphrase file is a secret, not a document; anything this big is the wrong file.
MAX_PASSPHRASE_BYTES = 4096
MAX_KEY_FILE_BYTES = 64 * 1024


class PoliceKeyError(RegistryError):
    """A police key cannot be made or used; the message says why and what to do."""


@dataclass(frozen=True)
class GeneratedKey:
    private_path: Path
    public_path: Path
    kid: str  # RFC 7638 thumbprint: the `kid` of every token this key signs
    encrypted: bool


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _create_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Write a new file; O_EXCL refuses an existing file or symlink, and the mode is set at
    creation, so a private key is never readable by others, not even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        # The umask may only have removed bits; make the mode exactly what was asked.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    finally:
        os.close(fd)


def generate(directory: Path, name: str, passphrase: bytes | None = None) -> GeneratedKey:
    """A new pair as `NAME.key` (PKCS#8 PEM, mode 0600, encrypted when a passphrase is given)
    and `NAME.pem` (public); refuses to replace either, since agents may pin the old one."""
    if not _NAME.fullmatch(name):
        raise PoliceKeyError(
            f"key name {name!r}: use letters, digits, '-', '_' and '.' (at most 64), "
            "e.g. police-2026"
        )
    if passphrase is not None and not passphrase:
        raise PoliceKeyError("the passphrase is empty")
    private_path = directory / (name + PRIVATE_SUFFIX)
    public_path = directory / (name + PUBLIC_SUFFIX)
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise PoliceKeyError(
                f"{path} exists already; agents may have pinned it, so it is not replaced "
                "(choose another --name, e.g. with the year)"
            )
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise PoliceKeyError(f"cannot create {directory}: {exc.strerror}") from None
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    try:
        _create_exclusive(private_path, private, 0o600)
    except FileExistsError:
        raise PoliceKeyError(f"{private_path} exists already; it is not replaced") from None
    except OSError as exc:
        raise PoliceKeyError(f"cannot write {private_path}: {exc.strerror}") from None
    try:
        _create_exclusive(public_path, public_pem(key.public_key()), 0o644)
    except OSError as exc:
        # Half a pair is useless and confusing: remove the private key we just made.
        private_path.unlink(missing_ok=True)
        why = "exists already" if isinstance(exc, FileExistsError) else exc.strerror
        raise PoliceKeyError(f"cannot write {public_path}: {why}") from None
    return GeneratedKey(
        private_path=private_path,
        public_path=public_path,
        kid=jws.thumbprint(key.public_key()),
        encrypted=bool(passphrase),
    )


def read_passphrase_file(path: Path) -> bytes:
    """The passphrase in a file, without its final line break (editors add one)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PASSPHRASE_BYTES + 1)
    except OSError as exc:
        raise PoliceKeyError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise PoliceKeyError(f"{path} is over {MAX_PASSPHRASE_BYTES} bytes; not a passphrase")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise PoliceKeyError(f"the passphrase file {path} is empty")
    return data


def read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PoliceKeyError(f"no key file at {path}") from None
    except IsADirectoryError:
        raise PoliceKeyError(f"{path} is a directory, not a key file") from None
    except OSError as exc:
        raise PoliceKeyError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise PoliceKeyError(f"{path} is too big to be a key file")
    return data


def is_encrypted(path: Path) -> bool:
    """Whether the PEM file holds a passphrase-protected private key."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in read_key_file(path)


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file; PoliceKeyError says what is wrong with it."""
    data = read_key_file(path)
    if b"-----BEGIN PUBLIC KEY-----" in data:
        raise PoliceKeyError(
            f"{path} holds a public key; signing needs the private key (the .key file)"
        )
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    if encrypted and passphrase is None:
        raise PoliceKeyError(f"{path} is encrypted; give its passphrase (--passphrase-file)")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise PoliceKeyError(f"{path}: wrong passphrase") from None
        raise PoliceKeyError(f"{path} is not a PEM private key ({exc})") from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise PoliceKeyError(f"{path} is not a usable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PoliceKeyError(
            f"{path} is a {type(key).__name__.removeprefix('_')} key; police requests are "
            "signed with Ed25519 only (make one with `camera-registry police keygen`)"
        )
    return key


def permission_warning(path: Path) -> str | None:
    """A warning when others than the owner may read the private key file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"warning: {path} is readable by others (mode {stat.S_IMODE(mode):04o}); "
            f"`chmod 600 {path}`"
        )
    return None


# Where owners keep pinned keys, as in config.example.yaml.
AGENT_CONFIG_DIR = Path("/etc/camera-agent")


def pin_snippet(agent_path: Path, kid: str, *, root: bool = False) -> str:
    """The lines an agent owner adds to the agent's config to trust this key; `agent_path` is
    where the public key file lies on the agent (by default the agent's config folder). A
    root key goes under `root_keys`: pinned as a request key, it could sign requests."""
    what, section = ("root key", "root_keys") if root else ("request key", "keys")
    return (
        f"# police {what} {agent_path.name}, kid {kid}\n"
        "police:\n"
        f"  {section}:\n"
        f"    - file: {agent_path}\n"
    )
