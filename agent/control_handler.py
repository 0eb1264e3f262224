"""The running agent's side of the control socket: what each owner command does.

`camera-agent requests approve|decline`, `problems accept|unaccept|show` and `reference
reset` reach the daemon as one JSON object each (agent/control.py carries them); this
answers them with the parts the agent runs, in the owner's language, since the CLI
prints the answer as it is.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.i18n import Translator
from agent.police_requests.desk import RequestDesk
from agent.police_requests.desk_terms import NotAwaitingOwner
from agent.police_requests.store import UnknownRequest
from agent.police_requests.words import cannot_decide
from agent.quality.accepted import Acceptance, AcceptanceRefused
from agent.quality.assess import StreamAssessor
from agent.quality.reference import ReferenceStore

log = logging.getLogger(__name__)

# The control socket's commands of `camera-agent problems` (agent/quality/commands.py).
ACCEPTANCE_COMMANDS = frozenset({"problem_accept", "problems_show"})


class ControlHandler:
    """Answers one control request (agent.control.Handler) with the running agent's parts."""

    def __init__(
        self,
        *,
        desk: RequestDesk,
        acceptance: Acceptance,
        references: ReferenceStore,
        assessors: dict[str, StreamAssessor],
        translate: Translator,
    ) -> None:
        self._desk = desk
        self._acceptance = acceptance
        self._references = references
        self._assessors = assessors
        self._ = translate

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["command"] in ("approve", "decline"):
            return decide(self._desk, request, self._)
        if request["command"] in ACCEPTANCE_COMMANDS:
            return accepted_problems(self._acceptance, request)
        if request["command"] != "reference_reset":
            return {"ok": False, "error": f"unknown command {request['command']!r}"}
        return self._reset_reference(request)

    def _reset_reference(self, request: dict[str, Any]) -> dict[str, Any]:
        """The owner's `reference reset`: forget a camera's reference view, take a new one."""
        _ = self._
        camera_id = request.get("camera")
        if camera_id not in self._assessors:
            said = _(
                "the running agent has no camera '{camera}'; restart it after editing its config"
            )
            return {"ok": False, "error": said.format(camera=camera_id)}
        self._references.reset(camera_id)
        self._assessors[camera_id].reset_references()
        log.info("camera %s: reference reset by the owner", camera_id)
        said = _("camera {camera}: taking a new reference view")
        return {"ok": True, "message": said.format(camera=camera_id)}


def decide(desk: RequestDesk, request: dict[str, Any], _: Translator) -> dict[str, Any]:
    """The owner's approve / decline over the control socket."""
    request_id = str(request.get("request", ""))
    approve = request["command"] == "approve"
    try:
        desk.decide(request_id, approve)
    except NotAwaitingOwner as exc:
        return {"ok": False, "error": cannot_decide(request_id, exc.state, _)}
    except UnknownRequest:
        return {"ok": False, "error": _("no request '{id}'").format(id=request_id)}
    if approve:
        said = _("request {id} approved: its footage is exported and sent")
    else:
        said = _("request {id} declined; nothing is sent")
    return {"ok": True, "message": said.format(id=request_id)}


def accepted_problems(acceptance: Acceptance, request: dict[str, Any]) -> dict[str, Any]:
    """The owner's `problems accept | unaccept | show` over the control socket."""
    camera = request.get("camera")
    try:
        if request["command"] == "problems_show":
            return {"ok": True, "message": acceptance.describe(camera)}
        problem, accept = request.get("problem"), request.get("accept")
        if not isinstance(camera, str) or not isinstance(problem, str):
            raise ValueError("expected a camera and a problem")
        if not isinstance(accept, bool):
            raise ValueError("expected accept: true or false")
        return {"ok": True, "message": acceptance.change(camera, problem, accept, "cli")}
    except AcceptanceRefused as exc:
        return {"ok": False, "error": str(exc)}
