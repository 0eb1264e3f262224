"""Rows a test puts straight into the registry's database, where the flow that makes them
(a police officer preparing a request on the pages) is not what the test is about."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, insert

from contract import jws
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


# The window tests/registry/evidence/test_evidence_verify.py's export_package records (two
# one-minute segments of camera front): a package for a request of this window is the request's.
PACKAGE_WINDOW = (
    datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
    datetime(2026, 11, 27, 12, 2, tzinfo=UTC),
)
# Long enough for any test's uploads; the intake refuses uploads after `exp`.
VALIDITY = timedelta(hours=2)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def add_prepared_request(
    engine: Engine,
    request_id: str,
    token: str,
    case: str,
    *,
    requester: str = "det. Jansen",
    reason: str = "burglary",
    prepared_by: str = "jansen",
    window: tuple[datetime, datetime] = PACKAGE_WINDOW,
    sent: bool = True,
) -> None:
    """An order for camera front of shop-42 for `window`, prepared as the police pages
    prepare one (the claims without the upload token, only its SHA-256 kept) and, when
    `sent`, signed and relayed to the agent, so the intake takes its uploads."""
    now = time.time()
    claims = {
        "aud": "shop-42",
        "jti": request_id,
        "iat": int(now),
        "exp": int(now + VALIDITY.total_seconds()),
        "kind": "order",
        "case": case,
        "cameras": ["front"],
        "window": {"start": _rfc3339(window[0]), "end": _rfc3339(window[1])},
        "upload": {"url": "http://127.0.0.1/files/"},
    }
    with engine.begin() as db:
        db.execute(
            insert(requests_table).values(
                request_id=request_id,
                agent_id="shop-42",
                cameras_json='["front"]',
                window_start=window[0].timestamp(),
                window_end=window[1].timestamp(),
                kind="order",
                case_ref=case,
                basis="Sv 126nd",
                requester=requester,
                reason=reason,
                claims_json=json.dumps(claims),
                upload_token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                prepared_by=prepared_by,
                prepared_at=now,
                submitted_by=prepared_by if sent else None,
                submitted_at=now if sent else None,
            )
        )
