"""What the command areas of `camera-agent` share: the default config path, reading the
config with its errors told to the owner, the owner's language, and the argument type more
than one command uses.

Its own module so that `agent/cli.py` (which imports every area) and the areas themselves,
the setup wizard among them, import it without importing each other.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from contract.errors import ConfigError
from contract.exit_codes import EX_CONFIG

if TYPE_CHECKING:  # imported lazily below (agent/cli.py says why)
    from agent.config import AgentConfig
    from agent.i18n import Translator

DEFAULT_CONFIG = Path("/etc/camera-agent/config.yaml")

Command = Callable[[argparse.Namespace], int]


def environment_locale() -> str:
    """The language of the environment (LC_ALL, LC_MESSAGES, LANG, in POSIX order): for
    commands that have no config to take `agent.locale` from, or cannot read it."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "nl" if value.lower().startswith("nl") else "en"
    return "en"


def owner_translator(config: AgentConfig | None = None) -> Translator:
    """The owner's language: `agent.locale` from the config, else the environment's."""
    from agent.i18n import translator

    return translator(config.agent.locale if config is not None else environment_locale())


def load(path: Path, check_folders: bool = False) -> AgentConfig | int:
    """The config, or EX_CONFIG after listing its errors."""
    from agent.config import load_config  # lazily (agent/cli.py says why)

    try:
        return load_config(path, check_folders=check_folders)
    except ConfigError as exc:
        print_config_errors(path, exc)
        return EX_CONFIG


def print_config_errors(path: Path, exc: ConfigError) -> None:
    # The config could not be read, so its locale is unknown: the environment's language.
    _ = owner_translator()
    count = len(exc.errors)
    said = _.ngettext("{path}: {count} error", "{path}: {count} errors", count)
    print(said.format(path=path, count=count), file=sys.stderr)
    for line in exc.errors:
        print(f"  {line}", file=sys.stderr)


def with_config(run: Callable[[argparse.Namespace, AgentConfig], int]) -> Command:
    """A command that needs the config of `--config`: `run` is handed it once it loaded."""

    def command(args: argparse.Namespace) -> int:
        config = load(args.config)
        return config if isinstance(config, int) else run(args, config)

    return command


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value
