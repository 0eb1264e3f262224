"""Which agent ids enrolment may hand out: never a broker user of the registry's own.

An agent's broker username is its agent id, so enrolling an id that the registry itself
logs in with (its ingest workers, the web process's relay) would give the code's holder a
new password for that account (locking the workers out), and the ACL's `pattern` lines
apply to every username. The registry's users follow the names of docs/mosquitto and
docs/registry-ingest.md: `registry`, `camera-registry`, the configured `mqtt.username`,
the CN of its client certificate, and each of them with a suffix (`camera-registry-2` for
worker 2, `camera-registry-web` for a separate relay); the shared-subscription group
names the workers' client ids (`camera-registry-myhost`), which an agent's client id must
not collide with either.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from registry.config import ServerConfig

__all__ = ["AGENT_ID_PATTERN", "SERVICE_NAMES", "agent_id_problem", "service_names"]

AGENT_ID_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}$")  # the enrolment request's agent_id
# The registry's users in the documented broker set-up, whatever this config says: a
# second registry process may run with another config against the same broker.
SERVICE_NAMES = frozenset({"registry", "camera-registry"})


def service_names(config: ServerConfig) -> frozenset[str]:
    """The names of the registry's own broker users and client ids under this config."""
    own = {config.mqtt.username, config.share_group}
    if config.mqtt.client_cert is not None:
        # With use_identity_as_username the certificate's CN is the registry's username.
        own.add(_common_name(config.mqtt.client_cert))
    return SERVICE_NAMES | {name.lower() for name in own if name}


def _common_name(path: Path) -> str | None:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None  # the ingest worker says what is wrong with it when it connects
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


def agent_id_problem(agent_id: str, services: Collection[str]) -> str | None:
    """Why `agent_id` cannot be enrolled, or None if it can."""
    if not AGENT_ID_PATTERN.match(agent_id):
        return f"{agent_id!r} is not an agent id: 1 to 64 of a-z, 0-9, _ and -"
    for name in services:
        if agent_id == name or agent_id.startswith(f"{name}-"):
            return (
                f"{agent_id!r} is the registry's own broker user or one of its workers' "
                f"({name!r}, {name}-2, ...); it can never be an agent id"
            )
    return None
