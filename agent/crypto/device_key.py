"""The device's own Ed25519 key: it signs evidence manifests, so police can tell the
footage came from this agent and was not changed on the way.

Kept as `<data_dir>/keys/device.key` (PKCS#8 PEM, mode 0600) with the public half beside
it. Created once; never replaced silently, since the registry enrols its public key.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.crypto import jws
from agent.errors import AgentError

KEY_FILE = "device.key"
PUBLIC_FILE = "device.pub"


class DeviceKeyError(AgentError):
    """The device key is missing, unreadable or not an Ed25519 key."""


def key_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def create(data_dir: Path) -> Ed25519PrivateKey:
    """Make a new key; refuses when one exists (its public half may be enrolled)."""
    directory = key_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / KEY_FILE
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
    return key


def load(data_dir: Path) -> Ed25519PrivateKey:
    path = key_dir(data_dir) / KEY_FILE
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
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
    if (key_dir(data_dir) / KEY_FILE).exists():
        return load(data_dir)
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
