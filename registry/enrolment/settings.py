"""The `enrolment:` section of the registry config: codes, and how agents get broker logins."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from contract.config import ConfigPath, ConfigSection, Seconds

__all__ = ["DEFAULT_CODE_TTL_S", "EnrolmentSettings"]

DEFAULT_CODE_TTL_S = 24 * 3600.0


class EnrolmentSettings(ConfigSection):
    """One-time codes and broker credentials for agents that enrol.

    Without `password_file` the registry hands out no password: a deployment with client
    certificates (docs/mosquitto/README.md, listener 1) signs each agent's certificate
    itself and only the device key and cameras are enrolled."""

    code_ttl: Seconds = DEFAULT_CODE_TTL_S
    # The mosquitto password file (`password_file` in mosquitto.conf), updated with
    # `mosquitto_passwd`; it must exist and be writable by the registry.
    password_file: ConfigPath | None = None
    # mosquitto re-reads its password file on SIGHUP. mosquitto writes a pid file only when
    # it runs as a daemon (-d), so under systemd use reload_command instead.
    broker_pid_file: ConfigPath | None = None
    reload_command: list[str] | None = None
    # The broker address agents are told to use; default: the registry's own mqtt.broker,
    # which may be an internal address agents cannot reach.
    broker_url: str | None = None
    # Failed attempts per client address within failure_window before it gets 429.
    max_failures: Annotated[int, Field(ge=1, le=10_000)] = 10
    failure_window: Seconds = 15 * 60.0

    @field_validator("reload_command")
    @classmethod
    def _check_command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError(
                "must be a command and its arguments, e.g. [systemctl, reload, mosquitto]"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        return value
