"""Enrolment during setup: the registry address and code the owner gave are used at once,
and a failed enrolment is asked again (another code, or a broker address instead)."""

from __future__ import annotations

from pathlib import Path

from agent.enrolment import EnrolmentError, EnrolmentView, enrol, save_password
from agent.setup.answers import Camera, Registry
from agent.setup.questions import Wizard


def join_registry(
    wizard: Wizard,
    registry: Registry,
    agent_id: str,
    data_dir: Path,
    locale: str,
    cameras: list[Camera],
) -> int | None:
    """Enrol with the registry, asking for a new code (or a broker) when it fails; fills
    `registry`. An exit code when setup must stop."""
    _ = wizard._
    view = EnrolmentView.model_validate(
        {
            "agent": {"id": agent_id, "data_dir": str(data_dir), "locale": locale},
            "cameras": [
                {"id": c.id, "name": c.name, "location": c.location or None} for c in cameras
            ],
        }
    )
    assert registry.enrol_url is not None and registry.enrol_code is not None
    code = registry.enrol_code
    while True:
        wizard.say(_("Enrolling with {url}…").format(url=registry.enrol_url))
        try:
            result = enrol(view, registry.enrol_url, code)
        except EnrolmentError as exc:
            wizard.say(_("Enrolment failed: {error}").format(error=exc))
            if wizard.yes(_("Try again with another code?"), default=True):
                code = wizard.ask(_("Enrolment code, e.g. 7KQ2-M9XD-4HRT-0WBE"))
                continue
            manual = wizard.broker()
            registry.broker, registry.username = manual.broker, manual.username
            registry.enrol_url = None
            if manual.password is not None:
                registry.password_file = save_password(data_dir, manual.password)
            return None
        break
    wizard.say(
        _("Enrolled as {agent}; device key {kid}").format(
            agent=result.agent_id, kid=result.key_thumbprint
        )
    )
    registry.broker = result.broker
    registry.topic_prefix = result.topic_prefix
    if result.password is not None:
        registry.username = result.username
        registry.password_file = save_password(data_dir, result.password)
    else:
        wizard.say(
            _(
                "The registry issued no password: its broker knows this agent by a client "
                "certificate. Add client_cert and client_key to the registry section."
            )
        )
    return None
