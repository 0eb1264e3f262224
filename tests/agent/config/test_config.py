"""The config file: what an owner sees for a good file and for each kind of mistake."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from agent.config import (
    AgentConfig,
    CameraConfig,
    DirectorySettings,
    PlaybackSettings,
    RecordSettings,
    load_config,
    redact_url,
)
from contract.durations import parse_duration, parse_size
from contract.errors import ConfigError
from tests.support import REPO_ROOT

EXAMPLE = REPO_ROOT / "config.example.yaml"

MINIMAL = """\
agent:
  id: shop-42
registry:
  broker: mqtt://localhost
cameras:
  - id: front
    url: rtsp://cam.local/stream
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> AgentConfig:
    return load_config(write(tmp_path, text))


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.errors


def test_example_config_loads_as_shipped() -> None:
    config = load_config(EXAMPLE)

    assert config.agent.id == "shop-42"
    assert config.registry.tls and config.registry.port == 8883
    assert config.police.max_window == 3600
    assert config.storage.max_bytes == 50 * 10**9
    camera = config.cameras[0]
    assert camera.id == "front"
    assert camera.location is not None and camera.location.bearing_deg == 180
    assert camera.recording == RecordSettings(segment=60, retention=7 * 86400)


def test_example_documents_every_key() -> None:
    """Every key of the config contract appears in the example, set or commented out."""
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = [
        "id", "data_dir", "locale", "broker", "ca_file", "client_cert", "client_key",
        "username", "password_file", "password_credential", "topic_prefix",
        "health_interval", "require_sync", "keys", "upload_allow", "max_window", "consent",
        "owner_timeout", "upload_rate_limit", "path", "max_bytes", "min_free_bytes", "name",
        "url", "analysis_url", "onvif", "rtsp_transport", "location", "expect",
        "analysis_interval",
        "recording",
        "pattern", "segment", "retention",
    ]  # fmt: skip
    missing = [key for key in keys if f"{key}:" not in text]
    assert missing == []


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)

    assert config.agent.locale == "en"
    assert config.agent.data_dir == Path("/var/lib/camera-agent")
    assert config.registry.host == "localhost"
    assert config.registry.port == 1883
    assert not config.registry.tls
    assert config.registry.topic_prefix == "camreg/v1"
    assert config.registry.health_interval == 60
    assert config.clock.require_sync
    assert config.clock.camera_drift_limit == 10
    assert config.police.keys == []
    assert config.police.consent.order == "auto"
    assert config.police.consent.voluntary == "ask"
    assert config.police.owner_timeout == 72 * 3600
    assert config.police.upload_rate_limit == 2_000_000
    assert config.storage.min_free_bytes == 2 * 10**9
    camera = config.cameras[0]
    assert camera.name == "front"
    assert camera.rtsp_transport == "tcp"
    assert camera.analysis_interval == 10
    assert camera.expect.min_fps == 5 and camera.expect.min_width == 640
    assert camera.location is None
    assert isinstance(camera.recording, RecordSettings)


# (yaml text, one expected error line) — each asserts key path, message and YAML line.
ERROR_CASES = {
    "wrong type: number": (
        MINIMAL + "    location: {lat: north, lon: 5}\n",
        "cameras[0].location.lat: must be a number (line 8)",
    ),
    "wrong type: integer": (
        MINIMAL + "    expect:\n      min_width: 12.5\n",
        "cameras[0].expect.min_width: must be an integer (line 9)",
    ),
    "wrong type: boolean": (
        MINIMAL + "clock:\n  require_sync: maybe\n",
        "clock.require_sync: must be true or false (line 9)",
    ),
    "wrong type: list": (
        MINIMAL.replace("cameras:\n  - id: front\n    url: rtsp://cam.local/stream\n", "")
        + "cameras: {id: front}\n",
        "cameras: must be a list (line 5)",
    ),
    "wrong type: mapping": (
        MINIMAL + "clock: yes\n",
        "clock: must be a mapping (key: value) (line 8)",
    ),
    "wrong type: text": (
        MINIMAL + "    name: [a, b]\n",
        "cameras[0].name: must be text (line 8)",
    ),
    "missing camera url": (
        MINIMAL + "  - id: back\n    name: Back door\n",
        "cameras[1].url: missing: give url (the stream) or onvif (the camera's ONVIF device "
        "address, see docs/onvif.md) (line 8)",
    ),
    "missing section": (
        "agent: {id: shop-42}\ncameras: [{id: front, url: x.mp4}]\n",
        "registry: missing (required) (line 1)",
    ),
    "no cameras": (
        "agent: {id: shop-42}\nregistry: {broker: mqtt://h}\ncameras: []\n",
        "cameras: must not be empty (line 3)",
    ),
    "latitude out of range": (
        MINIMAL + "    location:\n      lat: 123\n      lon: 6.5\n",
        "cameras[0].location.lat: must be between -90 and 90 (line 9)",
    ),
    "longitude out of range": (
        MINIMAL + "    location: {lat: 52, lon: -181}\n",
        "cameras[0].location.lon: must be between -180 and 180 (line 8)",
    ),
    "field of view out of range": (
        MINIMAL + "    location: {lat: 52, lon: 6, fov_deg: 0}\n",
        "cameras[0].location.fov_deg: must be between 1 and 180 (line 8)",
    ),
    "not a finite number": (
        MINIMAL + "    expect: {min_fps: .nan}\n",
        "cameras[0].expect.min_fps: must be a finite number (line 8)",
    ),
    "duplicate camera ids": (
        MINIMAL + "  - id: back\n    url: rtsp://b/s\n  - id: front\n    url: rtsp://c/s\n",
        "cameras[2].id: duplicate camera id 'front' (also cameras[0]) (line 10)",
    ),
    "bad camera id": (
        MINIMAL.replace("id: front", "id: Front Door"),
        "cameras[0].id: must be 1 to 64 characters: lower-case letters a-z, digits, '-' or '_'"
        " (line 6)",
    ),
    "unknown key": (
        MINIMAL + "    colour: red\n",
        "cameras[0].colour: unknown key (line 8)",
    ),
    "unknown top-level key": (
        "extra: 1\n" + MINIMAL,
        "extra: unknown key (line 1)",
    ),
    "unknown locale": (
        MINIMAL.replace("id: shop-42", "id: shop-42\n  locale: de"),
        "agent.locale: must be 'nl' or 'en' (line 3)",
    ),
    "password inline": (
        MINIMAL + "    username: admin\n    password: hunter2\n",
        "cameras[0].password: unknown key; a password never goes in the config: "
        "use password_file or password_credential (a systemd credential) (line 9)",
    ),
    "broker password inline": (
        MINIMAL.replace("broker: mqtt://localhost", "broker: mqtt://localhost\n  password: x"),
        "registry.password: unknown key; a password never goes in the config: "
        "use password_file or password_credential (a systemd credential) (line 5)",
    ),
    "duplicate yaml key": (
        MINIMAL + "    url: rtsp://other/stream\n",
        "cameras[0]: duplicate key 'url' (line 8)",
    ),
    "bad broker scheme": (
        MINIMAL.replace("mqtt://localhost", "https://registry.example.org"),
        "registry.broker: must start with mqtt:// or mqtts://, e.g. mqtts://registry.example.org"
        " (line 4)",
    ),
    "broker with path": (
        MINIMAL.replace("mqtt://localhost", "mqtts://registry.example.org/mqtt"),
        "registry.broker: must be only mqtt[s]://host[:port], without a path (line 4)",
    ),
    "broker with bad port": (
        MINIMAL.replace("mqtt://localhost", "mqtt://localhost:99999"),
        "registry.broker: 'mqtt://localhost:99999' is not a valid URL (invalid port?) (line 4)",
    ),
    "broker with credentials": (
        MINIMAL.replace("mqtt://localhost", "mqtt://shop:secret@localhost"),
        "registry.broker: put credentials in username and password_file, not the URL (line 4)",
    ),
    "camera url with credentials": (
        MINIMAL.replace("rtsp://cam.local", "rtsp://admin:12345@cam.local"),
        "cameras[0].url: put credentials in username and password_file, not the URL (line 7)",
    ),
    "onvif device address not http": (
        MINIMAL.replace("url: rtsp://cam.local/stream", "onvif: {url: rtsp://cam.local/onvif}"),
        "cameras[0].onvif.url: must be the device's http:// or https:// address, such as "
        "http://192.168.1.20/onvif/device_service (line 7)",
    ),
    "onvif device address with credentials": (
        MINIMAL.replace(
            "url: rtsp://cam.local/stream", "onvif: {url: 'http://admin:1@cam.local/onvif'}"
        ),
        "cameras[0].onvif.url: put credentials in username and password_file, not the URL (line 7)",
    ),
    "onvif without its url": (
        MINIMAL.replace("url: rtsp://cam.local/stream", "onvif: {}"),
        "cameras[0].onvif.url: missing (required) (line 7)",
    ),
    "camera url with unsupported scheme": (
        MINIMAL.replace("rtsp://cam.local", "rtmp://cam.local"),
        "cameras[0].url: unsupported scheme 'rtmp:'; use rtsp://, rtsps://, http://, https://,"
        " file:// or a file path (line 7)",
    ),
    "sub-stream url with credentials": (
        MINIMAL + "    analysis_url: rtsp://admin:12345@cam.local/stream2\n",
        "cameras[0].analysis_url: put credentials in username and password_file, not the URL"
        " (line 8)",
    ),
    "sub-stream url with unsupported scheme": (
        MINIMAL + "    analysis_url: rtmp://cam.local/stream2\n",
        "cameras[0].analysis_url: unsupported scheme 'rtmp:'; use rtsp://, rtsps://, http://,"
        " https://, file:// or a file path (line 8)",
    ),
    "empty sub-stream url": (
        MINIMAL + "    analysis_url: ' '\n",
        "cameras[0].analysis_url: must not be empty (line 8)",
    ),
    "bad topic prefix": (
        MINIMAL.replace("broker: mqtt://localhost", "broker: mqtt://h\n  topic_prefix: a/#"),
        "registry.topic_prefix: must not contain '+', '#' or NUL (line 5)",
    ),
    "topic prefix with empty level": (
        MINIMAL.replace("broker: mqtt://localhost", "broker: mqtt://h\n  topic_prefix: a//b"),
        "registry.topic_prefix: must not have empty levels ('//') (line 5)",
    ),
    "client cert without key": (
        MINIMAL.replace(
            "broker: mqtt://localhost", "broker: mqtts://h\n  client_cert: config.yaml"
        ),
        "registry.client_key: missing (needed with client_cert) (line 3)",
    ),
    "bad duration": (
        MINIMAL + "    analysis_interval: 10 minutes\n",
        "cameras[0].analysis_interval: '10 minutes' is not a duration; use seconds or a number "
        "with s, m, h or d, e.g. 90s, 10m, 12h, 7d (line 8)",
    ),
    "negative duration": (
        MINIMAL + "police:\n  max_window: -1h\n",
        "police.max_window: must not be negative (line 9)",
    ),
    "zero duration": (
        MINIMAL + "    recording: {mode: record, retention: 0}\n",
        "cameras[0].recording.retention: must be greater than 0 (line 8)",
    ),
    "duration below minimum": (
        MINIMAL + "    analysis_interval: 0.5s\n",
        "cameras[0].analysis_interval: must be at least 1s (line 8)",
    ),
    "camera drift limit below a second": (
        MINIMAL + "clock:\n  camera_drift_limit: 500ms\n",
        "clock.camera_drift_limit: '500ms' is not a duration; use seconds or a number with s, "
        "m, h or d, e.g. 90s, 10m, 12h, 7d (line 9)",
    ),
    "camera drift limit too small": (
        MINIMAL + "clock:\n  camera_drift_limit: 0.2\n",
        "clock.camera_drift_limit: must be at least 1s (line 9)",
    ),
    "bad size": (
        MINIMAL + "storage:\n  max_bytes: 50 gigs\n",
        "storage.max_bytes: '50 gigs' is not a size; use bytes or a number with kB, MB, GB, TB,"
        " KiB, MiB, GiB or TiB, e.g. 50GB (line 9)",
    ),
    "zero size": (
        MINIMAL + "storage:\n  max_bytes: 0GB\n",
        "storage.max_bytes: must be greater than 0 (line 9)",
    ),
    "unknown recording mode": (
        MINIMAL + "    recording:\n      mode: cloud\n",
        "cameras[0].recording.mode: must be one of 'record', 'directory', 'onvif', 'playback' "
        "(line 9)",
    ),
    "onvif recorder without its device": (
        MINIMAL + "    recording:\n      mode: onvif\n      source: cam-1\n",
        "cameras[0].onvif: missing: recording mode onvif reads the recorder named by onvif.url "
        "(the recorder's ONVIF device address, see docs/recorders.md) (line 6)",
    ),
    "onvif recorder without a source": (
        MINIMAL + "    recording:\n      mode: onvif\n",
        "cameras[0].recording.source: missing (required) (line 8)",
    ),
    "onvif recorder source with a control character": (
        MINIMAL + "    onvif: {url: 'http://nvr.local/onvif/device_service'}\n"
        '    recording:\n      mode: onvif\n      source: "cam\\u0007"\n',
        "cameras[0].recording.source: must be the recorder's source id or name of this camera "
        "(1 to 256 printable characters); `camera-agent discover` does not list them yet, "
        "the recorder's web page does (line 11)",
    ),
    "directory recording without path": (
        MINIMAL + "    recording: {mode: directory}\n",
        "cameras[0].recording.path: missing (required) (line 8)",
    ),
    "police key with two sources": (
        MINIMAL
        + "police:\n  keys:\n    - pem: '-----BEGIN PUBLIC KEY-----'\n"
        + "      jwk: {kty: OKP, crv: Ed25519, x: 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo}\n",
        "police.keys[0]: needs exactly one of file, pem or jwk (line 10)",
    ),
    "upload allow-list not https": (
        MINIMAL + "police:\n  upload_allow: ['http://evidence.example.org/']\n",
        "police.upload_allow[0]: must be an https:// URL (http:// only for 127.0.0.1 or "
        "localhost) (line 9)",
    ),
    "missing password file": (
        MINIMAL + "    username: admin\n    password_file: /nonexistent/front.pass\n",
        "cameras[0].password_file: cannot read /nonexistent/front.pass: "
        "No such file or directory (line 9)",
    ),
    "missing police key file": (
        MINIMAL + "police:\n  keys:\n    - file: /nonexistent/police.pem\n",
        "police.keys[0].file: cannot read /nonexistent/police.pem: "
        "No such file or directory (line 10)",
    ),
    "playback recorder with a path": (
        MINIMAL + "    recording: {mode: playback, maker: hikvision, channel: 1,"
        " recorder: 'rtsp://nvr.local/Streaming/tracks/101'}\n",
        "cameras[0].recording.playback.recorder: must be the recorder's RTSP address alone, e.g. "
        "rtsp://192.168.1.50:554 (no path, query or user: the user is the camera's "
        "username/password_file) (line 8)",
    ),
    "playback time zone unknown": (
        MINIMAL + "    recording: {mode: playback, maker: dahua, channel: 2,"
        " recorder: 'rtsp://nvr.local:554', timezone: CEST}\n",
        "cameras[0].recording.playback.timezone: 'CEST' is not a time zone name such as UTC or "
        "Europe/Berlin (line 8)",
    ),
    "unsupported yaml tag": (
        MINIMAL + "    name: !secret front_name\n",
        "cameras[0].name: could not determine a constructor for the tag '!secret' (line 8)",
    ),
}


def test_a_playback_recorder_is_read_with_its_maker_channel_and_time_zone(
    tmp_path: Path,
) -> None:
    config = load(
        tmp_path,
        MINIMAL + "    recording: {mode: playback, maker: dahua, channel: 3,"
        " recorder: 'rtsp://192.168.1.50:554/', timezone: Europe/Berlin}\n",
    )
    settings = config.cameras[0].recording
    assert isinstance(settings, PlaybackSettings)
    assert (settings.maker, settings.channel, settings.timezone) == ("dahua", 3, "Europe/Berlin")
    assert settings.recorder == "rtsp://192.168.1.50:554"  # no trailing '/' in the URLs


@pytest.mark.parametrize(
    ("text", "expected"), list(ERROR_CASES.values()), ids=list(ERROR_CASES.keys())
)
def test_error_names_key_path_and_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in errors_of(tmp_path, text)


def test_yaml_syntax_error_is_one_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  - id: back\n    url: [rtsp://b/s\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    [error] = caught.value.errors
    assert error.startswith(f"{path}: YAML syntax error: ")
    assert error.endswith("(line 10)")


def test_every_error_in_a_file_is_listed(tmp_path: Path) -> None:
    text = """\
        agent:
          id: Shop 42
        registry:
          broker: ftp://registry
          health_interval: soon
        cameras:
          - id: front
            url: rtsp://admin:pw@cam/s
            location: {lat: 123, lon: 6}
            colour: red
          - id: front
            url: cam.mp4
            url: cam2.mp4
          - name: no id
        """
    errors = errors_of(tmp_path, text)

    paths_and_lines = [(e.split(":", 1)[0], e.rsplit("(line ", 1)[1]) for e in errors]
    assert paths_and_lines == [
        ("agent.id", "2)"),
        ("registry.broker", "4)"),
        ("registry.health_interval", "5)"),
        ("cameras[0].url", "8)"),
        ("cameras[0].location.lat", "9)"),
        ("cameras[0].colour", "10)"),
        ("cameras[1].id", "11)"),
        ("cameras[1]", "13)"),
        # url-or-onvif is a rule across keys: told before the field errors beside it
        ("cameras[2].url", "14)"),
        ("cameras[2].id", "14)"),
    ]


def test_error_message_lists_errors_one_per_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, MINIMAL + "    colour: red\n    shape: round\n")
    assert str(caught.value).splitlines() == caught.value.errors


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [f"{path}: cannot read: No such file or directory"]


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    assert errors_of(tmp_path, text) == [
        f"{tmp_path / 'config.yaml'}: the file is empty; see config.example.yaml"
    ]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "- a\n- b\n") == [
        "(top level): must be a mapping (key: value) (line 1)"
    ]


def test_anchor_holder_must_be_a_known_key(tmp_path: Path) -> None:
    text = """\
        agent: {id: shop-42}
        registry: {broker: mqtt://h}
        x-camera: &camera
          analysis_interval: 30s
        cameras:
          - <<: *camera
            id: front
            url: rtsp://a/s
        """
    assert errors_of(tmp_path, text) == ["x-camera: unknown key (line 3)"]


def test_merge_keys_fill_in_what_is_not_given(tmp_path: Path) -> None:
    text = """\
        agent: {id: shop-42}
        registry: {broker: mqtt://h}
        cameras:
          - &front
            id: front
            url: rtsp://a/s
            expect: {min_fps: 12}
            analysis_interval: 30s
          - <<: *front
            id: back
            analysis_interval: 5s
        """
    config = load(tmp_path, text)

    front, back = config.cameras
    assert back.url == front.url
    assert back.expect.min_fps == 12
    assert back.analysis_interval == 5


def test_password_from_file_is_secret(tmp_path: Path) -> None:
    (tmp_path / "front.pass").write_text("s3cr:t/@pw\n")
    (tmp_path / "broker.pass").write_text("broker-secret\n")
    config = load(
        tmp_path,
        MINIMAL.replace(
            "broker: mqtt://localhost",
            "broker: mqtt://localhost\n  username: shop-42\n  password_file: broker.pass",
        )
        + "    username: admin\n    password_file: front.pass\n",
    )

    camera = config.cameras[0]
    assert camera.password_file == tmp_path / "front.pass"  # relative to the config file
    assert camera.password is not None
    assert camera.password.get_secret_value() == "s3cr:t/@pw"
    assert camera.stream_url() == "rtsp://admin:s3cr%3At%2F%40pw@cam.local/stream"
    assert config.registry.password is not None
    assert config.registry.password.get_secret_value() == "broker-secret"
    for shown in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        assert "s3cr" not in shown
        assert "broker-secret" not in shown


def test_password_from_systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "front-camera").write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))

    config = load(
        tmp_path, MINIMAL + "    username: admin\n    password_credential: front-camera\n"
    )

    camera = config.cameras[0]
    assert camera.password is not None
    assert camera.password.get_secret_value() == "from-systemd"
    assert "from-systemd" not in repr(config) + config.model_dump_json()


def test_credential_without_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)

    [error] = errors_of(tmp_path, MINIMAL + "    username: admin\n    password_credential: cam\n")

    assert error.startswith("cameras[0].password_credential: CREDENTIALS_DIRECTORY is not set")
    assert error.endswith("(line 9)")


def test_credential_file_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))

    errors = errors_of(tmp_path, MINIMAL + "    username: admin\n    password_credential: cam\n")

    assert errors == [
        f"cameras[0].password_credential: cannot read {tmp_path / 'cam'}: "
        "No such file or directory (line 9)"
    ]


def test_password_file_and_credential_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cam").write_text("pw")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))

    errors = errors_of(
        tmp_path,
        MINIMAL + "    username: admin\n    password_file: cam\n    password_credential: cam\n",
    )

    assert errors == [
        "cameras[0].password_credential: use password_file or password_credential, not both"
        " (line 10)"
    ]


def test_broker_username_needs_password_file(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, MINIMAL.replace("localhost", "localhost\n  username: shop"))
    assert errors == ["registry.password_file: missing (needed with username) (line 3)"]


def test_relative_file_source_resolves_against_config_dir(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL.replace("rtsp://cam.local/stream", "clips/front.mp4"))

    camera = config.cameras[0]
    assert camera.url == str(tmp_path / "clips/front.mp4")
    assert camera.source_kind() == "file"
    assert camera.stream_url() == str(tmp_path / "clips/front.mp4")


def test_directory_recording(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL + "    recording: {mode: directory, path: nvr/front}\n")

    recording = config.cameras[0].recording
    assert isinstance(recording, DirectorySettings)
    assert recording.path == tmp_path / "nvr/front"
    assert recording.pattern == "%Y%m%d_%H%M%S.mp4"


def test_recording_mode_defaults_to_record(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL + "    recording: {segment: 2m}\n")
    assert config.cameras[0].recording == RecordSettings(segment=120)


def test_police_key_from_file(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "police.pem").write_bytes(pem)
    config = load(tmp_path, MINIMAL + "police:\n  keys: [{file: police.pem}]\n")
    assert config.police.keys[0].file == tmp_path / "police.pem"
    assert config.police.keys[0].public_key() == key


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("-----BEGIN PUBLIC KEY-----\n", "not a PEM public key"),
        ("{not json", "is not valid JSON"),
        ('{"kty": "RSA"}', "not an Ed25519 public key"),
    ],
)
def test_an_unusable_police_key_file_is_named(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "police.pem").write_text(text)
    with pytest.raises(ConfigError, match=r"police\.keys\[0\]\.file: .*" + error):
        load(tmp_path, MINIMAL + "police:\n  keys: [{file: police.pem}]\n")


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        config.cameras[0].url = "rtsp://elsewhere/"


@pytest.mark.parametrize(
    ("url", "kind", "stream_url"),
    [
        ("rtsp://cam/s", "rtsp", "rtsp://user%40x:p%20w@cam/s"),
        ("rtsps://cam:322/s", "rtsp", "rtsps://user%40x:p%20w@cam:322/s"),
        ("http://cam/mjpg?x=1", "http", "http://user%40x:p%20w@cam/mjpg?x=1"),
        ("https://[::1]:8443/s", "http", "https://user%40x:p%20w@[::1]:8443/s"),
        ("file:///srv/clip%201.mp4", "file", "/srv/clip 1.mp4"),
        ("/srv/clip.mp4", "file", "/srv/clip.mp4"),
    ],
)
def test_stream_url_inserts_credentials(url: str, kind: str, stream_url: str) -> None:
    camera = CameraConfig(id="cam", url=url, username="user@x", password=SecretStr("p w"))
    assert camera.source_kind() == kind
    assert camera.stream_url() == stream_url
    assert "p w" not in repr(camera)


def test_the_sub_stream_gets_the_cameras_credentials_and_is_not_shown(tmp_path: Path) -> None:
    (tmp_path / "front.pass").write_text("s3cr:t/@pw\n")
    config = load(
        tmp_path,
        MINIMAL
        + "    analysis_url: rtsp://cam.local/Streaming/Channels/102\n"
        + "    username: admin\n    password_file: front.pass\n",
    )

    camera = config.cameras[0]
    assert camera.stream_url() == "rtsp://admin:s3cr%3At%2F%40pw@cam.local/stream"
    assert (
        camera.analysis_stream_url()
        == "rtsp://admin:s3cr%3At%2F%40pw@cam.local/Streaming/Channels/102"
    )
    assert redact_url(camera.analysis_stream_url() or "") == (
        "rtsp://***@cam.local/Streaming/Channels/102"
    )
    for shown in (repr(config), str(config), config.model_dump_json()):
        assert "s3cr" not in shown


def test_without_a_sub_stream_there_is_no_analysis_url(tmp_path: Path) -> None:
    camera = load(tmp_path, MINIMAL).cameras[0]
    assert camera.analysis_url is None
    assert camera.analysis_stream_url() is None


def test_a_relative_sub_stream_file_is_found_beside_the_config(tmp_path: Path) -> None:
    camera = load(tmp_path, MINIMAL + "    analysis_url: clips/front-sub.mp4\n").cameras[0]
    assert camera.analysis_url == str(tmp_path / "clips/front-sub.mp4")
    assert camera.analysis_stream_url() == str(tmp_path / "clips/front-sub.mp4")


def test_stream_url_without_username_is_the_url() -> None:
    assert CameraConfig(id="cam", url="rtsp://cam/s").stream_url() == "rtsp://cam/s"


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("rtsp://admin:secret@cam/s", "rtsp://***@cam/s"),
        ("rtsp://admin@cam:554/s", "rtsp://***@cam:554/s"),
        ("rtsp://a:p@ss/w@rd@cam/s", "rtsp://***@cam/s"),  # an unquoted '@' and '/'
        ("http://user%40x:p%20w@[::1]:80/", "http://***@[::1]:80/"),
        ("rtsp://cam/s", "rtsp://cam/s"),
        ("/srv/clip.mp4", "/srv/clip.mp4"),
        ("", ""),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


@pytest.mark.parametrize(
    ("broker", "host", "port", "tls"),
    [
        ("mqtt://localhost", "localhost", 1883, False),
        ("mqtts://registry.example.org", "registry.example.org", 8883, True),
        ("mqtts://registry.example.org:443/", "registry.example.org", 443, True),
        ("mqtt://[::1]:1884", "::1", 1884, False),
    ],
)
def test_broker_address(tmp_path: Path, broker: str, host: str, port: int, tls: bool) -> None:
    registry = load(tmp_path, MINIMAL.replace("mqtt://localhost", broker)).registry
    assert (registry.host, registry.port, registry.tls) == (host, port, tls)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
        ("30", 30.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("1.5h", 5400.0),
        (" 2 H ", 7200.0),
        (".5m", 30.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "s", "10 minutes", "1w", "1e3", "-5", "-1h", "inf", "nan", "1h30m",
     "\uff11\uff10s", "\u0663s", True, None, [], float("inf"), float("nan"), -1, "9" * 400],
)  # fmt: skip
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        (2.0, 2),
        ("0", 0),
        ("500kB", 500_000),
        ("500KB", 500_000),
        ("2MB", 2_000_000),
        ("50GB", 50_000_000_000),
        ("1TB", 10**12),
        ("1KiB", 1024),
        ("1GiB", 1024**3),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("1.1GB", 1_100_000_000),
        ("2 TiB", 2 * 1024**4),
        ("100B", 100),
    ],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text",
    ["", "GB", "50 gigs", "1.5B", "0.0001kB", "-1MB", "1e9", "1PB", True, None, 2.5,
     float("nan"), -1, "1 G B"],
)  # fmt: skip
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@given(st.text())
def test_parse_duration_only_raises_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(seconds) and seconds >= 0


@given(st.text())
def test_parse_size_only_raises_value_error(text: str) -> None:
    try:
        size = parse_size(text)
    except ValueError:
        return
    assert size >= 0


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=999),
    st.sampled_from(["s", "m", "h", "d"]),
)
def test_parse_duration_scales_by_unit(whole: int, thousandths: int, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    seconds = parse_duration(f"{whole}.{thousandths:03d}{unit}")
    assert seconds == pytest.approx((whole + thousandths / 1000) * factor)


# --- found by fuzzing (bench/fuzz/config.py): each crashed `camera-agent check` with a
# traceback instead of listing the mistake with its line -----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A control character: PyYAML refuses the whole text before parsing it.
        (
            MINIMAL + "    name: Voor\x00deur\n",
            "YAML syntax error: character #x0000 is not allowed in YAML text (line 8)",
        ),
        # Looks like a date to YAML, is none.
        (MINIMAL + "    name: 2026-13-01\n", "cameras[0].name: '2026-13-01' is not a valid value"),
        # A pattern that names the month twice: strptime's regex fails to compile.
        (
            MINIMAL
            + "    recording: {mode: directory, path: /srv/nvr, pattern: '%Y%m%d_%H%M%m.mp4'}\n",
            "cameras[0].recording.pattern: cannot be read back as a time (a field appears twice)",
        ),
    ],
)
def test_check_lists_what_fuzzing_found_instead_of_crashing(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(text.encode())
    done = subprocess.run(
        [sys.executable, "-m", "agent", "check", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LANG": "C"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 78, done.stderr
    assert expected in done.stderr, done.stderr


ONVIF_ONLY = MINIMAL.replace(
    "    url: rtsp://cam.local/stream\n",
    "    onvif: {url: http://192.168.1.20/onvif/device_service}\n"
    "    username: onvif\n"
    "    password_file: cam.pass\n",
)


def test_a_camera_may_name_its_onvif_device_instead_of_a_url(tmp_path: Path) -> None:
    (tmp_path / "cam.pass").write_text("p@ss/word\n")
    camera = load_config(write(tmp_path, ONVIF_ONLY)).cameras[0]
    assert camera.url is None
    assert camera.onvif is not None
    assert camera.onvif.url == "http://192.168.1.20/onvif/device_service"
    assert camera.source_kind() == "rtsp"
    assert camera.shown_url() == "onvif http://192.168.1.20/onvif/device_service"
    # The device's URI gets the camera's credentials as `url` does.
    assert (
        camera.onvif_stream_url("rtsp://192.168.1.20:554/Streaming/Channels/101")
        == "rtsp://onvif:p%40ss%2Fword@192.168.1.20:554/Streaming/Channels/101"
    )
    with pytest.raises(ValueError, match="has no url"):
        camera.stream_url()


def test_with_url_and_onvif_the_url_is_the_stream(tmp_path: Path) -> None:
    text = MINIMAL + "    onvif: {url: 'http://cam.local/onvif/device_service'}\n"
    camera = load_config(write(tmp_path, text)).cameras[0]
    assert camera.stream_url() == "rtsp://cam.local/stream"
    assert camera.onvif is not None


@pytest.mark.parametrize(
    "uri",
    ["file:///etc/shadow", "/etc/shadow", "http://cam/video.mjpg", "rtsp:///no-host", "x\x1b[2J"],
)
def test_a_device_cannot_make_the_agent_open_anything_but_rtsp(tmp_path: Path, uri: str) -> None:
    (tmp_path / "cam.pass").write_text("pw\n")
    camera = load_config(write(tmp_path, ONVIF_ONLY)).cameras[0]
    with pytest.raises(ValueError, match="not rtsp://"):
        camera.onvif_stream_url(uri)


def test_check_accepts_an_onvif_camera_without_the_network(tmp_path: Path) -> None:
    """`check` validates the shape only: the device address is not contacted."""
    (tmp_path / "cam.pass").write_text("pw\n")
    config = write(tmp_path, ONVIF_ONLY.replace("192.168.1.20", "192.0.2.1"))
    result = subprocess.run(
        [sys.executable, "-m", "agent", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
