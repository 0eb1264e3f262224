"""Signing prepared claims into a request token, on the officer's machine.

The token is the exact compact JWS the agent verifies (agent/police_requests/token.py): header
`alg` EdDSA, `typ` camreg-request+jwt, `kid` the key's RFC 7638 thumbprint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import jws
from contract.strict_json import no_duplicate_keys
from contract.token_rules import MAX_TOKEN_BYTES, TOKEN_TYPE
from registry.police.claims import ClaimsError, check_claims_shape

__all__ = ["expiry_warning", "read_claims_file", "sign_claims", "write_token"]

# A prepared claims file is well under 2 kB; a big one is the wrong file.
MAX_CLAIMS_BYTES = 16 * 1024


def read_claims_file(path: Path) -> dict[str, Any]:
    """The claims in a JSON file, parsed strictly (a repeated key is refused: the summary
    and the agent could read different values) and shape-checked; ClaimsError otherwise."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CLAIMS_BYTES + 1)
    except OSError as exc:
        raise ClaimsError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CLAIMS_BYTES:
        raise ClaimsError(f"{path} is over {MAX_CLAIMS_BYTES} bytes; not a claims file")
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except UnicodeDecodeError:
        raise ClaimsError(f"{path} is not UTF-8 text") from None
    except RecursionError:
        raise ClaimsError(f"{path} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and duplicate keys
        raise ClaimsError(f"{path} is not valid JSON: {exc}") from None
    return check_claims_shape(value)


def sign_claims(claims: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    """The compact JWS of the (shape-checked) claims, signed with the police key."""
    checked = check_claims_shape(dict(claims))
    # Compact, ASCII only: the bytes signed are exactly what every reader decodes.
    payload = json.dumps(checked, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    token = jws.sign(payload, key, TOKEN_TYPE)
    if len(token) > MAX_TOKEN_BYTES:
        raise ClaimsError(
            f"the token would be {len(token)} bytes; agents refuse more than {MAX_TOKEN_BYTES}"
        )
    return token


def expiry_warning(claims: Mapping[str, Any], now: datetime | None = None) -> str | None:
    """A warning when the agent would reject the token as expired on arrival."""
    now = now or datetime.now(UTC)
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    if expires <= now:
        return (
            f"warning: this request expired at {expires:%Y-%m-%d %H:%M:%S} UTC; agents will "
            "reject it (reason expired). Prepare a new one on the registry."
        )
    return None


def write_token(path: Path, token: str) -> None:
    """The token into a new file, readable by the owner only: it carries the upload bearer."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ClaimsError(f"{path} exists already; it is not overwritten") from None
    except OSError as exc:
        raise ClaimsError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(token + "\n")
