"""What the registry shows of a camera's health beside its status: whether its picture has
been judged yet, and the problems its owner accepted as normal.

Both come from the newest health object as received (`cameras.health_json`), so ingest
stores nothing new for them. An agent says `status` `ok` for a camera with no problem
found yet, also right after it started: its `judgement` then says `pending`. Shown as
`ok`, that camera would look fine on the map and in a police search before anything was
looked at; so the registry shows it as `pending` ("not yet judged") instead. A camera
with a problem keeps its status (`degraded`, `failed`, `offline` say something true
already). Reports of older agents have no `judgement`: their status is shown as sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

# The status shown for a camera that says `ok` but whose picture is not judged yet.
PENDING = "pending"


@dataclass(frozen=True)
class Judged:
    status: str | None  # as shown: the reported status, or PENDING
    judgement: str | None  # "pending" | "judged" | None (an older agent, or no report)
    accepted: tuple[str, ...]


def judged(status: str | None, health_json: str | None) -> Judged:
    """The status to show for a camera's stored status and newest health object."""
    if not health_json:
        return Judged(status, None, ())
    try:
        health = orjson.loads(health_json)
    except orjson.JSONDecodeError:
        return Judged(status, None, ())
    judgement = health.get("judgement") if isinstance(health, dict) else None
    state = judgement.get("state") if isinstance(judgement, dict) else None
    state = state if state in ("pending", "judged") else None
    accepted = health.get("accepted") if isinstance(health, dict) else None
    codes = tuple(c for c in accepted if isinstance(c, str)) if isinstance(accepted, list) else ()
    shown = PENDING if status == "ok" and state == "pending" else status
    return Judged(shown, state, codes)
