"""`camera-agent setup`: its arguments; the wizard itself is imported only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.cli_common import positive


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    setup = commands.add_parser(
        "setup", help="create the config file from answers to a few questions"
    )
    setup.add_argument("--config", type=Path, default=config, metavar="PATH")
    setup.add_argument(
        "--language", choices=("nl", "en"), help="ask in Dutch or English (default: from LANG)"
    )
    setup.add_argument(
        "--probe-seconds",
        type=positive,
        # Pictures a second are measured over at least 5 s of stream (half the rate window):
        # a shorter watch could not tell the owner the rate, nor that it is too low.
        default=7.0,
        metavar="N",
        help="how long to watch each camera URL as it is entered (default 7)",
    )
    setup.add_argument(
        "--discover",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="look for ONVIF cameras on the network and offer them (default: when asked "
        "at a terminal)",
    )
    setup.add_argument(
        "--discover-seconds",
        type=positive,
        # As long as `discover` listens: cameras answer within half a second of the probe.
        default=3.0,
        metavar="N",
        help="how long to listen for cameras (default 3)",
    )
    setup.set_defaults(func=_setup)


def _setup(args: argparse.Namespace) -> int:
    # Lazily (agent/cli.py says why): the wizard brings pydantic, PyAV and OpenCV.
    from agent.setup.wizard import run

    return run(args)
