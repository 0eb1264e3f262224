"""The registry's YAML config (`/etc/camera-registry/config.yaml`): pydantic models with the
agent's rules and error format (key path and line, exit 78)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from contract.config import (
    BrokerConfig,
    ConfigPath,
    ConfigSection,
    ReadableFile,
    Seconds,
    load_yaml_model,
)
from contract.config.fields import at_least_seconds
from registry.enrolment.settings import EnrolmentSettings
from registry.evidence.timestamp import load_roots

__all__ = [
    "EnrolmentSettings",
    "EvidenceSettings",
    "HttpSettings",
    "LoginSettings",
    "MapSettings",
    "ServerConfig",
    "load_server_config",
]

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
DEFAULT_DATA_DIR = Path("/var/lib/camera-registry")
DEFAULT_CONFIG = Path("/etc/camera-registry/config.yaml")


class HttpSettings(ConfigSection):
    """Where the dashboard, the API and the tus intake listen."""

    listen: str = "127.0.0.1:8080"
    # The address agents and officers use (behind a reverse proxy it differs from listen);
    # upload URLs in requests are built from it.
    public_url: str | None = None
    tls_cert: ReadableFile | None = None
    tls_key: ReadableFile | None = None

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL, e.g. https://registry.example.org")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        if self.public_url is not None:
            return self.public_url
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{self.listen}"


class MapSettings(ConfigSection):
    """The dashboard map. With no tiles reachable the cameras still show on a blank map."""

    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    attribution: str = "© OpenStreetMap contributors"
    center: tuple[Latitude, Longitude] = (52.1, 5.3)
    zoom: Annotated[int, Field(ge=1, le=19)] = 8


class LoginSettings(ConfigSection):
    session_lifetime: Seconds = 12 * 3600.0
    lockout_after: Annotated[int, Field(ge=1, le=100)] = 5  # failed logins in a row
    lockout_for: Seconds = 15 * 60.0
    # Failed logins in a row from one address, whatever user names it tries, before that
    # address waits lockout_for: guessing across many accounts stays slow too. Looser than
    # lockout_after, since a police station's officers may share one address.
    address_lockout_after: Annotated[int, Field(ge=1, le=1000)] = 20


class EvidenceSettings(ConfigSection):
    path: ConfigPath | None = None  # default: data_dir/evidence
    # How long an officer has to sign and submit, and the agent to upload, after preparing.
    request_validity: Seconds = 24 * 3600.0
    max_file_bytes: Annotated[int, Field(gt=0)] = 20 * 1000**3
    # The RFC 3161 time-stamping authority that stamps each package's signed manifest when
    # it arrives (docs/evidence.md), and the PEM file of the root certificates its stamps
    # must chain to. Both or neither.
    tsa_url: str | None = None
    tsa_roots: ReadableFile | None = None

    @field_validator("tsa_url")
    @classmethod
    def _check_tsa_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("tsa_roots")
    @classmethod
    def _check_tsa_roots(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_roots(value)  # ValueError saying what is wrong with the file
        return value

    @model_validator(mode="after")
    def _tsa_pair(self) -> Self:
        if (self.tsa_url is None) != (self.tsa_roots is None):
            raise ValueError("tsa_url and tsa_roots go together")
        return self


class ServerConfig(ConfigSection):
    data_dir: ConfigPath = DEFAULT_DATA_DIR
    database: str | None = None  # default: sqlite in data_dir; or postgresql://...
    mqtt: BrokerConfig
    http: HttpSettings = HttpSettings()
    map: MapSettings = MapSettings()
    login: LoginSettings = LoginSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    enrolment: EnrolmentSettings = EnrolmentSettings()
    # Where no bearing is known, a camera "could have seen" points within this distance.
    search_radius_m: Annotated[float, Field(gt=0, le=1000)] = 30.0
    # How long each camera's state and footage intervals are kept for the police search
    # at a moment (registry/ingest/retention.py); agents keep footage about 30 days.
    history_retention: Annotated[Seconds, at_least_seconds(3600)] = 30 * 86400.0
    # Ingest workers share the agents' messages through this MQTT shared-subscription group.
    share_group: str = "camera-registry"

    @field_validator("database")
    @classmethod
    def _check_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("sqlite", "postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError("must be sqlite:///PATH or postgresql://USER@HOST/DB")
        return value

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data_dir / 'registry.sqlite'}"

    @property
    def evidence_dir(self) -> Path:
        return self.evidence.path or self.data_dir / "evidence"


def load_server_config(path: str | Path = DEFAULT_CONFIG) -> ServerConfig:
    """Read and validate the registry config; ConfigError lists every problem found."""
    return load_yaml_model(path, ServerConfig)
