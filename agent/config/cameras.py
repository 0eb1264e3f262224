"""The `cameras:` section: each camera's stream (its URL, or its ONVIF device to ask for
one), credentials, place, what to expect of it and how it is recorded; and `redact_url`,
the one way a stream URL is logged."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from agent.config.recording import RecordingConfig, RecordSettings
from contract.config.fields import NO_URL_CREDENTIALS as _NO_URL_CREDENTIALS
from contract.config.fields import ConfigSection, Identifier, Loc, ReadableFile, Seconds
from contract.config.fields import at_least_seconds as _at_least_seconds
from contract.config.fields import base_dir as _base_dir
from contract.config.fields import check_readable as _check_readable
from contract.config.fields import raise_with as _raise_with
from contract.config.fields import read_secret as _read_secret
from contract.config.fields import rule_error as _rule_error
from contract.config.fields import without_inline_password as _without_inline_password


def _between(low: float, high: float) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


def _credential_path(name: str) -> Path:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ValueError(
            "CREDENTIALS_DIRECTORY is not set; systemd sets it for a unit with "
            f"LoadCredential={name}:<file>"
        )
    return Path(directory) / name


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


SourceKind = Literal["rtsp", "http", "file"]
_SCHEME_KINDS: dict[str, SourceKind] = {
    "rtsp": "rtsp",
    "rtsps": "rtsp",
    "http": "http",
    "https": "http",
    "file": "file",
    "": "file",
}


class OnvifDeviceConfig(ConfigSection):
    """A camera's ONVIF device service (docs/onvif.md): where the agent asks for the stream
    URI when `url` is not given; `camera-agent discover` shows it. Checked for its shape
    only: `check` works without the network."""

    url: str

    @field_validator("url")
    @classmethod
    def _check_device_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError(f"{value!r} is not a valid URL (invalid port?)") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(
                "must be the device's http:// or https:// address, such as "
                "http://192.168.1.20/onvif/device_service"
            )
        if "@" in parts.netloc:
            raise ValueError(_NO_URL_CREDENTIALS)
        if not parts.hostname:
            raise ValueError("has no host name")
        return value


_NO_STREAM = (
    "missing: give url (the stream) or onvif (the camera's ONVIF device address, see docs/onvif.md)"
)
# A stream URI an ONVIF device hands back is opened only if it is one of these: a device
# (or whoever answers at its address) must not make the agent read a local file.
ONVIF_STREAM_SCHEMES = frozenset({"rtsp", "rtsps"})


class CameraConfig(ConfigSection):
    """One camera: its stream, credentials, place and what to expect of it."""

    id: Identifier
    name: str = ""
    # The stream; without it, `onvif` names the device to ask for one. With both, `url` is
    # the stream and `onvif` is only asked for the camera's clock.
    url: str | None = None
    onvif: OnvifDeviceConfig | None = None
    # The camera's low-resolution sub-stream, analysed instead of the main stream; `url`
    # (or the stream `onvif` gives) is still what is recorded. Same credentials, checks and
    # redaction as `url`.
    analysis_url: str | None = None
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

    @field_validator("url", "analysis_url")
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
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

    @model_validator(mode="wrap")
    @classmethod
    def _url_or_onvif(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        """Either key gives the stream; without both, say so beside every other error."""
        if not (isinstance(data, dict) and data.get("url") is None and data.get("onvif") is None):
            result: Self = handler(data)
            return result
        try:
            handler(data)
        except ValidationError as exc:
            _raise_with(exc, [(("url",), _NO_STREAM)])
        _rule_error((("url",), _NO_STREAM))

    @model_validator(mode="after")
    def _recorder_device(self) -> Self:
        if self.recording.mode == "onvif" and self.onvif is None:
            _rule_error(
                (
                    ("onvif",),
                    "missing: recording mode onvif reads the recorder named by onvif.url "
                    "(the recorder's ONVIF device address, see docs/recorders.md)",
                )
            )
        return self

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
        """rtsp for rtsp(s):// and for a stream asked of an ONVIF device, http for http(s)://
        (MJPEG, HLS), file for file:// and paths."""
        if self.url is None:
            return "rtsp"
        return _SCHEME_KINDS[urlsplit(self.url).scheme.lower()]

    def shown_url(self) -> str:
        """What logs and messages name the camera's stream by: the URL without credentials,
        or the ONVIF device it is asked of."""
        if self.url is not None:
            return redact_url(self.url)
        assert self.onvif is not None  # the model's rule: url or onvif
        return f"onvif {redact_url(self.onvif.url)}"

    def stream_url(self) -> str:
        """The URL to open, with the credentials inserted; for files, the file's path.
        Only for a camera with `url`: one with only `onvif` asks its device each time
        (`onvif_stream_url`).

        This is one of the two places a password enters a URL: never log the result, log
        `redact_url(...)` of it or `url` instead.
        """
        if self.url is None:
            raise ValueError(f"camera {self.id} has no url: its stream is asked of its device")
        return self._to_open(self.url)

    def analysis_stream_url(self) -> str | None:
        """`analysis_url` to open, with the credentials inserted as for `url`; None without
        a sub-stream. The other place a password enters a URL besides `stream_url` and
        `onvif_stream_url`: never log the result, log `redact_url(analysis_url)`."""
        return None if self.analysis_url is None else self._to_open(self.analysis_url)

    def _to_open(self, url: str) -> str:
        """A configured stream URL as it is opened: a file's path, or the URL with the
        camera's credentials."""
        parts = urlsplit(url)
        if _SCHEME_KINDS[parts.scheme.lower()] == "file":
            return unquote(parts.path) if parts.scheme else url
        return self._with_credentials(url)

    def onvif_stream_url(self, uri: str) -> str:
        """A stream URI the camera's ONVIF device gave, checked (rtsp:// or rtsps://, with a
        host) and with the camera's credentials inserted as for `url`, unless the device
        put its own in. ValueError names what is wrong with it."""
        try:
            parts = urlsplit(uri)
        except ValueError:
            raise ValueError("the device gave a stream URI that is not a URL") from None
        if parts.scheme.lower() not in ONVIF_STREAM_SCHEMES or not parts.hostname:
            shown = "".join(c if c.isprintable() else "?" for c in uri)[:200]
            raise ValueError(f"the device gave a stream URI that is not rtsp:// ({shown!r})")
        if "@" in parts.netloc:
            return uri
        return self._with_credentials(uri)

    def _with_credentials(self, url: str) -> str:
        parts = urlsplit(url)
        if self.username is None:
            return url
        userinfo = quote(self.username, safe="")
        if self.password is not None:
            userinfo += ":" + quote(self.password.get_secret_value(), safe="")
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def redact_url(url: str) -> str:
    """The URL with any userinfo replaced by `***@`, for logs and published messages.

    Cuts at the last '@' after the scheme: an unquoted password may itself contain
    '@', '/' or '?', so hiding a little too much beats leaking a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
