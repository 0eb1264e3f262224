"""bench/faults.py as an owner of the bench runs it: the scenario list and a wrong name.

The scenarios themselves run here in their short form as the end-to-end tests of issue 15
(tests/agent/recording/test_disk_full.py, tests/agent/test_state_files.py,
tests/agent/recording/test_clock_step.py, tests/agent/recording/test_odd_streams.py,
tests/agent/streams/test_garbage_cameras.py); the bench runs them at full length.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO_ROOT

SCENARIOS = {"clock_step", "disk_full", "garbage_cameras", "odd_streams", "state_files"}


def test_a_wrong_scenario_name_exits_2_naming_every_scenario() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "bench/faults.py", "--only", "disk_full,no_such_fault"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert line.startswith("faults: no scenario no_such_fault; there are: "), line
    assert set(line.rsplit(": ", 1)[1].split(", ")) == SCENARIOS
