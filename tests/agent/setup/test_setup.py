"""`camera-agent setup`: answers on stdin, a live probe of each camera, a config `check` accepts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contract.jws import thumbprint
from tests.support import REPO_ROOT, free_port
from tests.support.rtsp import RtspCamera

PASSWORD = "s3cret-Pa55"
PAGE_PASSWORD = "a long page password"


def setup(config: Path, answers: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANG": "C"}
    env.pop("LC_ALL", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "setup",
            "--config",
            str(config),
            "--probe-seconds",
            "3",
            *args,
        ],
        input="\n".join(answers) + "\n",
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "check", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_setup_in_dutch_probes_each_camera_and_writes_a_valid_config(
    tmp_path: Path,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_h264: Callable[..., Path],
) -> None:
    camera = make_rtsp_camera(user="admin", password=PASSWORD)
    clip = tmp_h264(4, name="achter.mp4")
    police_key = Ed25519PrivateKey.generate().public_key()
    police_pem = tmp_path / "download" / "politie.pem"
    police_pem.parent.mkdir()
    police_pem.write_bytes(police_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    not_a_key = tmp_path / "download" / "readme.txt"
    not_a_key.write_text("no key here\n")
    nowhere = f"rtsp://127.0.0.1:{free_port()}/stream"
    config = tmp_path / "etc" / "config.yaml"
    answers = [
        "nl",  # the language, asked first
        "winkel-7",
        "",  # the state folder: the default beside the config
        "",  # no registry enrolment
        "mqtt://127.0.0.1:1883",
        "",  # no broker login
        # camera 1: a wrong address first, then the real one
        "voordeur",
        "Voordeur",
        nowhere,
        "admin",
        PASSWORD,
        "",  # nothing arrived: enter the address again (the default)
        f"rtsp://127.0.0.1:{camera.port}/cam",
        "admin",
        PASSWORD,
        "",  # it works: keep it (the default)
        "52.9925, 6.5649",
        "180",
        "90",
        "25",
        "j",  # another camera
        "achter",
        "",  # its name: the id
        str(clip),
        "",
        "",  # no location
        "",  # no more cameras
        "20GB",
        str(tmp_path / "download" / "missing.pem"),  # a police key file that is not there
        str(not_a_key),  # nor a key
        str(police_pem),
        "j",  # the fingerprint is the one the police published
        "http://evidence.example.org/files/",  # not https: refused
        "https://evidence.example.org/files/",
        "https://ntfy.sh/",  # no topic
        "https://ntfy.sh/winkel-7-x7q",
        PAGE_PASSWORD,
        PAGE_PASSWORD,
    ]
    done = setup(config, answers, "--probe-seconds", "7")  # long enough to measure the rate
    assert done.returncode == 0, done.stdout + done.stderr

    out = done.stdout
    assert "Taal / Language" in out and "Naam van deze installatie" in out
    assert "Er kwam geen beeld binnen." in out
    assert "klopt het adres, en staat de camera aan?" in out
    assert "De camera werkt: geen problemen gezien." in out
    assert "beeld 640x360 (h264), 15 beelden per seconde" in out, [
        line for line in out.splitlines() if "beeld " in line
    ]
    assert PASSWORD not in out
    assert "missing.pem niet lezen" in out
    assert "readme.txt is geen publieke sleutel van de politie" in out
    assert f"De vingerafdruk: {thumbprint(police_key)}" in out
    assert "must be an https:// URL" in out and "must name the topic" in out

    text = config.read_text()
    assert PASSWORD not in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    written = yaml.safe_load(text)
    assert written["agent"] == {
        "id": "winkel-7",
        "data_dir": str(tmp_path / "etc" / "data"),
        "locale": "nl",
    }
    front, back = written["cameras"]
    assert front["url"] == f"rtsp://127.0.0.1:{camera.port}/cam" and front["username"] == "admin"
    assert front["location"] == {
        "lat": 52.9925,
        "lon": 6.5649,
        "bearing_deg": 180,
        "fov_deg": 90,
        "range_m": 25,
    }
    secret = Path(front["password_file"])
    assert secret.read_text() == PASSWORD + "\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert back == {"id": "achter", "name": "achter", "url": str(clip)}
    (pinned,) = written["police"]["keys"]
    assert Path(pinned["file"]).parent == config.parent  # a copy: the download may go
    assert Path(pinned["file"]).read_bytes() == police_pem.read_bytes()
    assert written["police"]["upload_allow"] == ["https://evidence.example.org/files/"]
    assert written["notifications"] == {"ntfy": {"url": "https://ntfy.sh/winkel-7-x7q"}}
    assert written["owner_page"] == {"enabled": True}
    assert PAGE_PASSWORD not in "".join(
        p.read_text(errors="replace") for p in (tmp_path / "etc" / "data").rglob("*") if p.is_file()
    )

    checked = check(config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "in orde (2 camera's, agent winkel-7)" in checked.stdout


def test_credentials_typed_into_the_address_are_taken_out(
    tmp_path: Path, make_rtsp_camera: Callable[..., RtspCamera]
) -> None:
    camera = make_rtsp_camera(user="admin", password=PASSWORD)
    config = tmp_path / "config.yaml"
    answers = [
        "shop-1",
        "",
        "",
        "mqtts://registry.example.org",
        "",
        "front",
        "",
        f"rtsp://admin:{PASSWORD}@127.0.0.1:{camera.port}/cam",
        "",  # it works
        "",  # no location
        "",  # no more cameras
        "",  # 50GB
        "",  # no police key
        "",  # no notifications
        "",  # no owner page
    ]
    done = setup(config, answers, "--language", "en")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The user name and password were taken out of the address" in done.stdout
    assert "The camera works" in done.stdout
    text = config.read_text()
    assert PASSWORD not in text and "admin@" not in text
    (front,) = yaml.safe_load(text)["cameras"]
    assert front["username"] == "admin"
    assert Path(front["password_file"]).read_text() == PASSWORD + "\n"
    assert check(config).returncode == 0


def test_an_existing_config_is_kept_unless_the_owner_says_otherwise(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("# the owner's own\n")
    done = setup(config, [""], "--language", "en")
    assert done.returncode == 0 and "Kept; nothing was changed." in done.stdout
    assert config.read_text() == "# the owner's own\n"


def test_stopping_half_way_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    done = setup(config, ["en", "shop-1"])
    assert done.returncode == 1 and "Setup stopped; nothing was written." in done.stderr
    assert not config.exists()
