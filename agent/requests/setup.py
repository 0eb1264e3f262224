"""From the owner's config to what the request desk checks against."""

from __future__ import annotations

from datetime import timedelta

from agent.config import AgentConfig
from agent.crypto import jws
from agent.requests.desk import Consent
from agent.requests.token import Policy


def policy_of(config: AgentConfig) -> Policy:
    keys = [entry.public_key() for entry in config.police.keys]  # checked when loaded
    return Policy(
        agent_id=config.agent.id,
        police_keys={jws.thumbprint(key): key for key in keys},
        cameras=frozenset(camera.id for camera in config.cameras),
        max_window=timedelta(seconds=config.police.max_window),
        upload_allow=tuple(config.police.upload_allow),
    )


def consent_of(config: AgentConfig) -> Consent:
    return Consent(
        order=config.police.consent.order,
        voluntary=config.police.consent.voluntary,
        owner_timeout=timedelta(seconds=config.police.owner_timeout),
        require_clock=config.clock.require_sync,
    )
