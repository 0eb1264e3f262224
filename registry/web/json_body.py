"""Reading a JSON API request's body: bounded, strict JSON, an object; its text fields."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from contract.strict_json import no_duplicate_keys

__all__ = ["MAX_BODY", "json_body", "required_text"]

MAX_BODY = 64 * 1024  # a search, a route or a prepared request is a few kilobytes


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"the request body is over {MAX_BODY} bytes")
    try:
        value = json.loads(body, object_pairs_hook=no_duplicate_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise HTTPException(400, f"the body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return value


def required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise HTTPException(400, f"{name}: required (text)")
    return value
