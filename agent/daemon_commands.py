"""`camera-agent run` and `camera-agent check`: start the daemon (what the systemd service
starts), or only validate the config it would start with."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from agent.cli_common import load, owner_translator
from agent.errors import AgentError
from agent.state import StateError
from contract.exit_codes import EX_CANTCREAT, EX_IOERR

# The name these journal lines have always carried (before the command line was split).
log = logging.getLogger("agent.cli")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    run = commands.add_parser("run", help="run the agent (what the systemd service starts)")
    run.add_argument("--config", type=Path, default=config, metavar="PATH")
    run.set_defaults(func=lambda args: _run(args.config))

    check = commands.add_parser("check", help="validate a config file; exit 78 listing errors")
    check.add_argument("--config", type=Path, default=config, metavar="PATH")
    check.set_defaults(func=lambda args: _check(args.config))


def _check(path: Path) -> int:
    config = load(path, check_folders=True)
    if isinstance(config, int):
        return config
    _ = owner_translator(config)
    count = len(config.cameras)
    said = _.ngettext(
        "{path}: valid ({count} camera, agent {agent})",
        "{path}: valid ({count} cameras, agent {agent})",
        count,
    )
    print(said.format(path=path, count=count, agent=config.agent.id))
    return 0


def _run(path: Path) -> int:
    # Lazily: the app imports PyAV and OpenCV, which the other commands do without.
    from agent.app import App
    from agent.daemon_process import exit_past_stuck_threads, install_signal_handlers
    from agent.lifecycle import StopEvent

    config = load(path)
    if isinstance(config, int):
        return config
    stop = StopEvent()
    install_signal_handlers(stop)
    try:
        code = App(config).run(stop)
    except StateError as exc:
        log.error("%s", exc)
        return EX_CANTCREAT
    except (AgentError, OSError) as exc:
        # What is left after the state files' own recovery (docs/service.md, "State
        # files"): a file that cannot be opened at all (permissions, a read-only or failed
        # disk). One line for the journal; systemd tries again in 5 s.
        log.error("cannot start: %s", exc)
        return EX_IOERR
    exit_past_stuck_threads(code)
    return code
