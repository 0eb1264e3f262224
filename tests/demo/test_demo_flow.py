"""README's first command, the demo, runs the whole system and ends with verified evidence:
an order, and a voluntary request that the owner approves (here on the command line, as
DEMO_APPROVE_WITH=cli does; tests/demo/test_demo_owner.py approves it on the owner page)."""

from __future__ import annotations

import os
import subprocess

from tests.support import REPO_ROOT, free_port

DEMO_TIMEOUT_S = 180


def test_the_demo_orders_footage_and_the_registry_verifies_it() -> None:
    env = {
        **os.environ,
        "DEMO_SKIP_INSTALL": "1",  # the test command has installed everything already
        "DEMO_ORDER_AFTER": "20",
        "DEMO_ORDER_MINUTES": "1",
        "DEMO_EXIT_AFTER_ORDER": "1",
        "DEMO_APPROVE_WITH": "cli",
        "DEMO_BROKER_PORT": str(free_port()),
        "DEMO_CAMERA_PORT": str(free_port()),
        "DEMO_REGISTRY_PORT": str(free_port()),
        "DEMO_OWNER_PORT": str(free_port()),
        "DEMO_NOTIFY_PORT": str(free_port()),
    }
    demo = subprocess.run(
        ["bash", "demo/demo.sh"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    assert "police:   officer / " in output  # the logins the owner of the demo needs
    assert "owner's password: " in output
    assert "agent: completed" in output, output
    assert "registry: evidence VERIFIED (order DEMO-001)" in output, output
    assert "owner: approves req-" in output, output
    assert "registry: evidence VERIFIED (voluntary request DEMO-002)" in output, output
    assert "notification: Police request DEMO-002: footage delivered" in output, output
    assert "demo stopped" in output
