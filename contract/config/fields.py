"""Key and field parsing shared by every section of the owner's config and of the
registry's: the section base model, field types (identifiers, paths relative to the config
file, durations, sizes, web URLs), secrets read from files, and the config-rule errors a
section raises at a key path.

The loader (yaml_loader.py) turns these errors into "key path: what was wrong (line N)"."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import SplitResult, urlsplit

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
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from contract.durations import parse_duration, parse_size

Loc = tuple[str | int, ...]

_ID = re.compile(r"[a-z0-9_-]{1,64}")
_ID_MESSAGE = "must be 1 to 64 characters: lower-case letters a-z, digits, '-' or '_'"
NO_URL_CREDENTIALS = "put credentials in username and password_file, not the URL"
_NO_INLINE_PASSWORD = (
    "unknown key; a password never goes in the config: "
    "use password_file or password_credential (a systemd credential)"
)


# Clear text is allowed only to these: nothing on the way can overhear it.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str | None) -> bool:
    return host in LOOPBACK_HOSTS


def web_url(value: str, *, credentials: str = "must not contain credentials") -> SplitResult:
    """The parts of a URL the agent sends secrets or footage to: https://, or http:// to
    this machine (a local relay, the demo, tests), with a host and no login in it.
    ValueError names the first problem; `credentials` says where a login belongs instead."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"{value!r} is not a valid URL (invalid port?)") from None
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))):
        raise ValueError("must be an https:// URL (http:// only for 127.0.0.1 or localhost)")
    if not parts.hostname:
        raise ValueError("has no host name")
    if "@" in parts.netloc:
        raise ValueError(credentials)
    return parts


def rule_details(problems: Iterable[tuple[Loc, str]]) -> list[InitErrorDetails]:
    return [
        InitErrorDetails(
            type=PydanticCustomError("config_rule", "{message}", {"message": message}),
            loc=loc,
            input=None,
        )
        for loc, message in problems
    ]


def rule_error(*problems: tuple[Loc, str]) -> NoReturn:
    """Raise config-rule errors at locations relative to the model being validated."""
    raise ValidationError.from_exception_data("config", rule_details(problems))


def without_inline_password(
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
        raise_with(exc, [(("password",), _NO_INLINE_PASSWORD)])
    rule_error((("password",), _NO_INLINE_PASSWORD))


def raise_with(exc: ValidationError, problems: list[tuple[Loc, str]]) -> NoReturn:
    """Re-raise pydantic's errors together with extra config-rule errors."""
    details = rule_details(problems)
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


def base_dir(info: ValidationInfo) -> Path | None:
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    return base if isinstance(base, Path) else None


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Relative paths in the config are relative to the config file's directory."""
    base = base_dir(info)
    return base / value if base is not None and not value.is_absolute() else value


def check_readable(value: Path) -> Path:
    try:
        with value.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {value}: {exc.strerror or exc}") from None
    return value


def read_secret(path: Path) -> SecretStr:
    """A password file's content without its trailing newline."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ValueError(f"{path} is empty")
    return SecretStr(text)


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(_ID_MESSAGE)
    return value


def at_least_seconds(minimum: float) -> AfterValidator:
    def check(value: float) -> float:
        if value < minimum:
            raise ValueError(f"must be at least {minimum:g}s")
        return value

    return AfterValidator(check)


ConfigPath = Annotated[Path, AfterValidator(resolve_path)]
ReadableFile = Annotated[Path, AfterValidator(resolve_path), AfterValidator(check_readable)]
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Identifier = Annotated[str, AfterValidator(_check_id)]


class ConfigSection(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True
    )
