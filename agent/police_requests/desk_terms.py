"""The words the request desk and its callers share: the owner's consent policy, what the
desk is handed to send a package and to publish a status, and the errors it raises."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from agent.evidence.export import Package
from agent.police_requests.store import StoredRequest
from agent.police_requests.token import Rejected
from agent.police_requests.withdrawal import Withdrawal
from contract.request_states import RequestState
from contract.token_rules import PRESERVE


class NotAwaitingOwner(ValueError):
    """The owner decided on a request that no longer waits for a decision."""

    def __init__(self, request_id: str, state: RequestState) -> None:
        super().__init__(f"request {request_id} is {state}, not awaiting the owner")
        self.request_id = request_id
        self.state = state


class PoliceStopped(Exception):
    """Raised out of an upload's progress: the police stopped the request meanwhile, by
    revoking the key that signed it (Rejected) or by withdrawing it (Withdrawal)."""

    def __init__(self, why: Rejected | Withdrawal) -> None:
        super().__init__(str(why))
        self.why = why


class Uploading(Protocol):
    """Sends an exported package to the request's upload URL (tus); see evidence.upload."""

    def send(
        self,
        request: StoredRequest,
        package: Package,
        progress: Callable[[int, int], None],
        stop: threading.Event,
    ) -> None: ...


# (request id, status body, retained): a stored request's status is retained; a rejected
# token's is not (anyone who can publish tokens could make the broker keep one per token).
StatusSink = Callable[[str, dict[str, Any], bool], None]
# Told each accepted request's state as it is published (the owner's notifications).
RequestWatcher = Callable[[StoredRequest], None]


@dataclass(frozen=True)
class Consent:
    order: str  # auto | ask | never
    voluntary: str
    owner_timeout: timedelta
    require_clock: bool

    def policy_for(self, kind: str) -> str:
        """auto, ask or never: the owner's policy for a request of this kind; `preserve`
        for a preservation, which sends nothing and so asks nothing of the owner."""
        if kind == PRESERVE:
            return PRESERVE
        return self.order if kind == "order" else self.voluntary
