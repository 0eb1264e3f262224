"""Police request tokens for tests, assembled as raw bytes (a JOSE library refuses to
make most of the hostile ones)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import jws
from contract.timestamps import rfc3339


class Police:
    """A police signing key and the claims of a typical request."""

    def __init__(self, agent: str = "shop-42", upload: str = "http://127.0.0.1:9/files/") -> None:
        self.key = Ed25519PrivateKey.generate()
        self.agent = agent
        self.upload = upload

    @property
    def kid(self) -> str:
        return jws.thumbprint(self.key.public_key())

    @property
    def jwk(self) -> dict[str, str]:
        return jws.public_jwk(self.key.public_key())

    def claims(self, now: datetime | None = None, **changes: Any) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        base: dict[str, Any] = {
            "iss": "police.example",
            "aud": self.agent,
            "jti": "req-0001",
            "iat": int(now.timestamp()) - 5,
            "exp": int(now.timestamp()) + 3600,
            "kind": "order",
            "case": "2026-1234",
            "basis": "Sv 126nd",
            "requester": "officer 4711",
            "cameras": ["front"],
            "window": {
                "start": rfc3339(now - timedelta(seconds=20)),
                "end": rfc3339(now - timedelta(seconds=5)),
            },
            "upload": {"url": self.upload, "token": "bearer-123"},
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def header(self, **changes: Any) -> dict[str, Any]:
        base = {"alg": "EdDSA", "typ": "camreg-request+jwt", "kid": self.kid}
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def token(
        self,
        claims: dict[str, Any] | bytes | None = None,
        header: dict[str, Any] | bytes | None = None,
        key: Ed25519PrivateKey | None = None,
    ) -> bytes:
        h = header if isinstance(header, bytes) else json.dumps(header or self.header()).encode()
        c = claims if isinstance(claims, bytes) else json.dumps(claims or self.claims()).encode()
        signing_input = f"{jws.b64url_encode(h)}.{jws.b64url_encode(c)}".encode()
        signature = (key or self.key).sign(signing_input)
        return signing_input + b"." + jws.b64url_encode(signature).encode()


class PoliceRoot:
    """A police root key and the key sets it signs, assembled as raw bytes so that tests
    can make the hostile ones too (contract/keyset.py)."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()

    @property
    def kid(self) -> str:
        return jws.thumbprint(self.key.public_key())

    def claims(
        self,
        version: int,
        keys: list[Police],
        revoked: tuple[str, ...] = (),
        now: datetime | None = None,
        lifetime: timedelta = timedelta(days=30),
        **changes: Any,
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        base: dict[str, Any] = {
            "iss": "police.example",
            "version": version,
            "iat": int(now.timestamp()) - 5,
            "exp": int((now + lifetime).timestamp()),
            "keys": [police.jwk for police in keys],
            "revoked": list(revoked),
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def keyset(
        self,
        claims: dict[str, Any] | bytes,
        header: dict[str, Any] | None = None,
        key: Ed25519PrivateKey | None = None,
    ) -> bytes:
        h = json.dumps(header or {"alg": "EdDSA", "typ": "camreg-keyset+jwt", "kid": self.kid})
        c = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
        signing_input = f"{jws.b64url_encode(h.encode())}.{jws.b64url_encode(c)}".encode()
        signature = (key or self.key).sign(signing_input)
        return signing_input + b"." + jws.b64url_encode(signature).encode()
