"""`camera-agent problems accept | unaccept CAMERA PROBLEM` and `problems show [CAMERA]`:
the owner's "this is normal for this camera" (agent/quality/accepted.py).

Like `reference reset`, a change goes to the running daemon over its control socket, so
the camera's health changes at once; with no daemon running the list in the state
directory is changed (and the change audited) directly, and the daemon reads it when it
starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cli_common import with_config
from contract.exit_codes import EX_UNAVAILABLE, EX_USAGE

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.i18n import Translator


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    problems = commands.add_parser(
        "problems", help="problems you accept as normal for a camera (e.g. a dim alley)"
    )
    actions = problems.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        (
            "accept",
            "this problem is normal for this camera: stop reporting it (blurred, too_dark, "
            "too_bright, low_contrast, colour_cast or noisy)",
        ),
        ("unaccept", "report this problem again when it is seen"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("camera", metavar="CAMERA")
        action.add_argument("problem", metavar="PROBLEM")
        action.add_argument("--config", type=Path, default=config, metavar="PATH")
    show = actions.add_parser("show", help="the problems accepted for each camera")
    show.add_argument("camera", metavar="CAMERA", nargs="?")
    show.add_argument("--config", type=Path, default=config, metavar="PATH")
    problems.set_defaults(func=with_config(run))


def run(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.control import tell_daemon
    from agent.i18n import translator

    _ = translator(config.agent.locale)
    refused = _refusal(args, config, _)
    if refused is not None:
        print(f"camera-agent: {refused}", file=sys.stderr)
        return EX_USAGE
    if args.action == "show":
        request: dict[str, object] = {"command": "problems_show", "camera": args.camera}
    else:
        request = {
            "command": "problem_accept",
            "camera": args.camera,
            "problem": args.problem,
            "accept": args.action == "accept",
        }

    def offline() -> int:
        from agent.audit import AUDIT_FILE, AuditError, AuditLog
        from agent.quality.accepted import Acceptance, AcceptanceRefused, AcceptedProblems

        data_dir = config.agent.data_dir
        try:
            store = AcceptedProblems(data_dir)
            acceptance = Acceptance(
                store, AuditLog(data_dir / AUDIT_FILE), {c.id: None for c in config.cameras}, _
            )
            if store.reset is not None:
                acceptance.audit_reset(store.reset)
                said = _(
                    "the list of accepted problems was broken; kept it as {name} and started "
                    "a new one"
                )
                print("camera-agent: " + said.format(name=store.reset.kept_as), file=sys.stderr)
            if args.action == "show":
                print(acceptance.describe(args.camera))
            else:
                print(acceptance.change(args.camera, args.problem, args.action == "accept", "cli"))
        except AcceptanceRefused as exc:
            print(f"camera-agent: {exc}", file=sys.stderr)
            return EX_USAGE
        except (AuditError, OSError) as exc:
            print(f"camera-agent: {exc}", file=sys.stderr)
            return EX_UNAVAILABLE
        return 0

    return tell_daemon(config.agent.data_dir, request, offline)


def _refusal(args: argparse.Namespace, config: AgentConfig, _: Translator) -> str | None:
    """Why the command cannot be done, checked before asking anyone (exit 64), or None."""
    from agent.quality.accepted import why_not_acceptable

    if args.camera is not None and config.camera(args.camera) is None:
        said = _("there is no camera '{camera}' (cameras: {known})")
        return said.format(camera=args.camera, known=", ".join(c.id for c in config.cameras))
    if args.action == "accept":
        return why_not_acceptable(args.problem, _)
    return None
