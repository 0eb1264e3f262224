"""Rows a test puts straight into the registry's database, where the flow that makes them
(a police officer preparing a request on the pages) is not what the test is about."""

from __future__ import annotations

import hashlib
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, insert

from agent.crypto import jws
from registry.db.schema import agents
from registry.db.schema import requests as requests_table


def add_enrolled_agent(engine: Engine, device: Ed25519PublicKey, agent_id: str = "shop-42") -> None:
    """An agent enrolled with its device key, as enrolment stores it."""
    with engine.begin() as db:
        db.execute(
            insert(agents).values(
                agent_id=agent_id,
                public_key=jws.public_jwk(device)["x"],
                key_thumbprint=jws.thumbprint(device),
                enrolled_at=time.time(),
                audit_entries=0,
            )
        )


def add_prepared_request(
    engine: Engine,
    request_id: str,
    token: str,
    case: str,
    *,
    requester: str = "det. Jansen",
    reason: str = "burglary",
    prepared_by: str = "jansen",
) -> None:
    """An order for camera front of shop-42, for the hour before last, prepared as the
    police pages prepare one: only the SHA-256 of its upload token is kept."""
    now = time.time()
    with engine.begin() as db:
        db.execute(
            insert(requests_table).values(
                request_id=request_id,
                agent_id="shop-42",
                cameras_json='["front"]',
                window_start=now - 3600,
                window_end=now - 1800,
                kind="order",
                case_ref=case,
                basis="Sv 126nd",
                requester=requester,
                reason=reason,
                claims_json="{}",
                upload_token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                prepared_by=prepared_by,
                prepared_at=now,
            )
        )
