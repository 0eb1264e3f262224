"""`camera-agent discover` as an owner runs it: a real WS-Discovery probe over multicast
between two network namespaces (a camera's and the agent's), the test ONVIF device
answering, the command a process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.onvif import MAX_DEVICES
from contract.exit_codes import EX_NOPERM, EX_UNAVAILABLE
from tests.support import REPO_ROOT
from tests.support.netns import DEVICE_ADDRESS, HostPair
from tests.support.onvif_device import DEVICE_PATH

USER = "onvif"
PASSWORD = "Onvif-pass:7"
MAIN_URI = f"rtsp://{DEVICE_ADDRESS}:554/Streaming/Channels/101"
SUB_URI = f"rtsp://{DEVICE_ADDRESS}:554/Streaming/Channels/102"
DEVICE_URL = f"http://{DEVICE_ADDRESS}:8080{DEVICE_PATH}"
# Probes are answered within half a second (WS-Discovery's APP_MAX_DELAY); one second of
# listening keeps each run short.
LISTEN_S = "1"
START_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def pair() -> Iterator[HostPair]:
    hosts = HostPair.create()
    yield hosts
    hosts.close()


@pytest.fixture(scope="module")
def camera(pair: HostPair) -> Iterator[None]:
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
            "--main-uri",
            MAIN_URI,
            "--sub-uri",
            SUB_URI,
            "--discovery",
        ),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert json.loads(line) == {"url": DEVICE_URL}, line
    yield
    proc.terminate()
    proc.wait(timeout=10)


def discover(pair: HostPair, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pair.command(
            pair.client, sys.executable, "-m", "agent", "discover", "--timeout", LISTEN_S, *args
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "onvif.pass"
    path.write_text(PASSWORD + "\n")
    return path


def test_discover_shows_the_camera_and_its_two_profiles_with_credentials(
    pair: HostPair, camera: None, password_file: Path
) -> None:
    result = discover(pair, "--username", USER, "--password-file", str(password_file))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Found 1 ONVIF device:" in out
    assert f"{DEVICE_ADDRESS}  Camreg Test TD-1080, firmware 2.4.1" in out
    assert f"device: {DEVICE_URL}" in out
    assert f"profile main: 1920x1080 H264  {MAIN_URI}" in out
    assert f"profile sub: 640x360 H264  {SUB_URI}" in out
    assert PASSWORD not in out + result.stderr


def test_without_credentials_the_camera_is_listed_with_what_it_needs(
    pair: HostPair, camera: None
) -> None:
    result = discover(pair)
    assert result.returncode == 0, result.stderr
    assert f"{DEVICE_ADDRESS}  TestCam TD-1080" in result.stdout  # from its scopes
    assert "needs a user name and password" in result.stdout
    assert "profile" not in result.stdout.replace("Profiles", "")


def test_a_wrong_password_says_so_and_exits_no_permission(
    pair: HostPair, camera: None, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not-it\n")
    result = discover(pair, "--username", USER, "--password-file", str(wrong))
    assert result.returncode == EX_NOPERM
    assert f"refused the user name '{USER}' or its password" in result.stdout


def test_json_is_one_document_of_the_documented_shape(
    pair: HostPair, camera: None, password_file: Path
) -> None:
    result = discover(pair, "--username", USER, "--password-file", str(password_file), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    (device,) = document["devices"]
    assert device["address"] == DEVICE_ADDRESS
    assert device["device_url"] == DEVICE_URL
    assert (device["manufacturer"], device["model"], device["firmware"]) == (
        "Camreg Test",
        "TD-1080",
        "2.4.1",
    )
    assert device["name"] == "TestCam"
    assert device["needs_credentials"] is False
    assert device["error"] is None
    assert abs(device["clock_offset_s"]) < 5
    assert device["profiles"] == [
        {
            "token": "main",
            "name": "mainStream",
            "width": 1920,
            "height": 1080,
            "encoding": "H264",
            "uri": MAIN_URI,
        },
        {
            "token": "sub",
            "name": "subStream",
            "width": 640,
            "height": 360,
            "encoding": "H264",
            "uri": SUB_URI,
        },
    ]


def test_no_device_exits_unavailable_with_what_to_check() -> None:
    empty = HostPair.create()
    try:
        result = discover(empty)
    finally:
        empty.close()
    assert result.returncode == EX_UNAVAILABLE
    assert result.stdout == ""
    assert "No ONVIF device answered" in result.stderr
    assert "VLAN" in result.stderr and "cameras[].onvif.url" in result.stderr


@pytest.fixture
def hostile() -> Iterator[HostPair]:
    """A host answering every probe with a lure to another host, a "billion laughs" of
    entity expansion, garbage and a flood of 200 fake devices (tests/support)."""
    pair = HostPair.create()
    proc = subprocess.Popen(
        pair.command(
            pair.device, sys.executable, "-m", "tests.support.hostile_discovery", DEVICE_ADDRESS
        ),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield pair
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        pair.close()


def test_a_hostile_responder_is_reported_and_discover_stays_bounded(hostile: HostPair) -> None:
    """Discover ends in time, does not contact the lure and reports it by address."""
    began = time.monotonic()
    result = discover(hostile, "--json")
    took = time.monotonic() - began
    assert took < 30, took
    devices = json.loads(result.stdout)["devices"]
    assert 0 < len(devices) <= MAX_DEVICES
    (lure,) = [d for d in devices if d["name"] == "Lure"]
    assert lure["address"] == DEVICE_ADDRESS
    assert lure["device_url"] is None
    assert "not on its own host" in lure["error"] and "not contacted" in lure["error"]


# The probe's listening time, and what stopping the library's threads may add to it.
LISTEN_ONLY_S = 1.0
STOP_SLACK_S = 1.5


def test_entity_expansion_neither_holds_discover_past_its_time_nor_drowns_the_others(
    hostile: HostPair,
) -> None:
    """The library parses each answer with minidom, which expands a billion laughs for ~3 s
    of CPU before expat gives up: with it, listening for 1 s took 3.9 s and heard 1 of the
    flood's devices. Answers that declare a document type (SOAP forbids them) are dropped
    unparsed, so listening takes its time and hears the flood up to what it keeps."""
    timed = (
        "import json, time\n"
        "from agent.onvif import discover\n"
        "import agent.onvif.discovery\n"
        "began = time.monotonic()\n"
        f"found = discover({LISTEN_ONLY_S})\n"
        "print(json.dumps({'took': time.monotonic() - began, 'found': len(found)}))\n"
    )
    result = subprocess.run(
        hostile.command(hostile.client, sys.executable, "-c", timed),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    heard = json.loads(result.stdout)
    assert heard["took"] < LISTEN_ONLY_S + STOP_SLACK_S, heard
    assert heard["found"] >= 10, heard
