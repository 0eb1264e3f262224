"""The demo from the owner's side, in a real headless Chromium: log in to the owner page
with the printed password, see the demo camera, cover it and get the notification, then
approve the officer's voluntary request on the page and see its evidence verified. Ctrl-C
stops the demo and leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

import pytest
from playwright.sync_api import Page, expect

from tests.support import REPO_ROOT, eventually, free_port, port_accepts, wait_port_closed
from tests.support.browser import chromium

# A minute of output at most between the steps: the order waits DEMO_ORDER_AFTER, then
# two requests of a minute of 720p footage each are exported and uploaded.
STEP_TIMEOUT_S = 90.0
# Ctrl-C stops every part of the demo in about 5 s on an idle 2-core machine; under the
# test suite's load (four workers, a browser) once more than 30 s were seen.
STOP_TIMEOUT_S = 60.0
WORKING = ("ok", "degraded")
UNTIL_S = 20.0
# The page and the demo's processes are asked twice a second: a browser query is not free.
UNTIL_POLL_S = 0.5


@dataclass
class DemoOutput:
    """The demo's output (stdout and stderr), line by line as it arrives."""

    lines: list[str] = field(default_factory=list)
    ended: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def mark(self) -> int:
        """Where the output is now: `wait_for(..., after=mark)` looks only at what follows."""
        with self._changed:
            return len(self.lines)

    def wait_for(
        self, pattern: str, timeout: float = STEP_TIMEOUT_S, after: int = 0
    ) -> re.Match[str]:
        """The first line matching the regular expression; fails with the output so far."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if found := compiled.search(line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    break
                self._changed.wait(left)
        pytest.fail(f"the demo printed no line matching {pattern!r}:\n{self.text}")


@dataclass(frozen=True)
class Demo:
    process: subprocess.Popen[str]
    output: DemoOutput
    ports: tuple[int, ...]
    owner_url: str

    def stop(self) -> int:
        """Ctrl-C, as in a terminal: SIGINT to the demo's process group; its exit status.
        Fails naming what of the demo still runs when it does not stop in time."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            left = subprocess.run(
                ["ps", "-o", "pid,etime,stat,args", "-s", str(self.process.pid)],
                capture_output=True,
                text=True,
            ).stdout
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(
                f"the demo did not stop within {STOP_TIMEOUT_S:.0f} s of Ctrl-C; still "
                f"running:\n{left}\nits output:\n{self.output.text[-4000:]}"
            )


@contextmanager
def demo_running() -> Iterator[Demo]:
    ports = {name: free_port() for name in ("BROKER", "CAMERA", "REGISTRY", "OWNER", "NOTIFY")}
    env = {
        **os.environ,
        "DEMO_SKIP_INSTALL": "1",  # the test command has installed everything already
        "DEMO_ORDER_AFTER": "20",
        "DEMO_ORDER_MINUTES": "1",
        "DEMO_APPROVE_WITH": "page",
        **{f"DEMO_{name}_PORT": str(port) for name, port in ports.items()},
    }
    env.pop("DEMO_EXIT_AFTER_ORDER", None)
    process = subprocess.Popen(
        ["bash", "demo/demo.sh"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    assert process.stdout is not None
    output = DemoOutput()
    # A daemon thread: should a stray process of the demo hold the pipe open, the reader
    # must not keep the test session from ending.
    reader = threading.Thread(
        target=output.read, args=(process.stdout,), name="demo-output", daemon=True
    )
    reader.start()
    demo = Demo(process, output, tuple(ports.values()), f"http://127.0.0.1:{ports['OWNER']}")
    try:
        yield demo
    finally:
        if process.poll() is None:
            try:
                demo.stop()
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Whatever of the demo's group is left (the test fails on it where it matters)
        # goes, or it would hold the output pipe open and the reader with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        reader.join(STOP_TIMEOUT_S)
        if not reader.is_alive():  # else close() would wait for the reader's lock
            process.stdout.close()


def _tell_camera(control: str, command: str) -> None:
    """What `echo covered > camera.ctl` does; never blocks (the camera holds the pipe open)."""
    descriptor = os.open(control, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(descriptor, f"{command}\n".encode())
    finally:
        os.close(descriptor)


def _group_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def _camera_status(page: Page) -> str | None:
    page.reload()
    return page.locator('[data-camera="front"]').get_attribute("data-status")


@pytest.mark.timeout(180)
def test_the_owner_gets_the_notice_and_approves_the_request_on_the_owner_page() -> None:
    with demo_running() as demo, chromium() as browser:
        out = demo.output
        password = out.wait_for(r"owner's password: (\S+)", timeout=60).group(1)
        control = out.wait_for(r"echo covered > (\S+/camera\.ctl)").group(1)
        assert "police:   officer / " in out.text  # the logins of the demo, side by side
        eventually(
            lambda: port_accepts(int(demo.owner_url.rsplit(":", 1)[1])),
            "the owner page",
            UNTIL_S,
            UNTIL_POLL_S,
        )

        page = browser.new_page()
        page.goto(demo.owner_url + "/")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        front = page.locator('[data-camera="front"]')
        expect(front.locator("h2")).to_contain_text("Demo camera")

        # The agent may have said "no picture arrives" while it connected (it allows 5 s);
        # the demo's short min_interval lets the next notice through soon after.
        eventually(lambda: _camera_status(page) in WORKING, "the camera to work", 30, UNTIL_POLL_S)
        covered = out.mark()
        _tell_camera(control, "covered")
        notice = out.wait_for(
            r"^notification: Camera Demo camera \(front\) is not working — .*lens is covered.*",
            after=covered,
        )
        assert "What to do: remove what covers the lens" in notice.group(0), notice.group(0)
        eventually(
            lambda: _camera_status(page) == "failed",
            "the page to show the camera failed",
            UNTIL_S,
            UNTIL_POLL_S,
        )
        expect(front.locator(".status")).to_have_text("no usable picture")
        expect(front.locator('[data-problem="covered"]')).to_be_visible()
        uncovered = out.mark()
        _tell_camera(control, "clear")
        out.wait_for(r"^notification: Camera Demo camera \(front\) works again", after=uncovered)

        # The order goes through by the agent's policy; the voluntary request waits for us.
        out.wait_for(r"registry: evidence VERIFIED \(order DEMO-001\)")
        waiting = out.wait_for(r"police: (req-\w+) waits for the owner, .* page (\S+)$")
        request_id, where = waiting.group(1), waiting.group(2)
        assert where == demo.owner_url + "/requests"
        out.wait_for(r"^notification: Police request DEMO-002 needs your decision")
        page.goto(where)
        card = page.locator(f'[data-request="{request_id}"]')
        expect(card.locator(".state")).to_have_text("waits for your decision")
        card.get_by_role("button", name="Approve").click()
        expect(card).not_to_have_attribute("data-state", "awaiting_owner")

        out.wait_for(r"registry: evidence VERIFIED \(voluntary request DEMO-002\)")
        out.wait_for(r"^notification: Police request DEMO-002: footage delivered")
        page.goto(where)
        expect(card).to_have_attribute("data-state", "completed")
        assert "agent: completed" in out.text

        assert demo.stop() == 0, out.text
        out.wait_for(r"^demo stopped; its files are in ", timeout=5)
        eventually(
            lambda: _group_gone(demo.process.pid),
            "every process of the demo to end",
            10,
            UNTIL_POLL_S,
        )
        for port in demo.ports:
            assert wait_port_closed(port), f"port {port} still open after the demo stopped"
