"""`camera-agent reference reset CAMERA`: accept the camera's current view as its reference
(after moving it). Told to the running daemon over its control socket; with no daemon
running the stored reference is forgotten directly."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli_common import load, owner_translator
from agent.control import tell_daemon
from contract.exit_codes import EX_USAGE


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    reference = commands.add_parser("reference", help="the camera's reference view")
    reference_commands = reference.add_subparsers(dest="action", required=True, metavar="ACTION")
    reset = reference_commands.add_parser(
        "reset", help="accept the camera's current view as its reference (after moving it)"
    )
    reset.add_argument("camera", metavar="CAMERA")
    reset.add_argument("--config", type=Path, default=config, metavar="PATH")
    reset.set_defaults(func=lambda args: _reference_reset(args.config, args.camera))


def _reference_reset(path: Path, camera: str) -> int:
    # Lazily (agent/cli.py says why): OpenCV and numpy.
    from agent.quality.reference import ReferenceStore

    config = load(path)
    if isinstance(config, int):
        return config
    _ = owner_translator(config)
    if config.camera(camera) is None:
        known = ", ".join(c.id for c in config.cameras)
        said = _("no camera '{camera}' in {path} (cameras: {known})")
        print(said.format(camera=camera, path=path, known=known), file=sys.stderr)
        return EX_USAGE

    def offline() -> int:
        if ReferenceStore(config.agent.data_dir).reset(camera):
            said = _(
                "camera {camera}: forgot its reference view; the agent takes a new one after "
                "a healthy warm-up"
            )
        else:
            said = _(
                "camera {camera}: had no reference view yet; the agent takes one after a "
                "healthy warm-up"
            )
        print(said.format(camera=camera))
        return 0

    return tell_daemon(
        config.agent.data_dir, {"command": "reference_reset", "camera": camera}, offline
    )
