"""Field types and rule errors shared by every section of the owner's config, including
sections defined in their own packages (notifications), which cannot import agent.config
(it imports them)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, NoReturn
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.durations import parse_duration, parse_size

Loc = tuple[str | int, ...]

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


ConfigPath = Annotated[Path, AfterValidator(resolve_path)]
ReadableFile = Annotated[Path, AfterValidator(resolve_path), AfterValidator(check_readable)]
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
