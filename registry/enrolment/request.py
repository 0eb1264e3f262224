"""The body of `POST /api/v1/enrol`, parsed strictly; every error names its field."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from contract import jws
from contract.strict_json import no_duplicate_keys

__all__ = ["MAX_CAMERAS", "CameraIn", "EnrolRequest", "LocationIn", "MalformedRequest", "parse"]

MAX_CAMERAS = 256  # far more than one recorder has; bounds the work one request causes

LowerId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")]


class MalformedRequest(ValueError):
    """The body is not a valid enrolment request; `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Strict(BaseModel):
    # strict: JSON "52.1" is not a number and 1 is not text; a peer that sends them is broken.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class PublicJwk(_Strict):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str | None = None  # tolerated, not trusted: the thumbprint is computed here

    def key(self) -> Ed25519PublicKey:
        return jws.public_key_from_jwk({"kty": self.kty, "crv": self.crv, "x": self.x})


class LocationIn(_Strict):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    bearing_deg: Annotated[float, Field(ge=0, le=360)] | None = None
    fov_deg: Annotated[float, Field(ge=1, le=180)] | None = None
    range_m: Annotated[float, Field(gt=0, le=100_000)] | None = None


class CameraIn(_Strict):
    id: LowerId
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    location: LocationIn | None = None


class EnrolRequest(_Strict):
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    agent_id: LowerId
    public_key: PublicJwk
    cameras: Annotated[list[CameraIn], Field(max_length=MAX_CAMERAS)]


def _field(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(body)"


def parse(body: bytes) -> tuple[EnrolRequest, Ed25519PublicKey]:
    """The request and the agent's public key; MalformedRequest naming the first bad field."""
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except UnicodeDecodeError:
        raise MalformedRequest("(body)", "not UTF-8") from None
    except ValueError as exc:  # JSONDecodeError is one, as is a duplicate key
        raise MalformedRequest("(body)", f"not valid JSON: {exc}") from None
    jwk = data.get("public_key") if isinstance(data, dict) else None
    if isinstance(jwk, dict) and "d" in jwk:
        raise MalformedRequest("public_key.d", "a private key was sent; send only the public key")
    try:
        request = EnrolRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise MalformedRequest(_field(error["loc"]), str(error["msg"])) from None
    seen: set[str] = set()
    for index, camera in enumerate(request.cameras):
        if camera.id in seen:
            raise MalformedRequest(f"cameras[{index}].id", f"duplicate camera id {camera.id!r}")
        seen.add(camera.id)
    try:
        key = request.public_key.key()
    except ValueError as exc:
        raise MalformedRequest("public_key.x", str(exc)) from None
    return request, key
