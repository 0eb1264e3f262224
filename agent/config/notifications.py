"""The `notifications:` section of the owner's config: e-mail, a webhook or ntfy, which
events, how often. The rest of `agent.notify` reads it (through `agent.notify.config`).

The same conventions as every section: unknown keys refused, durations with units, secrets
only from files relative to the config file, errors reported by key path."""

from __future__ import annotations

from datetime import time
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Self, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contract.config.fields import (
    ConfigPath,
    Loc,
    ReadableFile,
    Seconds,
    is_loopback,
    rule_error,
    web_url,
)
from contract.config.fields import read_secret as read_secret_file

EventKind = Literal[
    "camera_failed",
    "camera_recovered",
    "storage_low",
    "clock_unsynced",
    "request_received",
    "request_completed",
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

SMTP_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def _rule_error(loc: Loc, message: str) -> NoReturn:
    rule_error((loc, message))


def read_secret(path: Path) -> SecretStr:
    """A secret file's one line (a token or password); ValueError says what is wrong."""
    secret = read_secret_file(path)
    if "\n" in secret.get_secret_value() or "\r" in secret.get_secret_value():
        raise ValueError(f"{path} holds more than one line")
    return secret


SecretFile = ConfigPath


def _check_http_url(value: str) -> str:
    web_url(value, credentials="put a token in token_file, not in the URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


def _check_address(value: str) -> str:
    """One mail address (`shop@example.org` or `Shop <shop@example.org>`), no header tricks."""
    if any(c in value for c in "\r\n\0"):
        raise ValueError("must be one line")
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not (at and local and "." in domain.strip(".")) or any(c.isspace() for c in address):
        raise ValueError(f"{value!r} is not a mail address like owner@example.org")
    return value


MailAddress = Annotated[str, AfterValidator(_check_address)]


def _parse_clock_time(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 18:30 as the sexagesimal number 1110 (18*60 + 30).
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        hours, sep, minutes = value.strip().partition(":")
        valid = sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2
        if valid and int(hours) < 24 and int(minutes) < 60:
            return time(int(hours), int(minutes))
        raise ValueError('must be a time of day like "08:00" (hours:minutes, 24-hour)')
    return value


class NotifySection(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True
    )


class _SecretFromFile(NotifySection):
    """Reads `<name>_file` into the excluded field `<name>` once, while validating."""

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any, info: ValidationInfo) -> Any:
        # The secret fields may be set in code (tests), never written in a config file.
        from_file = isinstance(info.context, dict) and info.context.get("from_file")
        for key in ("password", "token"):
            if from_file and isinstance(data, dict) and key in data and key in cls.model_fields:
                _rule_error(
                    (key,), f"unknown key; a {key} never goes in the config: use {key}_file"
                )
        return data

    def _load(self, file_key: str, secret_key: str) -> None:
        path = getattr(self, file_key)
        if path is None:
            return
        try:
            secret = read_secret(path)
        except ValueError as exc:
            _rule_error((file_key,), str(exc))
        # The model is frozen; this fills a derived field once, during validation.
        object.__setattr__(self, secret_key, secret)


class EmailSettings(_SecretFromFile):
    """Mail through the owner's provider (SMTP with STARTTLS or SMTPS) or a local relay."""

    model_config = ConfigDict(populate_by_name=True)

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default: by security
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_file: SecretFile | None = None
    password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    sender: MailAddress = Field(alias="from")
    to: Annotated[list[MailAddress], Field(min_length=1)]
    # The CA of a mail server whose certificate is not publicly trusted (added to the system's).
    ca_file: ReadableFile | None = None
    timeout: Seconds = 30.0

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in "/@ ") or value.count(":") == 1:
            raise ValueError("must be a host name such as smtp.example.org (no URL, no port)")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.security == "none" and not is_loopback(self.host):
            _rule_error(
                ("security",),
                "must be starttls or ssl for a mail server on another machine "
                "(none only for a relay on 127.0.0.1 or localhost)",
            )
        if self.username is not None and self.password_file is None:
            _rule_error(("password_file",), "missing (needed with username)")
        if self.password_file is not None and self.username is None:
            _rule_error(("username",), "missing (needed with password_file)")
        self._load("password_file", "password")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or SMTP_PORTS[self.security]


class WebhookSettings(_SecretFromFile):
    """A JSON POST of each notification to the owner's own service."""

    url: HttpUrl
    token_file: SecretFile | None = None  # sent as `Authorization: Bearer <token>`
    token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    timeout: Seconds = 10.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._load("token_file", "token")
        return self


class NtfySettings(_SecretFromFile):
    """Push to a phone through ntfy (https://ntfy.sh/TOPIC or a self-hosted server)."""

    url: HttpUrl
    token_file: SecretFile | None = None  # an ntfy access token, for protected topics
    token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    timeout: Seconds = 10.0

    @field_validator("url")
    @classmethod
    def _has_topic(cls, value: str) -> str:
        if not urlsplit(value).path.strip("/"):
            raise ValueError("must name the topic, e.g. https://ntfy.sh/my-shop-cameras")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._load("token_file", "token")
        return self


class NotificationsConfig(NotifySection):
    """Who hears about failures and requests, how, and how often."""

    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    ntfy: NtfySettings | None = None
    events: list[EventKind] = Field(default_factory=lambda: list(EVENT_KINDS))
    # At most one message per camera (or request, or the agent) and event kind this often;
    # what is held back is counted and sent with the next one.
    min_interval: Seconds = 3600.0
    # daily: one summary at digest_at (local time) instead of single messages, except for
    # a new request, which may need the owner's decision.
    digest: Literal["none", "daily"] = "none"
    digest_at: Annotated[time, BeforeValidator(_parse_clock_time)] = time(8, 0)

    @field_validator("digest", mode="before")
    @classmethod
    def _off_is_none(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted `off` / `no` as false.
        return "none" if value is False else value

    @model_validator(mode="after")
    def _needs_a_channel(self) -> Self:
        if self.email is None and self.webhook is None and self.ntfy is None:
            _rule_error((), "needs at least one of email, webhook or ntfy")
        return self
