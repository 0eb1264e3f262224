"""The `registry:` section: how the agent reaches the registry's MQTT broker.

`BrokerConfig` is the broker connection settings, whoever connects: the agent reads it from
its `registry:` section, the registry's own config uses it for its `mqtt:` section."""

from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from contract.config.fields import NO_URL_CREDENTIALS as _NO_URL_CREDENTIALS
from contract.config.fields import ConfigSection, Loc, ReadableFile, Seconds
from contract.config.fields import at_least_seconds as _at_least_seconds
from contract.config.fields import read_secret as _read_secret
from contract.config.fields import rule_error as _rule_error
from contract.config.fields import without_inline_password as _without_inline_password

MQTT_PORT = 1883
MQTTS_PORT = 8883


class BrokerConfig(ConfigSection):
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
