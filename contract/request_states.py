"""The states of a police request, as the agent stores them and publishes them in a
request's status (`state`, docs/schemas/request-status.schema.json) and the registry
keeps and shows them.

A `str` enum: each member is its own wire string, so a stored row, a payload and a
comparison with the plain string all stay what they were."""

from __future__ import annotations

from enum import StrEnum


class RequestState(StrEnum):
    RECEIVED = "received"
    WAITING_CLOCK = "waiting_clock"  # valid-looking, waits for a synchronised clock
    REJECTED = "rejected"
    AWAITING_OWNER = "awaiting_owner"  # the owner must approve or decline
    DECLINED = "declined"
    APPROVED = "approved"
    EXPORTING = "exporting"
    UPLOADING = "uploading"
    COMPLETED = "completed"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # the police withdrew it (a signed withdrawal); nothing more is sent
    PRESERVED = "preserved"  # a preservation: its window is held, nothing is sent, until exp
    LAPSED = "lapsed"  # a preservation whose time ran out: its hold ended

    @property
    def final(self) -> bool:
        """Nothing more happens to a request in this state."""
        return self in FINAL


FINAL = frozenset(
    {
        RequestState.REJECTED,
        RequestState.DECLINED,
        RequestState.COMPLETED,
        RequestState.FAILED,
        RequestState.WITHDRAWN,
        RequestState.LAPSED,
    }
)
