"""An agent without ONVIF cameras does not load the ONVIF client: zeep, lxml and aiohttp
are about 21 MB of resident memory (bench/cpu_per_camera.py's 150 MB for 8 cameras)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO_ROOT

CHECK = """
import sys
import agent.app, agent.cli
loaded = sorted(m for m in ("zeep", "onvif", "lxml", "aiohttp", "wsdiscovery") if m in sys.modules)
print(",".join(loaded))
from agent.onvif import stream_uri
print("zeep" in sys.modules)
"""


def test_the_onvif_client_loads_only_when_asked_for() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded, after_use = done.stdout.splitlines()
    assert loaded == ""  # nothing of the ONVIF stack by importing the daemon and the CLI
    assert after_use == "True"  # and the names still work where a camera needs them
