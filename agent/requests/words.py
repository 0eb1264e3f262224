"""A request's state in the owner's words, for the CLI and for the daemon's replies to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.i18n import Translator

# Each state in words for the owner; the texts are catalogue msgids.
_WORDS = {
    "received": "received, being checked",
    "waiting_clock": "waiting for the system clock to be synchronised",
    "rejected": "rejected",
    "awaiting_owner": "waiting for your decision",
    "declined": "declined",
    "approved": "approved",
    "exporting": "copying the footage",
    "uploading": "sending the footage",
    "completed": "completed: the footage was delivered",
    "failed": "failed",
}


def state_words(state: str, reason: str | None, _: Translator) -> str:
    """A request's state in the owner's words."""
    words = _WORDS.get(state)
    said = _(words) if words else state
    return said + (f" ({reason})" if reason else "")


def cannot_decide(request_id: str, state: str, _: Translator) -> str:
    """Why a request that no longer waits for the owner cannot be approved or declined."""
    said = _(
        "request {id} is {state}; only a request waiting for your decision can be "
        "approved or declined"
    )
    return said.format(id=request_id, state=state_words(state, None, _))
