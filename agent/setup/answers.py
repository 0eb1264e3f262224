"""What the owner answered: the cameras, the registry and the police key, as the questions
fill them in and the config document and enrolment read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Camera:
    id: str
    name: str
    # The stream, probed as it is entered; for a camera picked from discovery, the stream
    # its ONVIF device (`onvif_url`) gives now, which is not written: the agent asks the
    # device at every connect.
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    location: dict[str, float] = field(default_factory=dict)
    onvif_url: str | None = None


@dataclass
class Registry:
    broker: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None  # already saved (enrolment)
    topic_prefix: str | None = None
    enrol_url: str | None = None
    enrol_code: str | None = None


@dataclass
class PoliceTrust:
    """The police key the owner checked by its fingerprint, and where evidence may go."""

    key: bytes = field(repr=False)
    kid: str
    upload_allow: str
