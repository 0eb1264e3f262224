"""The `police:` section: the pinned police public keys, where evidence may be uploaded,
and the owner's consent policy for requests."""

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import AfterValidator, Field, model_validator

from contract import jws
from contract.config.fields import Bytes, ConfigSection, ReadableFile, Seconds, web_url
from contract.config.fields import rule_error as _rule_error


def _check_key_pem(value: str) -> str:
    if not value.lstrip().startswith("-----BEGIN "):
        raise ValueError("must be PEM text starting with '-----BEGIN PUBLIC KEY-----'")
    return value


def _check_jwk(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("kty") != "OKP" or value.get("crv") != "Ed25519" or not value.get("x"):
        raise ValueError("must be an Ed25519 public key: {kty: OKP, crv: Ed25519, x: ...}")
    if "d" in value:
        raise ValueError("holds a private key ('d'); pin only the public key")
    return value


class PoliceKey(ConfigSection):
    """One pinned police public key: a PEM file, PEM text or a JWK."""

    file: ReadableFile | None = None
    pem: Annotated[str, AfterValidator(_check_key_pem)] | None = None
    jwk: Annotated[dict[str, Any], AfterValidator(_check_jwk)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(x is not None for x in (self.file, self.pem, self.jwk)) != 1:
            _rule_error(((), "needs exactly one of file, pem or jwk"))
        try:
            self.public_key()
        except ValueError as exc:
            where = "file" if self.file else "pem" if self.pem else "jwk"
            _rule_error(((where,), str(exc)))
        return self

    def public_key(self) -> Ed25519PublicKey:
        """The key itself; ValueError when it is not a usable Ed25519 public key."""
        if self.jwk is not None:
            return jws.public_key_from_jwk(self.jwk)
        if self.pem is not None:
            return jws.public_key_from_pem(self.pem.encode())
        assert self.file is not None
        try:
            data = self.file.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {self.file}: {exc.strerror}") from None
        return police_key_from_file(data, self.file)


def police_key_from_file(data: bytes, path: Path) -> Ed25519PublicKey:
    """A police public key file's contents, PEM or JWK; ValueError says why not."""
    if data.lstrip().startswith(b"{"):
        try:
            return jws.public_key_from_jwk(json.loads(data))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
    return jws.public_key_from_pem(data)


def _check_upload_prefix(value: str) -> str:
    web_url(value)
    return value


Consent = Literal["auto", "ask", "never"]


class ConsentPolicy(ConfigSection):
    """Per request kind: approve automatically, ask the owner, or always decline."""

    order: Consent = "auto"
    voluntary: Consent = "ask"


class PoliceConfig(ConfigSection):
    """Who may request footage and within which limits."""

    keys: list[PoliceKey] = Field(default_factory=list)
    # Police root keys (same forms as `keys`): they sign the key sets the registry relays,
    # which name the request-signing keys valid now and the revoked ones (docs/police.md).
    root_keys: list[PoliceKey] = Field(default_factory=list)
    upload_allow: list[Annotated[str, AfterValidator(_check_upload_prefix)]] = Field(
        default_factory=list
    )
    max_window: Seconds = 3600.0
    consent: ConsentPolicy = Field(default_factory=ConsentPolicy)
    owner_timeout: Seconds = 72 * 3600.0
    upload_rate_limit: Bytes = 2_000_000
    # The CA of an evidence server whose HTTPS certificate is not publicly trusted (added
    # to, not instead of, the system's CAs).
    upload_ca_file: ReadableFile | None = None
