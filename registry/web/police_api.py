"""What police users do with requests, as JSON API: prepare the claims of a request, submit
the token they signed off the server, follow its status (the search is search_api.py).
Every request lands in the registry's audit trail with who, when, where and why."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contract import jws
from contract.strict_json import no_duplicate_keys
from contract.timestamps import rfc3339_epoch
from registry.db.schema import request_status, requests
from registry.errors import RegistryError
from registry.police.claims import (
    ClaimsError,
    PreparedClaims,
    claims_at_rest,
    new_upload_token,
    parse_time,
    prepare_claims,
    upload_token_sha256,
    with_upload_token,
)
from registry.web import search_api, user_audit
from registry.web.access import Caller, require, state_of
from registry.web.auth import Role
from registry.web.json_body import json_body, required_text

log = logging.getLogger(__name__)

MAX_TOKEN = 16 * 1024  # the agent refuses bigger tokens anyway (too_large)
ISSUER = "camera-registry"  # `iss`: who prepared the claims; the police key signs them


_json_body = json_body
_field = required_text


async def prepare_api(request: Request) -> Response:
    caller = await require(request, Role.POLICE)
    state = state_of(request)
    body = await _json_body(request)
    cameras = body.get("cameras")
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        raise HTTPException(400, "cameras: required (a list of camera ids)")
    try:
        prepared = prepare_claims(
            issuer=ISSUER,
            agent_id=_field(body, "agent"),
            cameras=cameras,
            start=parse_time(body.get("start"), "start"),
            end=parse_time(body.get("end"), "end"),
            kind=_field(body, "kind"),
            case=_field(body, "case"),
            basis=_field(body, "basis"),
            requester=_field(body, "requester"),
            upload_url=state.config.http.base_url + "/files/",
            validity=timedelta(seconds=state.config.evidence.request_validity),
        )
    except ClaimsError as exc:
        raise HTTPException(400, str(exc)) from exc
    reason = _field(body, "reason")
    await run_in_threadpool(_store_prepared, state.engine, prepared, reason, caller)
    return JSONResponse(
        {"request_id": prepared.request_id, "claims": prepared.claims}, status_code=201
    )


def _store_prepared(engine: Engine, prepared: PreparedClaims, reason: str, caller: Caller) -> None:
    claims = prepared.claims
    window = claims["window"]
    with engine.begin() as db:
        db.execute(
            requests.insert().values(
                request_id=prepared.request_id,
                agent_id=claims["aud"],
                cameras_json=json.dumps(claims["cameras"]),
                window_start=parse_time(window["start"]).timestamp(),
                window_end=parse_time(window["end"]).timestamp(),
                kind=claims["kind"],
                case_ref=claims["case"],
                basis=claims["basis"],
                requester=claims["requester"],
                reason=reason,
                # The bearer is in the answer only: a copy of the database cannot upload.
                claims_json=json.dumps(claims_at_rest(claims)),
                upload_token_sha256=prepared.upload_token_sha256,
                prepared_by=caller.user.name,
                prepared_at=time.time(),
            )
        )
    user_audit.record(
        engine,
        caller.user.name,
        "request_prepare",
        caller.remote,
        request_id=prepared.request_id,
        agent=claims["aud"],
        cameras=claims["cameras"],
        window=window,
        case=claims["case"],
        kind=claims["kind"],
        reason=reason,
    )


def _stored(engine: Engine, request_id: str) -> Any:
    with engine.connect() as db:
        row = db.execute(select(requests).where(requests.c.request_id == request_id)).first()
    if row is None:
        raise HTTPException(404, f"no request {request_id!r}")
    return row


def _already_sent(request_id: str) -> HTTPException:
    return HTTPException(
        409,
        f"request {request_id} was signed and sent to its agent already; its claims carry "
        "the upload token and are not handed out again",
    )


def _hand_out_claims(engine: Engine, request_id: str, caller: Caller) -> tuple[str, Any]:
    """The claims to sign with a new upload bearer, whose hash replaces the one kept."""
    row = _stored(engine, request_id)
    if row.submitted_at is not None:
        raise _already_sent(row.request_id)
    bearer = new_upload_token()
    with engine.begin() as db:
        changed = db.execute(
            update(requests)
            .where(requests.c.request_id == row.request_id, requests.c.submitted_at.is_(None))
            .values(upload_token_sha256=upload_token_sha256(bearer))
        ).rowcount
    if changed != 1:  # submitted meanwhile
        raise _already_sent(row.request_id)
    user_audit.record(
        engine,
        caller.user.name,
        "request_claims_download",
        caller.remote,
        request_id=row.request_id,
    )
    return row.request_id, with_upload_token(claims_at_rest(json.loads(row.claims_json)), bearer)


async def claims_download(request: Request) -> Response:
    """The claims to sign, with a new upload bearer: the registry keeps only its hash, so
    each download hands out a fresh one and the ones handed out before stop counting."""
    caller = await require(request, Role.POLICE)
    request_id, claims = await run_in_threadpool(
        _hand_out_claims, state_of(request).engine, request.path_params["request_id"], caller
    )
    return Response(
        json.dumps(claims, indent=2) + "\n",
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="{request_id}.claims.json"'},
    )


def _payload_of(token: str) -> dict[str, Any]:
    """The token's header checks and payload, unverified: the server holds no police key;
    it checks only that the officer signed what was prepared. The agent verifies."""
    parts = token.split(".")
    if len(parts) != 3:
        raise HTTPException(400, "token: not a compact JWS (three parts separated by dots)")
    try:
        header = json.loads(jws.b64url_decode(parts[0]), object_pairs_hook=no_duplicate_keys)
        payload = json.loads(jws.b64url_decode(parts[1]), object_pairs_hook=no_duplicate_keys)
    except ValueError as exc:
        raise HTTPException(400, f"token: cannot be decoded ({exc})") from exc
    if not isinstance(header, dict) or header.get("alg") != "EdDSA":
        raise HTTPException(400, "token: not signed with EdDSA (use `camera-registry police sign`)")
    if header.get("typ") != "camreg-request+jwt":
        raise HTTPException(400, "token: typ is not camreg-request+jwt")
    if not isinstance(payload, dict):
        raise HTTPException(400, "token: the payload is not a JSON object")
    return payload


async def submit_api(request: Request) -> Response:
    caller = await require(request, Role.POLICE)
    state = state_of(request)
    row = await run_in_threadpool(_stored, state.engine, request.path_params["request_id"])
    body = await _json_body(request)
    token = _field(body, "token").strip()
    if len(token) > MAX_TOKEN or not token.isascii():
        raise HTTPException(400, f"token: not an ASCII token of at most {MAX_TOKEN} bytes")
    payload = _payload_of(token)
    upload = payload.get("upload")
    bearer = upload.get("token") if isinstance(upload, dict) else None
    if not isinstance(bearer, str) or claims_at_rest(payload) != claims_at_rest(
        json.loads(row.claims_json)
    ):
        raise HTTPException(
            400,
            "token: its claims differ from the ones prepared for this request; "
            "sign the claims.json downloaded for it",
        )
    if not hmac.compare_digest(upload_token_sha256(bearer), row.upload_token_sha256):
        raise HTTPException(
            400,
            "token: its upload token is not the one of the newest claims.json of this "
            "request (each download hands out a new one); sign the claims.json downloaded last",
        )
    if state.relay is None:
        raise HTTPException(503, "no MQTT link to the agents (the server runs without one)")
    try:
        # Waits for the broker's acknowledgement: in a worker thread, not the event loop.
        await run_in_threadpool(state.relay.publish_request, row.agent_id, token)
    except RegistryError as exc:
        log.warning("request %s not relayed to %s: %s", row.request_id, row.agent_id, exc)
        raise HTTPException(503, f"could not reach the broker: {exc}") from exc
    status_id = hashlib.sha256(token.encode("ascii")).hexdigest()[:16]
    await run_in_threadpool(_store_submitted, state.engine, row, token, status_id, caller)
    return JSONResponse({"request_id": row.request_id, "state": "sent"}, status_code=202)


def _store_submitted(engine: Engine, row: Any, token: str, status_id: str, caller: Caller) -> None:
    with engine.begin() as db:
        db.execute(
            update(requests)
            .where(requests.c.request_id == row.request_id)
            .values(
                # The signed token carries the upload bearer: it goes to the agent, and
                # only its status id (a prefix of its hash) is kept.
                token=None,
                token_status_id=status_id,
                submitted_by=caller.user.name,
                submitted_at=time.time(),
            )
        )
    user_audit.record(
        engine,
        caller.user.name,
        "request_submit",
        caller.remote,
        request_id=row.request_id,
        agent=row.agent_id,
    )


def request_list(engine: Engine) -> list[dict[str, Any]]:
    """Every request, newest first, with the state its agent last reported."""
    with engine.connect() as db:
        rows = db.execute(select(requests).order_by(requests.c.prepared_at.desc())).all()
        statuses = {(s.agent_id, s.request_id): s for s in db.execute(select(request_status)).all()}
    result = []
    for row in rows:
        status = statuses.get((row.agent_id, row.request_id)) or statuses.get(
            (row.agent_id, row.token_status_id or "")
        )
        if status is not None:
            state, reason = status.state, status.reason
        else:
            state, reason = ("sent" if row.submitted_at is not None else "prepared"), None
        result.append(
            {
                "request_id": row.request_id,
                "agent": row.agent_id,
                "cameras": json.loads(row.cameras_json),
                "window": {
                    "start": rfc3339_epoch(row.window_start, "seconds"),
                    "end": rfc3339_epoch(row.window_end, "seconds"),
                },
                "kind": row.kind,
                "case": row.case_ref,
                "prepared_by": row.prepared_by,
                "prepared_at": rfc3339_epoch(row.prepared_at, "seconds"),
                "state": state,
                "reason": reason,
                "progress": None
                if status is None or status.bytes_total is None
                else {"bytes_sent": status.bytes_sent, "bytes_total": status.bytes_total},
            }
        )
    return result


async def requests_api(request: Request) -> Response:
    await require(request, Role.POLICE)
    rows = await run_in_threadpool(request_list, state_of(request).engine)
    return JSONResponse({"requests": rows})


def routes() -> list[BaseRoute]:
    return [
        *search_api.routes(),
        Route("/api/v1/requests", requests_api, methods=["GET"]),
        Route("/api/v1/requests", prepare_api, methods=["POST"]),
        Route("/api/v1/requests/{request_id}/claims.json", claims_download, methods=["GET"]),
        Route("/api/v1/requests/{request_id}/token", submit_api, methods=["POST"]),
    ]
