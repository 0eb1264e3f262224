"""A request's state in the owner's words, for the CLI and for the daemon's replies to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract.request_states import RequestState

if TYPE_CHECKING:
    from agent.i18n import Translator

# Each state in words for the owner; the texts are catalogue msgids.
_WORDS = {
    RequestState.RECEIVED: "received, being checked",
    RequestState.WAITING_CLOCK: "waiting for the system clock to be synchronised",
    RequestState.REJECTED: "rejected",
    RequestState.AWAITING_OWNER: "waiting for your decision",
    RequestState.DECLINED: "declined",
    RequestState.APPROVED: "approved",
    RequestState.EXPORTING: "copying the footage",
    RequestState.UPLOADING: "sending the footage",
    RequestState.COMPLETED: "completed: the footage was delivered",
    RequestState.FAILED: "failed",
    RequestState.WITHDRAWN: "withdrawn by the police: nothing more is sent",
    RequestState.PRESERVED: (
        "footage kept for the police, nothing sent, until the preservation lapses"
    ),
    RequestState.LAPSED: "the preservation lapsed: the footage is no longer held",
}


def state_words(state: RequestState, reason: str | None, _: Translator) -> str:
    """A request's state in the owner's words."""
    words = _WORDS.get(state)
    said = _(words) if words else state
    return said + (f" ({reason})" if reason else "")


def cannot_decide(request_id: str, state: RequestState, _: Translator) -> str:
    """Why a request that no longer waits for the owner cannot be approved or declined."""
    said = _(
        "request {id} is {state}; only a request waiting for your decision can be "
        "approved or declined"
    )
    return said.format(id=request_id, state=state_words(state, None, _))
