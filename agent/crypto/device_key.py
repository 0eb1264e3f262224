"""The device's own Ed25519 key: it signs evidence manifests, so police can tell the
footage came from this agent and was not changed on the way.

Kept as `<data_dir>/keys/device.key` (PKCS#8 PEM, mode 0600) with the public half beside
it. Created once; never replaced silently, since the registry enrols its public key.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import AgentError
from contract import jws

log = logging.getLogger(__name__)

KEY_FILE = "device.key"
PUBLIC_FILE = "device.pub"
# In data_dir, outside keys/: the thumbprint of the key this agent made. It tells a lost
# key (the file is there) from a first start (it is not), even when keys/ went as a whole.
KID_FILE = "device-key.kid"
# Why the daemon has no key to sign with (the birth message's `device_key.state`).
MISSING = "missing"
UNUSABLE = "unusable"


class DeviceKeyError(AgentError):
    """The device key is missing, unreadable or not an Ed25519 key."""


def key_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def create(data_dir: Path) -> Ed25519PrivateKey:
    """Make a new key; refuses when one exists (its public half may be enrolled)."""
    directory = key_dir(data_dir)
    path = directory / KEY_FILE
    if had_key(data_dir) and not path.exists():
        raise lost_key_error(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DeviceKeyError(
            f"{path} exists already; the registry may have enrolled it, so it is not replaced"
        ) from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / PUBLIC_FILE).write_bytes(public)
    remember(data_dir, key)
    return key


def remember(data_dir: Path, key: Ed25519PrivateKey) -> None:
    """Note that this agent has a key (see KID_FILE); kept when the key file is lost."""
    path = data_dir / KID_FILE
    kid = jws.thumbprint(key.public_key())
    if not path.exists() or path.read_text(encoding="ascii", errors="replace").strip() != kid:
        path.write_text(kid + "\n", encoding="ascii")


def had_key(data_dir: Path) -> bool:
    """Whether this agent made a key before (which the registry may have enrolled)."""
    return (data_dir / KID_FILE).exists() or (key_dir(data_dir) / PUBLIC_FILE).exists()


def lost_key_error(data_dir: Path) -> DeviceKeyError:
    return DeviceKeyError(
        f"the device key {key_dir(data_dir) / KEY_FILE} is missing, though this agent had "
        "one (the registry enrolled its public half); it is not replaced silently. Restore "
        "it from a backup, or make a new one with `camera-agent keys init --replace` and "
        "enrol again"
    )


def for_daemon(data_dir: Path) -> tuple[Ed25519PrivateKey | None, str | None]:
    """(key, None), or (None, MISSING | UNUSABLE): the daemon goes on without a key and
    refuses evidence. A key is made here only on a first start."""
    path = key_dir(data_dir) / KEY_FILE
    if not path.exists() and not path.is_symlink():
        if had_key(data_dir):
            log.error("%s; evidence requests fail until then", lost_key_error(data_dir))
            return None, MISSING
        return create(data_dir), None
    try:
        key = load(data_dir)
    except DeviceKeyError as exc:
        log.error(
            "%s; it is not replaced silently: restore it from a backup, or make a new one "
            "with `camera-agent keys init --replace` and enrol again. Evidence requests fail "
            "until then",
            exc,
        )
        return None, UNUSABLE
    remember(data_dir, key)
    return key, None


def replace(data_dir: Path) -> tuple[Ed25519PrivateKey, Path | None]:
    """The owner's deliberate new key: the old file (if any) is kept beside it as
    `device.key.replaced-<unix time>`. Returns the new key and where the old one went."""
    path = key_dir(data_dir) / KEY_FILE
    kept: Path | None = None
    if path.exists() or path.is_symlink():
        kept = path.with_name(f"{KEY_FILE}.replaced-{int(time.time())}")
        os.replace(path, kept)
    (key_dir(data_dir) / PUBLIC_FILE).unlink(missing_ok=True)
    (data_dir / KID_FILE).unlink(missing_ok=True)
    return create(data_dir), kept


def load(data_dir: Path) -> Ed25519PrivateKey:
    path = key_dir(data_dir) / KEY_FILE
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        if had_key(data_dir):
            raise lost_key_error(data_dir) from None
        raise DeviceKeyError(
            f"no device key at {path}; create it with `camera-agent keys init`"
        ) from None
    except OSError as exc:
        raise DeviceKeyError(f"cannot read {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DeviceKeyError(f"{path} is not a usable private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DeviceKeyError(f"{path} is not an Ed25519 key")
    return key


def load_or_create(data_dir: Path) -> Ed25519PrivateKey:
    """The key, made on first use; a lost key is an error, never silently a new one."""
    path = key_dir(data_dir) / KEY_FILE
    if path.exists() or path.is_symlink():
        return load(data_dir)
    if had_key(data_dir):
        raise lost_key_error(data_dir)
    return create(data_dir)


def describe(key: Ed25519PrivateKey) -> dict[str, object]:
    """What `keys show` prints and the registry enrols: the public key only."""
    public = key.public_key()
    return {
        "kid": jws.thumbprint(public),
        "jwk": jws.public_jwk(public),
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii"),
    }
