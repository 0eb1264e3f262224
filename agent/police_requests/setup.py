"""From the owner's config to the request desk: what it checks against, and the desk
itself with its uploader, as the running agent builds it, telling the owner's
notifications the plain facts of each request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.audit import AuditLog
from agent.clock import ClockState
from agent.config import AgentConfig
from agent.crypto import device_key
from agent.evidence.upload import Uploader, session_trusting
from agent.notify.events import RequestFacts
from agent.police_requests.delivery import Delivery
from agent.police_requests.desk import RequestDesk
from agent.police_requests.desk_terms import Consent, StatusSink
from agent.police_requests.early_copy import FetchFootage
from agent.police_requests.keyset import PoliceKeySets
from agent.police_requests.store import RequestStore, StoredRequest
from agent.police_requests.token import Policy, upload_allowed
from agent.recording.index import SegmentIndex
from contract import jws

log = logging.getLogger(__name__)


def policy_of(config: AgentConfig, key_sets: PoliceKeySets | None = None) -> Policy:
    keys = [entry.public_key() for entry in config.police.keys]  # checked when loaded
    return Policy(
        agent_id=config.agent.id,
        police_keys={jws.thumbprint(key): key for key in keys},
        cameras=frozenset(camera.id for camera in config.cameras),
        max_window=timedelta(seconds=config.police.max_window),
        upload_allow=tuple(config.police.upload_allow),
        key_sets=key_sets,
    )


def police_key_sets(config: AgentConfig) -> PoliceKeySets | None:
    """The key set held on disk, judged against the pinned root keys; None when the owner
    pinned no root key (then no key set is listened to: small set-ups pin `police.keys`)."""
    roots = [entry.public_key() for entry in config.police.root_keys]  # checked when loaded
    if not roots:
        return None
    return PoliceKeySets(config.agent.data_dir, {jws.thumbprint(key): key for key in roots})


def consent_of(config: AgentConfig) -> Consent:
    return Consent(
        order=config.police.consent.order,
        voluntary=config.police.consent.voluntary,
        owner_timeout=timedelta(seconds=config.police.owner_timeout),
        require_clock=config.clock.require_sync,
    )


def request_desk(
    config: AgentConfig,
    *,
    store: RequestStore,
    index: SegmentIndex,
    audit: AuditLog,
    publish_status: StatusSink,
    clock: Callable[[], ClockState],
    key: Ed25519PrivateKey | None,
    key_problem: str | None,
    on_state: Callable[[RequestFacts], None],
    key_sets: PoliceKeySets | None = None,
    fetch: FetchFootage | None = None,
    oldest: Callable[[], datetime | None] | None = None,
) -> RequestDesk:
    """The daemon's desk: the config's policy and consent, an uploader that keeps to the
    allow-list, and the agent's store, index, audit log and status topic; `on_state` is
    told each accepted request's state as it is published."""
    data_dir = config.agent.data_dir
    if key is not None:
        log.info("device key %s signs evidence manifests", device_key.describe(key)["kid"])
    policy = policy_of(config, key_sets)
    consent = consent_of(config)
    uploader = Uploader(
        session_trusting(config.police.upload_ca_file),
        rate_limit_bytes_per_s=config.police.upload_rate_limit or None,
        # The upload URL was checked against the allow-list; so is every URL the
        # server hands back.
        url_allowed=lambda url: upload_allowed(url, policy.upload_allow),
    )
    desk = RequestDesk(
        agent_id=config.agent.id,
        policy=policy,
        consent=consent,
        store=store,
        index=index,
        audit=audit,
        publish_status=publish_status,
        clock=clock,
        device_key=key,
        key_problem=key_problem,
        evidence_dir=data_dir / "evidence",
        uploader=Delivery(store, audit, uploader),
        on_state=lambda request: on_state(facts_of(request, consent)),
        fetch=fetch,
        oldest=oldest,
    )
    if key_sets is not None:
        key_sets.on_arrival = desk.wake
        key_sets.audit = audit
    return desk


def facts_of(request: StoredRequest, consent: Consent) -> RequestFacts:
    """What the owner is told of a request: no upload URL, token or progress."""
    return RequestFacts(
        id=request.id,
        kind=request.kind,
        case=request.case,
        requester=request.requester,
        basis=request.basis,
        cameras=request.cameras,
        start=request.start,
        end=request.end,
        state=request.state,
        reason=request.reason,
        decision=consent.policy_for(request.kind),
    )
