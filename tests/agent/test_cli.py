"""The start of `camera-agent`: every command module is imported before the command is
known, so none may import a third-party library at its top (agent/cli.py says why)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO_ROOT

# The standard library alone: no site-packages (-S), no environment (-I), only this tree.
BARE = "import sys; sys.path.insert(0, sys.argv[1]); from agent.cli import main; main(sys.argv[2:])"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--version"], "camera-agent "),
        (["--help"], "usage: camera-agent "),
        (["footage", "export", "--help"], "usage: camera-agent footage export "),
    ],
)
def test_version_and_help_answer_with_the_standard_library_alone(
    args: list[str], said: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", BARE, str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(said)
