"""systemd/install.sh into a scratch root: install, then upgrade, keeping the owner's files.

systemd is not PID 1 here, so `--root` stands in for / and systemctl is not run; the
installed unit is checked with `systemd-analyze verify --root`, which also requires the
ExecStart program to exist in that root."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from tests.support.agent_proc import write_config

INSTALLER = REPO_ROOT / "systemd" / "install.sh"
UNIT = REPO_ROOT / "systemd" / "camera-agent.service"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as a wheel, built once: each install then only unpacks it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO_ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("camera_agent-*.whl")
    return built


def install(root: Path, wheel: Path, *extra: str, pythonpath: str | None = None) -> str:
    env = {**os.environ, "CAMERA_AGENT_PIP_ARGS": "--no-deps"}
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        # The test's dependencies, so the installed `check` runs without a download.
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        ["bash", str(INSTALLER), "--root", str(root), "--source", str(wheel), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def snapshot(*paths: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


def test_the_wheel_holds_the_programs_and_not_the_demo(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        folders = {Path(name).parts[0] for name in archive.namelist()}
        demo = [name for name in archive.namelist() if "demo" in Path(name).parts]
    assert {folder for folder in folders if not folder.endswith(".dist-info")} == {
        "agent",
        "contract",
        "registry",
    }
    # setuptools packs what is in build/lib, also what an older checkout left there.
    assert demo == [], "the demo is the checkout's; a stale build/lib? (rm -rf build)"


@pytest.mark.timeout(600)
def test_install_then_upgrade_keeps_config_keys_index_and_footage(
    tmp_path: Path, wheel: Path
) -> None:
    root = tmp_path / "root"
    out = install(root, wheel, "--no-setup")

    venv = root / "opt/camera-agent/venv"
    assert venv.is_symlink() and os.readlink(venv).startswith("venv-")
    version = subprocess.run(
        [str(venv / "bin/camera-agent"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("camera-agent ")
    unit = root / "etc/systemd/system/camera-agent.service"
    assert unit.read_bytes() == UNIT.read_bytes()
    assert (root / "opt/camera-agent/docs/service.md").is_file()
    etc = root / "etc/camera-agent"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o755
    # The state directory is laid out as systemd does for DynamicUser=yes.
    state = root / "var/lib/camera-agent"
    assert state.is_symlink() and os.readlink(state) == "private/camera-agent"
    assert stat.S_IMODE((root / "var/lib/private").stat().st_mode) == 0o700
    assert stat.S_IMODE(state.resolve().stat().st_mode) == 0o700
    assert "no config yet" in out and "camera-agent setup" in out

    # What an owner has after a while: a config, the device key, index, audit log, footage.
    config = write_config(
        etc / "config.yaml",
        broker_url="mqtt://127.0.0.1:1",
        cameras=[{"id": "front", "url": "rtsp://192.0.2.1/stream"}],
        agent={"data_dir": str(state)},
        storage={"path": str(state / "footage")},
    )
    config.chmod(0o644)
    kept = [config]
    for name, content in (
        ("keys/device.key", b"-----BEGIN PRIVATE KEY-----\nmarker\n"),
        ("index.sqlite3", b"SQLite format 3\x00marker"),
        ("audit.jsonl", b'{"seq":1}\n'),
        ("footage/front/20261127T200000Z.ts", b"\x47" * 188),
    ):
        path = state / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        kept.append(path)
    before = snapshot(*kept)
    first_venv = os.readlink(venv)

    out = install(root, wheel, pythonpath=sysconfig.get_paths()["purelib"])

    assert "valid (1 camera, agent shop-42)" in out  # the installed `check` ran on the config
    assert snapshot(*kept) == before
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    assert os.readlink(venv) != first_venv and (venv / "bin/camera-agent").exists()
    # The previous version stays beside it, to go back by hand.
    assert (root / "opt/camera-agent" / first_venv).is_dir()
    assert unit.read_bytes() == UNIT.read_bytes()
    assert "systemctl not run" in out

    # The installed unit loads, and its ExecStart exists in this root.
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is not installed"
    units = root / "usr/lib/systemd"
    units.mkdir(parents=True)
    (units / "system").symlink_to("/usr/lib/systemd/system")
    verified = subprocess.run(
        [analyze, "verify", f"--root={root}", "camera-agent.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line for line in verified.stderr.splitlines() if line.startswith("camera-agent.service")
    ]
    assert verified.returncode == 0 and complaints == [], verified.stderr


def test_installer_refuses_unknown_options() -> None:
    done = subprocess.run(
        ["bash", str(INSTALLER), "--bogus"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 64 and "unknown option --bogus" in done.stderr
