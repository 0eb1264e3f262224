"""`camera-agent enroll`: join the registry with a one-time code.

Sends the device's public key and its cameras to `{registry}/api/v1/enrol` and keeps the
broker password the registry returns in `<data_dir>/keys/broker.pass` (0600, beside the
device key). It only reads the config file: the pinned police keys and the upload
allow-list are the owner's decision and nothing the registry says can change them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field

from agent.config import AgentSection, ConfigSection, Location, load_yaml_model
from agent.crypto import device_key
from agent.errors import AgentError
from contract.config.fields import web_url
from contract.exit_codes import (
    EX_CANTCREAT,
    EX_NOPERM,
    EX_PROTOCOL,
    EX_UNAVAILABLE,
    EX_USAGE,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "BROKER_PASSWORD_FILE",
    "Enrolment",
    "EnrolmentError",
    "EnrolmentView",
    "check_registry_url",
    "enrol",
    "load_enrolment_view",
    "save_password",
]

ENROL_PATH = "/api/v1/enrol"
BROKER_PASSWORD_FILE = "broker.pass"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0  # the registry updates the broker's password file before answering
MAX_RESPONSE_BYTES = 64 * 1024
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class EnrolmentError(AgentError):
    """Enrolment failed; `exit_code` is the sysexits code the CLI returns."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Enrolment:
    """What the registry answered."""

    agent_id: str
    broker: str
    topic_prefix: str
    username: str
    password: str | None = field(repr=False)
    key_thumbprint: str


class _CameraView(ConfigSection):
    # Only what enrolment sends; the rest of a camera's settings is not read here.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    id: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    name: str = ""
    location: Location | None = None


class EnrolmentView(ConfigSection):
    """The parts of config.yaml enrolment needs. Read leniently on purpose: an owner
    enrols before the `registry:` section can be complete (its password file is what
    enrolment makes), so the other sections are not validated here (`check` does)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    agent: AgentSection
    cameras: list[_CameraView] = Field(min_length=1)


def load_enrolment_view(path: Path) -> EnrolmentView:
    """ConfigError lists every problem by key path and line, as `check` does."""
    return load_yaml_model(path, EnrolmentView)


def check_registry_url(url: str) -> str:
    """The base URL without a trailing '/'; ValueError unless https (http on loopback):
    the code and the password cross this connection."""
    try:
        parts = web_url(url)
    except ValueError as exc:
        raise ValueError(f"the registry URL {url!r}: {exc}") from None
    if parts.query or parts.fragment:
        raise ValueError("the registry URL must be only https://host[:port][/path]")
    return url.rstrip("/")


def _request_body(view: EnrolmentView, key: Ed25519PrivateKey, code: str) -> dict[str, Any]:
    public = device_key.describe(key)
    return {
        "code": code,
        "agent_id": view.agent.id,
        "public_key": public["jwk"],
        "cameras": [
            {
                "id": camera.id,
                "name": camera.name or camera.id,
                "location": None
                if camera.location is None
                else camera.location.model_dump(exclude_none=True),
            }
            for camera in view.cameras
        ],
    }


def enrol(
    view: EnrolmentView,
    registry_url: str,
    code: str,
    *,
    ca_file: Path | None = None,
) -> Enrolment:
    """Post the enrolment and return the registry's answer; EnrolmentError otherwise.

    The device key is created first if there is none (as `keys init` does); an existing
    key is never replaced."""
    import requests

    try:
        base = check_registry_url(registry_url)
    except ValueError as exc:
        raise EnrolmentError(str(exc), EX_USAGE) from None
    code = code.strip()
    if not code or len(code) > 64 or not code.isascii() or not code.isprintable():
        raise EnrolmentError(
            "the code must be the one the registry operator gave you, e.g. 7KQ2-M9XD-4HRT-0WBE",
            EX_USAGE,
        )
    try:
        key = device_key.load_or_create(view.agent.data_dir)
    except device_key.DeviceKeyError as exc:
        raise EnrolmentError(str(exc), EX_CANTCREAT) from None
    except OSError as exc:
        raise EnrolmentError(f"cannot create the device key: {exc}", EX_CANTCREAT) from None
    url = base + ENROL_PATH
    try:
        response = requests.post(
            url,
            json=_request_body(view, key, code),
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            # A redirect could send the code somewhere else, even over http.
            allow_redirects=False,
            verify=str(ca_file) if ca_file is not None else True,
        )
    except requests.exceptions.SSLError as exc:
        raise EnrolmentError(
            f"TLS failure talking to {base}: its certificate could not be verified ({exc}); "
            "check the URL, or give the registry's CA with --ca-file",
            EX_UNAVAILABLE,
        ) from None
    except requests.exceptions.Timeout:
        raise EnrolmentError(
            f"the registry at {base} did not answer in time", EX_UNAVAILABLE
        ) from None
    except requests.exceptions.RequestException as exc:
        raise EnrolmentError(
            f"cannot reach the registry at {base}: {_reason(exc)}", EX_UNAVAILABLE
        ) from None
    return _answer(response, view.agent.id, key)


def _reason(exc: Exception) -> str:
    """The OS's words ("Connection refused") from under requests' and urllib3's wrappers."""
    found = _ERRNO.search(str(exc))
    return found.group(1).strip() if found else str(exc)


def _answer(response: Any, agent_id: str, key: Ed25519PrivateKey) -> Enrolment:
    status: int = response.status_code
    content: bytes = response.content[: MAX_RESPONSE_BYTES + 1]
    try:
        body = json.loads(content) if len(content) <= MAX_RESPONSE_BYTES else None
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    said = f": {message}" if isinstance(message, str) else ""
    if status == 403:
        raise EnrolmentError(f"the registry refused the code{said}", EX_NOPERM)
    if status == 409:
        # The code is good but not for this: the agent is enrolled already, its key changed,
        # or its id is a broker user enrolment may not take. The operator decides.
        raise EnrolmentError(f"the registry refused the enrolment{said}", EX_NOPERM)
    if status == 429:
        raise EnrolmentError(f"the registry refused to try{said}", EX_UNAVAILABLE)
    if status in (400, 413):
        raise EnrolmentError(f"the registry refused the request (HTTP {status}){said}", EX_PROTOCOL)
    if status != 200:
        raise EnrolmentError(
            f"unexpected answer from the registry: HTTP {status}{said}",
            EX_UNAVAILABLE if status >= 500 else EX_PROTOCOL,
        )
    if not isinstance(body, dict):
        raise EnrolmentError("the registry's answer is not a JSON object", EX_PROTOCOL)
    try:
        enrolment = Enrolment(
            agent_id=_text(body, "agent_id"),
            broker=_text(body, "broker"),
            topic_prefix=_text(body, "topic_prefix"),
            username=_text(body, "username"),
            password=_optional_text(body, "password"),
            key_thumbprint=_text(body, "key_thumbprint"),
        )
    except ValueError as exc:
        raise EnrolmentError(f"the registry's answer is incomplete: {exc}", EX_PROTOCOL) from None
    if enrolment.agent_id != agent_id:
        raise EnrolmentError(
            f"the registry enrolled {enrolment.agent_id!r}, not {agent_id!r}", EX_PROTOCOL
        )
    if enrolment.key_thumbprint != device_key.describe(key)["kid"]:
        raise EnrolmentError("the registry enrolled another key than this device's", EX_PROTOCOL)
    if not enrolment.broker.startswith(("mqtt://", "mqtts://")):
        raise EnrolmentError(
            f"the registry named no usable broker: {enrolment.broker!r}", EX_PROTOCOL
        )
    return enrolment


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or not value.isprintable():
        raise ValueError(f"{name} missing or not text")
    return value


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _text(body, name)


def password_path(data_dir: Path) -> Path:
    return device_key.key_dir(data_dir) / BROKER_PASSWORD_FILE


def save_password(data_dir: Path, password: str) -> Path:
    """Write the broker password (mode 0600) atomically, replacing an earlier one."""
    path = password_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates 0600: the password is never readable by others, not even briefly.
    fd, temporary = tempfile.mkstemp(prefix=".broker.pass.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(password + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
