"""`camera-agent setup` offering the cameras discovery finds: a real WS-Discovery probe over
multicast between two network namespaces (a camera's LAN side and the agent's), the test
ONVIF device answering with its two profiles, real RTSP cameras behind its stream URIs,
and the wizard as a process fed its answers on stdin (`--discover` turns discovery on
for a pipe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.agent.setup.test_setup import check
from tests.support import REPO_ROOT
from tests.support.netns import DEVICE_ADDRESS, HostPair
from tests.support.onvif_device import DEVICE_PATH
from tests.support.rtsp import RtspCamera

USER = "onvif"
PASSWORD = "Onvif-pass:7"
DEVICE_URL = f"http://{DEVICE_ADDRESS}:8080{DEVICE_PATH}"
# Cameras answer a probe within half a second (WS-Discovery's APP_MAX_DELAY).
LISTEN_S = "1"
# A port nothing listens on in the camera's namespace: the hostile device's media service.
CLOSED_PORT = 9


@pytest.fixture
def pair() -> Iterator[HostPair]:
    hosts = HostPair.create()
    yield hosts
    hosts.close()


def start_device(pair: HostPair, *args: str) -> subprocess.Popen[str]:
    """The test ONVIF device with its discovery responder, in the camera's namespace."""
    proc = subprocess.Popen(
        pair.command(
            pair.device,
            sys.executable,
            "-m",
            "tests.support.onvif_device",
            "--host",
            DEVICE_ADDRESS,
            "--port",
            "8080",
            "--username",
            USER,
            "--password",
            PASSWORD,
            "--discovery",
            *args,
        ),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert json.loads(line) == {"url": DEVICE_URL}, line
    return proc


@pytest.fixture
def devices() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def setup_in(pair: HostPair, config: Path, answers: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANG": "C"}
    env.pop("LC_ALL", None)
    return subprocess.run(
        pair.command(
            pair.client,
            sys.executable,
            "-m",
            "agent",
            "setup",
            "--config",
            str(config),
            "--language",
            "en",
            "--discover",
            "--discover-seconds",
            LISTEN_S,
            "--probe-seconds",
            "3",
        ),
        input="\n".join(answers) + "\n",
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


# Up to the first camera, and after its location: the questions that do not change here.
BEFORE_CAMERAS = ["shop-1", "", "", "mqtts://registry.example.org", "", "front", ""]
AFTER_CAMERAS = ["", "", "", "", ""]  # footage space, police key, ntfy, owner page


def test_setup_offers_the_discovered_camera_and_writes_it_by_its_device(
    tmp_path: Path,
    pair: HostPair,
    devices: list[subprocess.Popen[str]],
    make_rtsp_camera: Callable[..., RtspCamera],
) -> None:
    on_lan = {"netns": pair.device, "address": DEVICE_ADDRESS, "user": USER, "password": PASSWORD}
    main = make_rtsp_camera(port=8554, path="/ch/101", **on_lan)
    sub = make_rtsp_camera(port=8555, path="/ch/102", **on_lan)
    devices.append(
        start_device(
            pair,
            "--main-uri",
            f"rtsp://{DEVICE_ADDRESS}:{main.port}/ch/101",
            "--sub-uri",
            f"rtsp://{DEVICE_ADDRESS}:{sub.port}/ch/102",
        )
    )
    config = tmp_path / "config.yaml"
    answers = [
        *BEFORE_CAMERAS,
        "",  # the camera found: number 1, the default
        USER,
        "not-the-password",  # refused: the list is offered again
        "1",
        USER,
        PASSWORD,
        "",  # it works: keep it
        "",  # no location
        "",  # no more cameras
        *AFTER_CAMERAS,
    ]
    done = setup_in(pair, config, answers)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Looking for ONVIF cameras on this network (1 s)" in out
    assert f"  1. {DEVICE_ADDRESS}  TestCam TD-1080" in out
    assert "  0. none of these: type a stream address" in out
    assert f"refused the user name '{USER}' or its password" in out
    assert f"{DEVICE_ADDRESS}  Camreg Test TD-1080, firmware 2.4.1" in out
    assert "profile main: 1920x1080 H264" in out and "profile sub: 640x360 H264" in out
    assert "Recorded: profile main (1920x1080)" in out
    assert "Analysed: profile sub (640x360)" in out
    assert "The camera works: no problems seen." in out
    assert PASSWORD not in out + done.stderr

    text = config.read_text()
    assert PASSWORD not in text
    (front,) = yaml.safe_load(text)["cameras"]
    password_file = Path(front.pop("password_file"))
    assert front == {
        "id": "front",
        "name": "front",
        "onvif": {"url": DEVICE_URL},
        "username": USER,
    }
    assert password_file.read_text() == PASSWORD + "\n"
    checked = check(config)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_hostile_device_is_shown_cut_and_without_escapes_and_leaves_the_manual_path(
    tmp_path: Path,
    pair: HostPair,
    devices: list[subprocess.Popen[str]],
    tmp_h264: Callable[..., Path],
) -> None:
    """Its announced name carries terminal escapes (set the window title, clear the
    screen) and 5,000 characters, its model 3,000; it answers discovery and the device
    service, but its media service is at a port where nothing listens."""
    escapes = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
    devices.append(
        start_device(
            pair,
            "--main-uri",
            f"rtsp://{DEVICE_ADDRESS}:8554/ch/101",
            "--sub-uri",
            f"rtsp://{DEVICE_ADDRESS}:8554/ch/102",
            "--name",
            escapes + "N" * 5000,
            "--model",
            "M" * 3000,
            "--media-url",
            f"http://{DEVICE_ADDRESS}:{CLOSED_PORT}/onvif/media_service",
        )
    )
    clip = tmp_h264(4, name="front.mp4")
    config = tmp_path / "config.yaml"
    answers = [
        *BEFORE_CAMERAS,
        "7",  # not on the list
        "1",
        USER,
        PASSWORD,
        str(clip),  # the manual path: a stream address typed by hand
        "",  # it works: keep it
        "",  # no location
        "",  # no more cameras
        *AFTER_CAMERAS,
    ]
    done = setup_in(pair, config, answers)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "\x1b" not in out and "\x07" not in out
    (listed,) = [line for line in out.splitlines() if line.startswith(f"  1. {DEVICE_ADDRESS}")]
    assert listed.startswith(f"  1. {DEVICE_ADDRESS}  ?]0;owned??[2J?[31mNNN")
    assert listed.endswith("…") and len(listed) < 100, listed
    assert max(len(line) for line in out.splitlines()) < 400
    assert "Give a number from 0 to 1." in out
    assert f"Cannot read the streams of {DEVICE_ADDRESS}: cannot be reached" in out
    assert "Type its stream address instead" in out
    assert "Stream address, e.g." in out.split("Type its stream address instead")[1]
    (front,) = yaml.safe_load(config.read_text())["cameras"]
    assert front["url"] == str(clip) and "onvif" not in front


def test_with_no_camera_answering_setup_says_so_and_asks_for_the_address(
    tmp_path: Path, pair: HostPair, tmp_h264: Callable[..., Path]
) -> None:
    clip = tmp_h264(4, name="front.mp4")
    config = tmp_path / "config.yaml"
    answers = [*BEFORE_CAMERAS, str(clip), "", "", "", *AFTER_CAMERAS]
    done = setup_in(pair, config, answers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No ONVIF camera answered" in done.stdout
    assert "ONVIF cameras found" not in done.stdout
    (front,) = yaml.safe_load(config.read_text())["cameras"]
    assert front["url"] == str(clip)
