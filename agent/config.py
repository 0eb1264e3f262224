"""The owner's YAML config as frozen pydantic models; every error names its key path and line.

Over 500 lines, not split in the issue 14 change: the models by section, the YAML line-
number loader, the error wording and key parsing are separate jobs (issue 17 splits them
into agent/config/ by section, as Frigate did).
"""

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Self, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.config_fields import (
    Bytes,
    ConfigPath,
    Loc,
    ReadableFile,
    Seconds,
    web_url,
)
from agent.config_fields import base_dir as _base_dir
from agent.config_fields import check_readable as _check_readable
from agent.config_fields import read_secret as _read_secret
from agent.config_fields import rule_details as _rule_details
from agent.config_fields import rule_error as _rule_error
from agent.crypto import jws
from agent.durations import parse_duration, parse_size
from agent.errors import ConfigError
from agent.notify.config import NotificationsConfig

__all__ = [
    "AgentConfig",
    "AgentSection",
    "Bytes",
    "CameraConfig",
    "ClockConfig",
    "ConfigPath",
    "ConfigSection",
    "ConsentPolicy",
    "DirectorySettings",
    "Expectations",
    "Identifier",
    "Location",
    "PoliceConfig",
    "PoliceKey",
    "ReadableFile",
    "RecordSettings",
    "RecordingConfig",
    "RegistryConfig",
    "Seconds",
    "StorageConfig",
    "load_config",
    "load_yaml_model",
    "parse_duration",
    "parse_size",
    "redact_url",
]

M = TypeVar("M", bound=BaseModel)

DEFAULT_DATA_DIR = Path("/var/lib/camera-agent")
MQTT_PORT = 1883
MQTTS_PORT = 8883
# An alias-heavy file ("billion laughs") expands exponentially; no real config comes near this.
MAX_YAML_NODES = 100_000

_ID = re.compile(r"[a-z0-9_-]{1,64}")
_ID_MESSAGE = "must be 1 to 64 characters: lower-case letters a-z, digits, '-' or '_'"
_NO_URL_CREDENTIALS = "put credentials in username and password_file, not the URL"
_NO_INLINE_PASSWORD = (
    "unknown key; a password never goes in the config: "
    "use password_file or password_credential (a systemd credential)"
)


# --- plain messages for pydantic's error types ----------------------------------------------

# Pydantic error type -> message, formatted with the error's context.
_MESSAGES: dict[str, str] = {
    "missing": "missing (required)",
    "extra_forbidden": "unknown key",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "path_type": "must be a file path",
    "literal_error": "must be {expected}",
    "union_tag_invalid": "must be one of {expected_tags}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "too_short": "must not be empty",  # only `cameras` has a minimum length (1)
    "config_rule": "{message}",
}

# Pydantic puts the tag of a discriminated union into the location; owners never write it.
_UNION_TAGS = {("recording", "record"), ("recording", "directory")}


def _message(error: Mapping[str, Any]) -> str:
    template = _MESSAGES.get(error["type"])
    if template is None:
        text = str(error["msg"]).removeprefix("Value error, ")
        # "Input should be ..." -> "input should be ...", but "CREDENTIALS_DIRECTORY" stays.
        return text[:1].lower() + text[1:] if text[1:2].islower() else text
    return template.format(**{key: _plain(value) for key, value in error.get("ctx", {}).items()})


def _plain(value: object) -> object:
    """1.0 -> 1, so bounds read as the owner wrote them."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _clean_loc(error: Mapping[str, Any]) -> Loc:
    loc: list[str | int] = []
    for part in error["loc"]:
        if loc and (loc[-1], part) in _UNION_TAGS:
            continue
        loc.append(part)
    if error["type"] == "union_tag_invalid":
        loc.append(str(error["ctx"]["discriminator"]).strip("'"))
    return tuple(loc)


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"


# --- field types ---------------------------------------------------------------------------


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(_ID_MESSAGE)
    return value


def _between(low: float, high: float) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


Identifier = Annotated[str, AfterValidator(_check_id)]


def _at_least_seconds(minimum: float) -> AfterValidator:
    def check(value: float) -> float:
        if value < minimum:
            raise ValueError(f"must be at least {minimum:g}s")
        return value

    return AfterValidator(check)


def _credential_path(name: str) -> Path:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ValueError(
            "CREDENTIALS_DIRECTORY is not set; systemd sets it for a unit with "
            f"LoadCredential={name}:<file>"
        )
    return Path(directory) / name


def _without_inline_password(
    data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Any:
    """Refuse `password:` in a config file (it may be set in code, e.g. by tests)."""
    from_file = isinstance(info.context, dict) and info.context.get("from_file")
    if not (from_file and isinstance(data, dict) and "password" in data):
        return handler(data)
    data = {key: value for key, value in data.items() if key != "password"}
    try:
        handler(data)
    except ValidationError as exc:
        _raise_with(exc, [(("password",), _NO_INLINE_PASSWORD)])
    _rule_error((("password",), _NO_INLINE_PASSWORD))


def _raise_with(exc: ValidationError, problems: list[tuple[Loc, str]]) -> NoReturn:
    """Re-raise pydantic's errors together with extra config-rule errors."""
    details = _rule_details(problems)
    for error in exc.errors(include_url=False):
        # Rebuilt under the same type, with the same context, keeping pydantic's message.
        context = {**error.get("ctx", {}), "message": error["msg"]}
        details.append(
            InitErrorDetails(
                type=PydanticCustomError(error["type"], "{message}", context),
                loc=error["loc"],
                input=error["input"],
            )
        )
    raise ValidationError.from_exception_data("config", details)


# --- models --------------------------------------------------------------------------------


class ConfigSection(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True
    )


class AgentSection(ConfigSection):
    """Who this agent is and where it keeps its state."""

    id: Identifier
    data_dir: ConfigPath = DEFAULT_DATA_DIR
    locale: Literal["nl", "en"] = "en"


class RegistryConfig(ConfigSection):
    """How to reach the registry's MQTT broker."""

    broker: str
    ca_file: ReadableFile | None = None
    client_cert: ReadableFile | None = None
    client_key: ReadableFile | None = None
    username: str | None = None
    password_file: ReadableFile | None = None
    # Filled from password_file; never a key in the file.
    password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    topic_prefix: str = "camreg/v1"
    health_interval: Annotated[Seconds, _at_least_seconds(1)] = 60.0
    # MQTT 5 checks every PUBACK's reason code; 3.1.1 for brokers that lack it.
    mqtt_version: Literal["5", "3.1.1"] = "5"
    # A silent broker (a half-open connection) is noticed within about 1.5x this.
    keepalive: Annotated[Seconds, _at_least_seconds(2)] = 30.0

    @field_validator("mqtt_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `mqtt_version: 5` as a number.
        if isinstance(value, int | float) and not isinstance(value, bool) and value == 5:
            return "5"
        return value

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError(f"{value!r} is not a valid URL (invalid port?)") from None
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(
                "must start with mqtt:// or mqtts://, e.g. mqtts://registry.example.org"
            )
        if "@" in parts.netloc:
            raise ValueError(_NO_URL_CREDENTIALS)
        if not parts.hostname:
            raise ValueError("has no host name")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be only mqtt[s]://host[:port], without a path")
        if port == 0:
            raise ValueError("port must be between 1 and 65535")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _check_topic_prefix(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if "+" in value or "#" in value or "\0" in value:
            raise ValueError("must not contain '+', '#' or NUL")
        if value.startswith("$"):
            raise ValueError("must not start with '$' (reserved by brokers)")
        if value.startswith("/") or value.endswith("/"):
            raise ValueError("must not start or end with '/'")
        if "//" in value:
            raise ValueError("must not have empty levels ('//')")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _no_inline_password(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Self:
        result: Self = _without_inline_password(data, handler, info)
        return result

    @model_validator(mode="after")
    def _check_credentials(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.client_cert is not None and self.client_key is None:
            problems.append((("client_key",), "missing (needed with client_cert)"))
        if self.client_key is not None and self.client_cert is None:
            problems.append((("client_cert",), "missing (needed with client_key)"))
        if self.username is not None and self.password_file is None and self.password is None:
            problems.append((("password_file",), "missing (needed with username)"))
        if self.password_file is not None and self.username is None:
            problems.append((("username",), "missing (needed with password_file)"))
        if self.password_file is not None and self.password is not None:
            problems.append((("password_file",), "password given twice"))
        if problems:
            _rule_error(*problems)
        if self.password_file is not None:
            try:
                secret = _read_secret(self.password_file)
            except ValueError as exc:
                _rule_error((("password_file",), str(exc)))
            # The model is frozen; this fills a derived field once, during validation.
            object.__setattr__(self, "password", secret)
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.broker).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.broker).port or (MQTTS_PORT if self.tls else MQTT_PORT)

    @property
    def tls(self) -> bool:
        return urlsplit(self.broker).scheme == "mqtts"


class ClockConfig(ConfigSection):
    """Whether requests wait until the system clock is synchronised."""

    require_sync: bool = True


def _check_key_pem(value: str) -> str:
    if not value.lstrip().startswith("-----BEGIN "):
        raise ValueError("must be PEM text starting with '-----BEGIN PUBLIC KEY-----'")
    return value


def _check_jwk(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("kty") != "OKP" or value.get("crv") != "Ed25519" or not value.get("x"):
        raise ValueError("must be an Ed25519 public key: {kty: OKP, crv: Ed25519, x: ...}")
    if "d" in value:
        raise ValueError("holds a private key ('d'); pin only the public key")
    return value


class PoliceKey(ConfigSection):
    """One pinned police public key: a PEM file, PEM text or a JWK."""

    file: ReadableFile | None = None
    pem: Annotated[str, AfterValidator(_check_key_pem)] | None = None
    jwk: Annotated[dict[str, Any], AfterValidator(_check_jwk)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(x is not None for x in (self.file, self.pem, self.jwk)) != 1:
            _rule_error(((), "needs exactly one of file, pem or jwk"))
        try:
            self.public_key()
        except ValueError as exc:
            where = "file" if self.file else "pem" if self.pem else "jwk"
            _rule_error(((where,), str(exc)))
        return self

    def public_key(self) -> Ed25519PublicKey:
        """The key itself; ValueError when it is not a usable Ed25519 public key."""
        if self.jwk is not None:
            return jws.public_key_from_jwk(self.jwk)
        if self.pem is not None:
            return jws.public_key_from_pem(self.pem.encode())
        assert self.file is not None
        try:
            data = self.file.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {self.file}: {exc.strerror}") from None
        return police_key_from_file(data, self.file)


def police_key_from_file(data: bytes, path: Path) -> Ed25519PublicKey:
    """A police public key file's contents, PEM or JWK; ValueError says why not."""
    if data.lstrip().startswith(b"{"):
        try:
            return jws.public_key_from_jwk(json.loads(data))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
    return jws.public_key_from_pem(data)


def _check_upload_prefix(value: str) -> str:
    web_url(value)
    return value


Consent = Literal["auto", "ask", "never"]


class ConsentPolicy(ConfigSection):
    """Per request kind: approve automatically, ask the owner, or always decline."""

    order: Consent = "auto"
    voluntary: Consent = "ask"


class PoliceConfig(ConfigSection):
    """Who may request footage and within which limits."""

    keys: list[PoliceKey] = Field(default_factory=list)
    upload_allow: list[Annotated[str, AfterValidator(_check_upload_prefix)]] = Field(
        default_factory=list
    )
    max_window: Seconds = 3600.0
    consent: ConsentPolicy = Field(default_factory=ConsentPolicy)
    owner_timeout: Seconds = 72 * 3600.0
    upload_rate_limit: Bytes = 2_000_000
    # The CA of an evidence server whose HTTPS certificate is not publicly trusted (added
    # to, not instead of, the system's CAs).
    upload_ca_file: ReadableFile | None = None


class StorageConfig(ConfigSection):
    """Where recorded footage lives and how much disk it may use."""

    path: ConfigPath | None = None  # default: <agent.data_dir>/footage
    max_bytes: Bytes = 50 * 1000**3
    min_free_bytes: Annotated[int, BeforeValidator(parse_size), Field(ge=0)] = 2 * 1000**3


class Location(ConfigSection):
    """Where a camera is and what it looks at."""

    lat: Annotated[float, AfterValidator(_between(-90, 90))]
    lon: Annotated[float, AfterValidator(_between(-180, 180))]
    bearing_deg: Annotated[float, AfterValidator(_between(0, 360))] | None = None
    fov_deg: Annotated[float, AfterValidator(_between(1, 180))] | None = None
    range_m: Annotated[float, Field(gt=0)] | None = None


class Expectations(ConfigSection):
    """What the stream should deliver; less is reported as low_fps / low_resolution."""

    min_fps: Annotated[float, Field(gt=0)] = 5.0
    min_width: Annotated[int, Field(gt=0)] = 640


class RecordSettings(ConfigSection):
    """The agent records the stream itself into segments."""

    mode: Literal["record"] = "record"
    segment: Seconds = 60.0
    retention: Seconds = 7 * 86400.0


# A moment whose every field differs from the defaults strptime fills in (1900-01-01 00:00),
# so a pattern that leaves out the month or the hour cannot round-trip it.
_PATTERN_PROBE = datetime(2031, 12, 25, 13, 14, 15, tzinfo=UTC)


def _folder_problem(path: Path) -> str | None:
    """Why the agent could not list and read the files in `path`, or None."""
    if not path.exists():
        return f"no such folder: {path}"
    if not path.is_dir():
        return f"not a folder: {path}"
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        return f"cannot read the folder {path}: {exc.strerror or exc}"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"cannot read the files in {path}: permission denied"
    return None


class DirectorySettings(ConfigSection):
    """The owner's recorder writes files; the agent only reads them."""

    mode: Literal["directory"]
    path: ConfigPath
    pattern: str = "%Y%m%d_%H%M%S.mp4"

    @field_validator("path")
    @classmethod
    def _check_folder(cls, value: Path, info: ValidationInfo) -> Path:
        # Only `camera-agent check` asks: the daemon starts without the folder (a recorder
        # disk mounted late must not keep the cameras' health from being watched), logs a
        # warning and reports recording_stopped until it can read it.
        if isinstance(info.context, dict) and info.context.get("check_folders"):
            problem = _folder_problem(value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        if "%" not in value:
            raise ValueError("must contain strftime fields such as %Y%m%d_%H%M%S")
        parts = value.split("/")
        if value.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                "must be a file name relative to path, e.g. %Y%m%d_%H%M%S.mp4 or "
                "%Y/%m/%d/%H%M%S.mp4 (no leading '/', '//', '.' or '..')"
            )
        try:
            parsed = datetime.strptime(_PATTERN_PROBE.strftime(value), value)
        except ValueError as exc:
            raise ValueError(f"cannot be read back as a time ({exc})") from None
        except re.error:  # strptime's own regex: a field given twice (%m ... %m)
            raise ValueError("cannot be read back as a time (a field appears twice)") from None
        if parsed.date() != _PATTERN_PROBE.date() or (parsed.hour, parsed.minute) != (13, 14):
            raise ValueError(
                "must name the date and the time to the minute or finer, e.g. "
                "%Y%m%d_%H%M%S.mp4 (year %Y, month %m, day %d, hour %H, minute %M)"
            )
        return value


RecordingConfig = Annotated[RecordSettings | DirectorySettings, Field(discriminator="mode")]

SourceKind = Literal["rtsp", "http", "file"]
_SCHEME_KINDS: dict[str, SourceKind] = {
    "rtsp": "rtsp",
    "rtsps": "rtsp",
    "http": "http",
    "https": "http",
    "file": "file",
    "": "file",
}


class CameraConfig(ConfigSection):
    """One camera: its stream, credentials, place and what to expect of it."""

    id: Identifier
    name: str = ""
    url: str
    username: str | None = None
    password_file: ReadableFile | None = None
    password_credential: str | None = None
    # Filled from password_file or password_credential; never a key in the file.
    password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    location: Location | None = None
    expect: Expectations = Field(default_factory=Expectations)
    analysis_interval: Annotated[Seconds, _at_least_seconds(1)] = 10.0
    recording: RecordingConfig = Field(default_factory=RecordSettings)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError(f"{value!r} is not a valid URL (invalid port?)") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEME_KINDS:
            raise ValueError(
                f"unsupported scheme '{parts.scheme}:'; use rtsp://, rtsps://, http://, "
                "https://, file:// or a file path"
            )
        if scheme == "":
            base = _base_dir(info)
            path = Path(value)
            return str(base / path) if base is not None and not path.is_absolute() else value
        if scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path:
                raise ValueError("a file URL looks like file:///path/to/video.mp4")
            return value
        if "@" in parts.netloc:
            raise ValueError(_NO_URL_CREDENTIALS)
        if not parts.hostname:
            raise ValueError("has no host name")
        return value

    @field_validator("password_credential")
    @classmethod
    def _check_credential(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value or "/" in value or value in (".", ".."):
            raise ValueError("must be a systemd credential name (no '/')")
        _check_readable(_credential_path(value))
        return value

    @field_validator("recording", mode="before")
    @classmethod
    def _record_by_default(cls, value: Any) -> Any:
        if isinstance(value, dict) and "mode" not in value:
            return {**value, "mode": "record"}
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _no_inline_password(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Self:
        result: Self = _without_inline_password(data, handler, info)
        return result

    @model_validator(mode="after")
    def _fill_password(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.password_file is not None and self.password_credential is not None:
            problems.append(
                (("password_credential",), "use password_file or password_credential, not both")
            )
        has_source = self.password_file is not None or self.password_credential is not None
        if has_source and self.username is None:
            problems.append((("username",), "missing (needed with a password)"))
        if has_source and self.password is not None:
            problems.append((("password_file",), "password given twice"))
        if problems:
            _rule_error(*problems)
        source: tuple[str, Path] | None = None
        if self.password_file is not None:
            source = ("password_file", self.password_file)
        elif self.password_credential is not None:
            source = ("password_credential", _credential_path(self.password_credential))
        if source is not None:
            try:
                secret = _read_secret(source[1])
            except ValueError as exc:
                _rule_error(((source[0],), str(exc)))
            # The model is frozen; this fills a derived field once, during validation.
            object.__setattr__(self, "password", secret)
        if not self.name:
            object.__setattr__(self, "name", self.id)
        return self

    def source_kind(self) -> SourceKind:
        """rtsp for rtsp(s)://, http for http(s):// (MJPEG, HLS), file for file:// and paths."""
        return _SCHEME_KINDS[urlsplit(self.url).scheme.lower()]

    def stream_url(self) -> str:
        """The URL to open, with the credentials inserted; for files, the file's path.

        This is the only place a password enters a URL: never log the result, log
        `redact_url(...)` of it or `url` instead.
        """
        parts = urlsplit(self.url)
        kind = self.source_kind()
        if kind == "file":
            return unquote(parts.path) if parts.scheme else self.url
        if self.username is None:
            return self.url
        userinfo = quote(self.username, safe="")
        if self.password is not None:
            userinfo += ":" + quote(self.password.get_secret_value(), safe="")
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


# The private and link-local ranges of home and shop networks, and this machine itself.
LOCAL_NETWORKS = (
    "192.168.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "127.0.0.0/8",
    "::1/128",
    "fe80::/10",
    "fd00::/8",
)


def _check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an address or network (like 192.168.1.0/24)") from None
    return value.strip()


# Dot-separated labels of letters, digits and inner hyphens (RFC 1123), at most 253 long.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


def _check_host_name(value: str) -> str:
    name = value.strip().lower()
    if not _HOST_NAME.fullmatch(name):
        raise ValueError(f"{value!r} is not a host name (like camera.home.arpa)")
    return name


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: want ADDRESS:PORT, like 0.0.0.0:8081 or [::]:8081")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{value!r}: put an IPv6 address in brackets, like [::]:8081")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r}: the address must be an IP address, not a name") from None
    return host, int(port)


def _check_listen(value: str) -> str:
    _split_listen(value)
    return value


class OwnerPageConfig(ConfigSection):
    """The owner's local web page (docs/owner-page.md): off unless enabled."""

    enabled: bool = False
    listen: Annotated[str, AfterValidator(_check_listen)] = "0.0.0.0:8081"
    # Peers outside these networks get 403 (and a log line) whatever they send.
    allow: list[Annotated[str, AfterValidator(_check_network)]] = Field(
        default_factory=lambda: list(LOCAL_NETWORKS), min_length=1
    )
    # Names the page answers to besides localhost and this machine's own host name (and
    # .local); any other name in a request's Host gets 400 (DNS rebinding). IP addresses
    # always work.
    allowed_hosts: list[Annotated[str, AfterValidator(_check_host_name)]] = Field(
        default_factory=list
    )

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen)[1]


class AgentConfig(ConfigSection):
    """The whole config file."""

    agent: AgentSection
    registry: RegistryConfig
    clock: ClockConfig = Field(default_factory=ClockConfig)
    police: PoliceConfig = Field(default_factory=PoliceConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    cameras: list[CameraConfig] = Field(min_length=1)
    # E-mail, webhook or ntfy messages to the owner; none without this section.
    notifications: NotificationsConfig | None = None
    owner_page: OwnerPageConfig = Field(default_factory=OwnerPageConfig)

    @model_validator(mode="wrap")
    @classmethod
    def _unique_camera_ids(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        # Checked on the raw input, so a duplicate is reported even when other keys are wrong.
        problems: list[tuple[Loc, str]] = []
        cameras = data.get("cameras") if isinstance(data, dict) else None
        first: dict[str, int] = {}
        for index, camera in enumerate(cameras if isinstance(cameras, list) else []):
            camera_id = camera.get("id") if isinstance(camera, dict) else None
            if not isinstance(camera_id, str):
                continue
            if camera_id in first:
                problems.append(
                    (
                        ("cameras", index, "id"),
                        f"duplicate camera id '{camera_id}' (also cameras[{first[camera_id]}])",
                    )
                )
            else:
                first[camera_id] = index
        try:
            result: Self = handler(data)
        except ValidationError as exc:
            _raise_with(exc, problems)
        if problems:
            _rule_error(*problems)
        return result

    @property
    def footage_dir(self) -> Path:
        """Where recorded segments go: storage.path, or `footage` in the data directory."""
        return self.storage.path or self.agent.data_dir / "footage"

    def camera(self, camera_id: str) -> CameraConfig | None:
        """The camera with this id, if configured."""
        return next((c for c in self.cameras if c.id == camera_id), None)


def redact_url(url: str) -> str:
    """The URL with any userinfo replaced by `***@`, for logs and published messages.

    Cuts at the last '@' after the scheme: an unquoted password may itself contain
    '@', '/' or '?', so hiding a little too much beats leaking a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


# --- reading YAML with line numbers --------------------------------------------------------

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _YamlTree:
    """Plain Python data from a composed YAML node tree, plus the line of every key path."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self._active: set[int] = set()  # nodes being built, to catch recursive aliases
        self._nodes = 0
        self.lines: dict[Loc, int] = {}
        self.problems: list[tuple[Loc, str, int]] = []

    def build(self, node: yaml.Node, path: Loc, line: int) -> Any:
        self.lines.setdefault(path, line)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise ConfigError([f"{_format_loc(path)}: too many values (aliases?) (line {line})"])
        if id(node) in self._active:
            self.problems.append((path, "an alias refers to itself", line))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, line)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path, line)
            return self._scalar(node, path, line)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.Node, path: Loc, line: int) -> Any:
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problems.append((path, str(exc.problem), line))
            return None
        except (ValueError, OverflowError) as exc:
            # PyYAML builds a date from what only looks like one (2026-13-01), and such
            # errors come unmarked.
            self.problems.append(
                (path, f"{str(node.value)[:40]!r} is not a valid value ({exc})", line)
            )
            return None

    def _sequence(self, node: yaml.SequenceNode, path: Loc, line: int) -> Any:
        if node.tag != _SEQ_TAG:
            self.problems.append((path, f"unsupported YAML tag {node.tag}", line))
        return [
            self.build(item, (*path, index), item.start_mark.line + 1)
            for index, item in enumerate(node.value)
        ]

    def _mapping(self, node: yaml.MappingNode, path: Loc, line: int) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self.problems.append((path, f"unsupported YAML tag {node.tag}", line))
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append((path, "a key must be plain text", key_line))
                continue
            key = key_node.value  # the text as written: `on:` stays "on", not True
            if key in result:
                self.problems.append((path, f"duplicate key '{key}'", key_line))
                continue
            result[key] = self.build(value_node, (*path, key), key_line)
        # `<<: *defaults` merges keys not given explicitly; earlier sources win.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                merged = self.build(source, path, source.start_mark.line + 1)
                if not isinstance(merged, dict):
                    self.problems.append((path, "'<<' must merge a mapping", line))
                    continue
                for key, value in merged.items():
                    result.setdefault(key, value)
        return result


def _syntax_error(name: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = f" (line {mark.line + 1})" if mark is not None else ""
    problem = exc.problem or exc.context or "invalid YAML"
    return ConfigError([f"{name}: YAML syntax error: {problem}{line}"])


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int:
    """The line of the key path, or of the nearest enclosing one (for a missing key)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def load_config(path: str | Path, *, check_folders: bool = False) -> AgentConfig:
    """Read and validate the config file; ConfigError lists every problem found.

    `check_folders` (for `camera-agent check`) also requires each directory-mode
    camera's `recording.path` to be a readable folder now."""
    return load_yaml_model(path, AgentConfig, {"check_folders": check_folders})


def load_yaml_model(
    path: str | Path, model: type[M], context: Mapping[str, Any] | None = None
) -> M:
    """Read a YAML file into `model`; ConfigError lists every problem by key path and line.

    Shared with the registry's config: one YAML reader with one error format."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc

    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character (NUL, ESC, ...) in the text
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            [
                f"{path}: YAML syntax error: character #x{exc.character:04x} is not allowed "
                f"in YAML text (line {line})"
            ]
        ) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([f"{path}: the file is empty; see config.example.yaml"])
        tree = _YamlTree(loader)
        data = tree.build(node, (), node.start_mark.line + 1)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(str(path), exc) from exc
    except RecursionError as exc:
        raise ConfigError([f"{path}: nested too deeply"]) from exc
    finally:
        loader.dispose()

    problems = [(line, f"{_format_loc(loc)}: {message}") for loc, message, line in tree.problems]
    config: M | None = None
    try:
        config = model.model_validate(
            data,
            context={"base_dir": path.absolute().parent, "from_file": True, **(context or {})},
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = _clean_loc(error)
            line = _line_of(tree.lines, loc)
            problems.append((line, f"{_format_loc(loc)}: {_message(error)}"))
    if problems or config is None:
        problems.sort(key=lambda problem: problem[0])
        raise ConfigError([f"{text} (line {line})" for line, text in problems])
    return config
