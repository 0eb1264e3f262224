"""What setup writes: the config document (validated with the loader `check` uses before it
is put in place), and the password files beside it, each password alone in a 0600 file in
`<data_dir>/keys/`, never in config.yaml (agent/setup/__init__.py says why)."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agent.config import load_config
from agent.crypto.device_key import key_dir
from agent.i18n import Translator
from agent.setup.answers import Camera, Registry
from contract.errors import ConfigError

CONFIG_MODE = 0o644  # read by the service's dynamic user; it holds no secret
SECRET_MODE = 0o600
PASSWORD_SUFFIX = ".pass"


def police_key_path(config_path: Path, kid: str) -> Path:
    """Where setup keeps a trusted police key: beside the config, named by its fingerprint."""
    return config_path.absolute().parent / f"police-{kid[:16]}.pem"


def write_secret(path: Path, secret: str) -> None:
    """One password alone in a 0600 file, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, SECRET_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def config_document(
    agent_id: str,
    data_dir: Path,
    locale: str,
    registry: Registry,
    cameras: list[Camera],
    max_bytes: str,
    owner_page: bool = False,
    police: tuple[Path, str] | None = None,
    ntfy: str | None = None,
) -> dict[str, Any]:
    """The config as YAML-ready data; password files are named, never passwords."""
    section: dict[str, Any] = {"broker": registry.broker}
    if registry.username is not None:
        section["username"] = registry.username
    if registry.password_file is not None:
        section["password_file"] = str(registry.password_file)
    if registry.topic_prefix and registry.topic_prefix != "camreg/v1":
        section["topic_prefix"] = registry.topic_prefix
    listed: list[dict[str, Any]] = []
    for camera in cameras:
        entry: dict[str, Any] = {"id": camera.id, "name": camera.name}
        if camera.onvif_url is not None:
            entry["onvif"] = {"url": camera.onvif_url}
        else:
            entry["url"] = camera.url
        if camera.username is not None:
            entry["username"] = camera.username
        if camera.password is not None:
            entry["password_file"] = str(camera_password_path(key_dir(data_dir), camera.id))
        if camera.location:
            entry["location"] = dict(camera.location)
        listed.append(entry)
    document: dict[str, Any] = {
        "agent": {"id": agent_id, "data_dir": str(data_dir), "locale": locale},
        "registry": section,
        "storage": {"max_bytes": max_bytes},
    }
    if police is not None:
        key_file, upload_allow = police
        document["police"] = {"keys": [{"file": str(key_file)}], "upload_allow": [upload_allow]}
    if owner_page:
        document["owner_page"] = {"enabled": True}
    if ntfy is not None:
        document["notifications"] = {"ntfy": {"url": ntfy}}
    document["cameras"] = listed
    return document


def camera_password_path(keys: Path, camera_id: str) -> Path:
    return keys / f"camera-{camera_id}{PASSWORD_SUFFIX}"


def write_config(path: Path, document: dict[str, Any], _: Translator) -> ConfigError | None:
    """Validate with `check`'s loader, then put the file in place (mode 0644); the errors
    instead when it does not validate (nothing is then written)."""
    header = _(
        "# Written by `camera-agent setup` on {date}. Every key is explained in\n"
        "# config.example.yaml; check changes with `camera-agent check`.\n"
    ).format(date=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"))
    text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd, temporary = tempfile.mkstemp(prefix=".config.", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, CONFIG_MODE)
        try:
            load_config(temporary, check_folders=True)
        except ConfigError as exc:
            Path(temporary).unlink()
            return exc
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return None
