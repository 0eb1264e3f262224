"""Enrolment end to end: a real registry (uvicorn), the real `camera-agent enroll`, a real
mosquitto whose password file the registry updates, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select
from starlette.applications import Starlette

from agent.cli import main as agent_main
from agent.config import BrokerConfig
from agent.enrolment import check_registry_url
from contract import jws
from registry.cli import main as registry_main
from registry.config import ServerConfig
from registry.db.schema import agents, cameras, enrol_codes
from registry.enrolment.codes import (
    ALPHABET,
    generate_code,
    issue_code,
    list_open_codes,
    normalise_code,
)
from registry.enrolment.credentials import CredentialIssuer, MosquittoPasswords, NoPassword
from registry.enrolment.names import SERVICE_NAMES
from registry.enrolment.service import MAX_BODY_BYTES, FailureLimiter, enrolment_routes
from registry.enrolment.settings import EnrolmentSettings
from tests.support import eventually, free_port
from tests.support.asgi_server import serve_asgi
from tests.support.broker import Broker

CAMERA_AGENT = Path(sys.executable).parent / "camera-agent"
AGENT_ID = "shop-42"
LOGIN_WAIT_S = 5.0


def make_code(engine: Engine, agent: str = AGENT_ID, *, replace: bool = False, **kw: Any) -> str:
    """A code an operator made for `agent` (`kw`: issue_code's ttl_s and now)."""
    return issue_code(
        engine, "alice", agent, service_names=SERVICE_NAMES, replace=replace, **kw
    ).code


def agent_config(directory: Path, agent_id: str = AGENT_ID) -> Path:
    """An owner's config with pinned police keys and an upload allow-list."""
    police = directory / "police.pem"
    police.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path = directory / "config.yaml"
    path.write_text(
        f"""agent:
  id: {agent_id}
  data_dir: {directory / "data"}
registry:
  broker: mqtt://127.0.0.1:1
police:
  keys:
    - file: {police}
  upload_allow: ["https://evidence.example.org/files/"]
cameras:
  - id: front
    name: Voordeur
    url: rtsp://192.168.1.20:554/stream1
    location: {{lat: 52.9925, lon: 6.5649, bearing_deg: 180, fov_deg: 90, range_m: 25}}
  - id: yard
    url: rtsp://192.168.1.21:554/stream1
"""
    )
    return path


def server_config(tmp_path: Path, broker_url: str, **enrolment: Any) -> ServerConfig:
    return ServerConfig(
        data_dir=tmp_path / "registry",
        mqtt=BrokerConfig(broker=broker_url),
        enrolment=EnrolmentSettings(**enrolment),
    )


@contextmanager
def registry(
    engine: Engine, config: ServerConfig, issuer: CredentialIssuer | None = None
) -> Iterator[str]:
    app = Starlette(routes=enrolment_routes(engine, config, issuer))
    with serve_asgi(app) as url:
        yield url


def enroll(config: Path, url: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CAMERA_AGENT), "enroll", "--registry", url, "--code", code, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def broker_pid_file(broker: Broker, directory: Path) -> Path:
    """mosquitto writes a pid file only as a daemon; the test writes the one a service would."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(broker.config_file).encode() in cmdline:
            path = directory / "mosquitto.pid"
            path.write_text(f"{entry.name}\n")
            return path
    pytest.fail("cannot find the broker's process", pytrace=False)


def mqtt_login(broker: Broker, username: str, password: str) -> int:
    """The CONNACK reason code mosquitto gives this login (0 = accepted)."""
    result: list[int] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result.append(int(reason.value))
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert done.wait(LOGIN_WAIT_S), "no CONNACK from the broker"
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


def keys_show(config: Path) -> dict[str, Any]:
    result = subprocess.run(
        [str(CAMERA_AGENT), "keys", "show", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


# --- the whole flow ---------------------------------------------------------------------------


def test_agent_enrols_once_and_logs_in_to_the_broker(
    engine: Engine, tmp_path: Path, make_broker: Callable[..., Broker]
) -> None:
    broker = make_broker(users={"registry": "registry-secret"})
    config = server_config(
        tmp_path,
        "mqtts://registry.example.org:8884",
        password_file=broker.directory / "passwords",
        broker_pid_file=broker_pid_file(broker, tmp_path),
    )
    owner_config = agent_config(tmp_path)
    before = owner_config.read_bytes()
    code = make_code(engine)

    with registry(engine, config) as url:
        first = enroll(owner_config, url, code)
        second = enroll(owner_config, url, code)

    assert first.returncode == 0, first.stderr
    password_file = tmp_path / "data" / "keys" / "broker.pass"
    assert "broker: mqtts://registry.example.org:8884" in first.stdout
    assert f"username: {AGENT_ID}" in first.stdout
    assert f"password_file: {password_file}" in first.stdout
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    # Enrolment only reads the owner's config: police keys and allow-list untouched.
    assert owner_config.read_bytes() == before

    # The code is spent.
    assert second.returncode == 77
    assert "not valid or has been used already" in second.stderr

    # The registry holds the key `keys show` prints, and the cameras with their places.
    shown = keys_show(owner_config)
    with engine.connect() as connection:
        agent = connection.execute(select(agents).where(agents.c.agent_id == AGENT_ID)).one()
        rows = connection.execute(
            select(cameras).where(cameras.c.agent_id == AGENT_ID).order_by(cameras.c.camera_id)
        ).all()
        used = connection.execute(select(enrol_codes)).one()
    assert agent.key_thumbprint == shown["kid"]
    assert agent.public_key == shown["jwk"]["x"]
    assert agent.enrolled_at == pytest.approx(time.time(), abs=60)
    assert [(r.camera_id, r.name, r.lat, r.lon, r.bearing_deg) for r in rows] == [
        ("front", "Voordeur", 52.9925, 6.5649, 180.0),
        ("yard", "yard", None, None, None),
    ]
    assert (used.agent_id, used.created_by) == (AGENT_ID, "alice")
    assert used.used_at is not None

    # The issued credentials log in to the real broker (after its SIGHUP reload).
    password = password_file.read_text().strip()
    eventually(
        lambda: mqtt_login(broker, AGENT_ID, password) == 0,
        "the agent's login accepted",
        LOGIN_WAIT_S,
        interval=0.1,
    )
    assert mqtt_login(broker, AGENT_ID, password + "x") != 0
    assert mqtt_login(broker, "registry", "registry-secret") == 0


def test_reenrolment_needs_a_replacing_code_and_replaces_key_and_password(
    engine: Engine, tmp_path: Path
) -> None:
    password_file = tmp_path / "mosquitto.passwd"
    config = server_config(
        tmp_path, "mqtt://127.0.0.1:1883", password_file=password_file, reload_command=["true"]
    )
    owner_config = agent_config(tmp_path)
    with registry(engine, config) as url:
        assert enroll(owner_config, url, make_code(engine)).returncode == 0
        old_kid = keys_show(owner_config)["kid"]
        # The device's key is lost: enrolling does not make a new one behind the owner's
        # back (issue 15); `keys init --replace` does, and a replacing code enrols it.
        for name in ("device.key", "device.pub"):
            (tmp_path / "data" / "keys" / name).unlink()
        code = make_code(engine, replace=True)
        refused = enroll(owner_config, url, code)
        assert refused.returncode != 0
        assert "keys init --replace" in refused.stderr
        subprocess.run(
            [str(CAMERA_AGENT), "keys", "init", "--replace", "--config", str(owner_config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        result = enroll(owner_config, url, code)
    assert result.returncode == 0, result.stderr
    new_kid = keys_show(owner_config)["kid"]
    assert new_kid != old_kid
    with engine.connect() as connection:
        stored = connection.execute(select(agents.c.key_thumbprint)).scalars().all()
    assert stored == [new_kid]
    # One line per user: the password was replaced, not added.
    users = [line.split(":")[0] for line in password_file.read_text().splitlines() if line]
    assert users == [AGENT_ID]


# --- codes refused ----------------------------------------------------------------------------


def test_expired_code_is_refused(engine: Engine, tmp_path: Path) -> None:
    code = make_code(engine, ttl_s=3600, now=time.time() - 2 * 3600)
    owner_config = agent_config(tmp_path)
    with registry(engine, server_config(tmp_path, "mqtt://127.0.0.1:1883")) as url:
        result = enroll(owner_config, url, code)
    assert result.returncode == 77
    assert "expired" in result.stderr
    with engine.connect() as connection:
        assert connection.execute(select(agents)).first() is None


def test_unknown_and_used_codes_get_the_same_answer(engine: Engine, tmp_path: Path) -> None:
    config = server_config(tmp_path, "mqtt://127.0.0.1:1883")
    code = make_code(engine, "shop-1")
    key = Ed25519PrivateKey.generate().public_key()
    body = {"agent_id": "shop-1", "public_key": jws.public_jwk(key), "cameras": []}
    with registry(engine, config, NoPassword()) as url:
        ok = requests.post(f"{url}/api/v1/enrol", json={**body, "code": code}, timeout=10)
        used = requests.post(f"{url}/api/v1/enrol", json={**body, "code": code}, timeout=10)
        unknown = requests.post(
            f"{url}/api/v1/enrol", json={**body, "code": generate_code()}, timeout=10
        )
        garbage = requests.post(f"{url}/api/v1/enrol", json={**body, "code": "hello"}, timeout=10)
    assert ok.status_code == 200
    assert ok.json()["password"] is None  # client-certificate deployment: no password
    assert ok.json()["username"] == "shop-1"
    assert used.status_code == unknown.status_code == garbage.status_code == 403
    assert used.json() == unknown.json() == garbage.json()
    assert used.json()["error"] == "code_rejected"


def test_code_used_concurrently_enrols_only_once(engine: Engine, tmp_path: Path) -> None:
    config = server_config(tmp_path, "mqtt://127.0.0.1:1883")
    code = make_code(engine)
    statuses: list[int] = []
    start = threading.Barrier(8)

    def attempt(index: int, url: str) -> None:
        key = Ed25519PrivateKey.generate().public_key()
        body = {
            "code": code,
            "agent_id": AGENT_ID,
            "public_key": jws.public_jwk(key),
            "cameras": [],
        }
        start.wait()
        statuses.append(requests.post(f"{url}/api/v1/enrol", json=body, timeout=30).status_code)

    with registry(engine, config, NoPassword()) as url:
        threads = [threading.Thread(target=attempt, args=(i, url)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses) == [200] + [403] * 7
    with engine.connect() as connection:
        assert len(connection.execute(select(agents)).all()) == 1


@pytest.mark.allow_logged_exceptions  # the failed enrolment is logged with its traceback
def test_code_stays_valid_when_the_broker_login_cannot_be_made(
    engine: Engine, tmp_path: Path
) -> None:
    config = server_config(tmp_path, "mqtt://127.0.0.1:1883")
    broken = MosquittoPasswords(tmp_path / "passwd", tool="no-such-mosquitto_passwd")
    code = make_code(engine)
    owner_config = agent_config(tmp_path)
    with registry(engine, config, broken) as url:
        failed = enroll(owner_config, url, code)
    assert failed.returncode == 69
    assert "the code is still valid" in failed.stderr
    with registry(engine, config, NoPassword()) as url:
        assert enroll(owner_config, url, code).returncode == 0


# --- malformed requests -------------------------------------------------------------------------


def _valid_body() -> dict[str, Any]:
    key = Ed25519PrivateKey.generate().public_key()
    return {
        "code": generate_code(),
        "agent_id": "shop-1",
        "public_key": jws.public_jwk(key),
        "cameras": [{"id": "front", "name": "Front", "location": {"lat": 52.0, "lon": 5.0}}],
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("agent_id"), "agent_id"),
        (lambda b: b.update(agent_id="Shop 1"), "agent_id"),
        (lambda b: b.update(agent_id="registry"), "agent_id"),
        (lambda b: b["cameras"][0]["location"].update(lat=91), "cameras[0].location.lat"),
        (lambda b: b["cameras"][0]["location"].update(lat="52"), "cameras[0].location.lat"),
        (lambda b: b["cameras"].append({"id": "front"}), "cameras[1].id"),
        (lambda b: b["public_key"].update(crv="P-256"), "public_key.crv"),
        (lambda b: b["public_key"].update(x="AAAA"), "public_key.x"),
        (lambda b: b["public_key"].update(d="secret"), "public_key.d"),
        (lambda b: b.update(extra=1), "extra"),
        (lambda b: b.update(cameras={}), "cameras"),
    ],
)
def test_malformed_body_names_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], field: str
) -> None:
    from registry.db.engine import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    body = _valid_body()
    change(body)
    with registry(engine, server_config(tmp_path, "mqtt://127.0.0.1:1883"), NoPassword()) as url:
        response = requests.post(f"{url}/api/v1/enrol", json=body, timeout=10)
    engine.dispose()
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"code": "a", "code": "b"}', 400),
        (b"\xff\xfe", 400),
        (b"[]", 400),
        (b" " * (MAX_BODY_BYTES + 1), 413),
    ],
)
def test_unparseable_or_oversized_body_is_refused(tmp_path: Path, body: bytes, status: int) -> None:
    from registry.db.engine import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    with registry(engine, server_config(tmp_path, "mqtt://127.0.0.1:1883"), NoPassword()) as url:
        response = requests.post(
            f"{url}/api/v1/enrol",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
    engine.dispose()
    assert response.status_code == status
    assert response.json()["error"] in ("malformed", "too_large")


def test_failed_attempts_are_rate_limited_per_address(engine: Engine, tmp_path: Path) -> None:
    config = server_config(tmp_path, "mqtt://127.0.0.1:1883", max_failures=3)
    body = _valid_body()
    with registry(engine, config, NoPassword()) as url:
        answers = [
            requests.post(f"{url}/api/v1/enrol", json=body, timeout=10).status_code
            for _ in range(3)
        ]
        # Even a good code is not tried any more from this address.
        good = {**body, "code": make_code(engine, "shop-1")}
        limited = requests.post(f"{url}/api/v1/enrol", json=good, timeout=10)
    assert answers == [403, 403, 403]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0


def test_parallel_attempts_are_counted_before_they_are_checked(
    engine: Engine, tmp_path: Path
) -> None:
    config = server_config(tmp_path, "mqtt://127.0.0.1:1883", max_failures=3)
    body = _valid_body()
    with registry(engine, config, NoPassword()) as url, ThreadPoolExecutor(30) as pool:
        answers = list(
            pool.map(
                lambda _: requests.post(f"{url}/api/v1/enrol", json=body, timeout=30),
                range(30),
            )
        )
    statuses = sorted(a.status_code for a in answers)
    # Only as many codes are looked up as the limit allows; the rest wait their turn.
    assert statuses.count(403) <= 3 and statuses.count(429) >= 27, statuses


def test_the_limiter_holds_a_bounded_number_of_addresses() -> None:
    limiter = FailureLimiter(2, 60, max_addresses=100)
    for n in range(10_000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}")
    assert limiter.addresses() <= 100
    assert limiter.retry_after("10.0.39.15") == 0  # long forgotten
    limiter.failed("10.0.39.15")
    limiter.failed("10.0.39.15")
    assert limiter.retry_after("10.0.39.15") > 0


def test_failure_limiter_forgets_after_the_window() -> None:
    now = [1000.0]
    limiter = FailureLimiter(2, 60, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(60)
    assert limiter.retry_after("b") == 0
    now[0] += 30
    assert limiter.retry_after("a") == pytest.approx(30)
    now[0] += 31
    assert limiter.retry_after("a") == 0


# --- the agent's side: refused before anything is sent, and network failures -----------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://registry.example.org", True),
        ("https://registry.example.org:8443/camreg/", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://registry.example.org", False),
        ("http://127.0.0.1.example.org", False),
        ("ftp://registry.example.org", False),
        ("https://user:pw@registry.example.org", False),
        ("https://registry.example.org/?next=x", False),
        ("registry.example.org", False),
    ],
)
def test_registry_url_must_be_https_except_loopback(url: str, ok: bool) -> None:
    if ok:
        assert check_registry_url(url) == url.rstrip("/")
    else:
        with pytest.raises(ValueError):
            check_registry_url(url)


def test_unreachable_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    owner_config = agent_config(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    code = agent_main(
        ["enroll", "--registry", url, "--code", generate_code(), "--config", str(owner_config)]
    )
    assert code == 69
    assert "cannot reach the registry" in capsys.readouterr().err


def test_tls_failure_is_named(
    tmp_path: Path, make_broker: Callable[..., Broker], capsys: pytest.CaptureFixture[str]
) -> None:
    # Any TLS server with a certificate from a CA this machine does not trust will do.
    server = make_broker(tls=True)
    owner_config = agent_config(tmp_path)
    code = agent_main(
        [
            "enroll",
            "--registry",
            f"https://localhost:{server.port}",
            "--code",
            generate_code(),
            "--config",
            str(owner_config),
        ]
    )
    assert code == 69
    assert "TLS failure" in capsys.readouterr().err
    assert not (tmp_path / "data" / "keys" / "broker.pass").exists()


def test_plain_http_to_a_remote_registry_is_refused_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner_config = agent_config(tmp_path)
    code = agent_main(
        [
            "enroll",
            "--registry",
            "http://registry.example.org",
            "--code",
            generate_code(),
            "--config",
            str(owner_config),
        ]
    )
    assert code == 64
    assert "https://" in capsys.readouterr().err


# --- codes and the operator's command -----------------------------------------------------------


def test_codes_are_typeable_and_forgiving() -> None:
    codes = {generate_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert all(c in ALPHABET for c in "".join(groups))
    assert normalise_code("7kq2 m9xd 4hrt owbe") == "7KQ2M9XD4HRT0WBE"
    assert normalise_code("IL00-0000-0000-0000") == "1100000000000000"
    assert normalise_code("7KQ2-M9XD-4HRT") is None
    assert normalise_code("7KQ2-M9XD-4HRT-0WBU") is None  # U is not in the alphabet


def test_enrol_code_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "registry.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'registry'}\nmqtt:\n  broker: mqtt://127.0.0.1:1883\n"
        "http:\n  public_url: https://registry.example.org\n"
    )
    command = ["enrol-code", "--config", str(config), "--ttl", "2h", "--by", "bob"]
    assert registry_main([*command, "--agent", AGENT_ID]) == 0
    out = capsys.readouterr().out.splitlines()
    code = out[0]
    assert normalise_code(code) is not None
    assert f"for the agent {AGENT_ID} only, valid once, until" in out[1]
    assert f"camera-agent enroll --registry https://registry.example.org --code {code}" in out[2]

    from registry.db.engine import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'registry' / 'registry.sqlite'}")
    [open_code] = list_open_codes(engine)
    engine.dispose()
    assert (open_code.created_by, open_code.agent, open_code.replaces_key) == (
        "bob",
        AGENT_ID,
        None,
    )
    assert open_code.expires_at - open_code.created_at == pytest.approx(7200)

    assert registry_main(["enrol-code", "--config", str(config), "--list"]) == 0
    assert f"for {AGENT_ID}, by bob" in capsys.readouterr().out

    # A code is for one agent id: without one, none is made.
    assert registry_main(command) == 64
    assert "--agent ID is needed" in capsys.readouterr().err


def test_password_never_appears_in_the_tool_arguments(tmp_path: Path) -> None:
    """mosquitto_passwd gets the password on stdin: a wrapper records its arguments."""
    record = tmp_path / "argv"
    wrapper = tmp_path / "mosquitto_passwd"
    wrapper.write_text(f'#!/bin/sh\necho "$@" > {record}\nexec mosquitto_passwd "$@"\n')
    wrapper.chmod(0o755)
    issuer = MosquittoPasswords(tmp_path / "passwd", tool=str(wrapper))
    login = issuer.issue("shop-1", replace=False)
    assert login.password is not None and len(login.password) >= 40
    assert login.password not in record.read_text()
    assert (tmp_path / "passwd").read_text().startswith("shop-1:$7$")
    assert stat.S_IMODE(os.stat(tmp_path / "passwd").st_mode) == 0o600


def test_operators_make_codes_over_the_api(tmp_path: Path) -> None:
    from registry.enrolment.operator_api import operator_routes
    from registry.web import auth, user_audit
    from registry.web.auth import Role
    from tests.support.registry_web import registry_web
    from tests.support.registry_web import server_config as web_config

    config = web_config(tmp_path / "registry")
    with registry_web(config, extra=operator_routes()) as web:
        web.add_user("olga", Role.OPERATOR)
        web.add_user("piet", Role.POLICE)
        operator = {"Authorization": f"Bearer {auth.add_api_token(web.engine, 'olga', 't')}"}
        police = {"Authorization": f"Bearer {auth.add_api_token(web.engine, 'piet', 't')}"}
        made = requests.post(
            f"{web.url}/api/v1/enrol-codes",
            json={"agent": AGENT_ID, "ttl": "2h"},
            headers=operator,
            timeout=10,
        )
        listed = requests.get(f"{web.url}/api/v1/enrol-codes", headers=operator, timeout=10)
        refused = requests.post(f"{web.url}/api/v1/enrol-codes", headers=police, timeout=10)
        anonymous = requests.post(f"{web.url}/api/v1/enrol-codes", timeout=10)
        bad = requests.post(
            f"{web.url}/api/v1/enrol-codes",
            json={"agent": AGENT_ID, "ttl": "forever"},
            headers=operator,
            timeout=10,
        )
        unbound = requests.post(f"{web.url}/api/v1/enrol-codes", headers=operator, timeout=10)
        audit = user_audit.recent(web.engine, action="enrol_code_create")
    assert made.status_code == 201, made.text
    assert normalise_code(made.json()["code"]) is not None
    assert made.json()["created_by"] == "olga"
    assert (made.json()["agent"], made.json()["replaces_key"]) == (AGENT_ID, None)
    assert made.json()["expires_at"].endswith("Z")
    assert [c["created_by"] for c in listed.json()] == ["olga"]
    assert "code" not in listed.json()[0]
    assert refused.status_code == 403
    assert anonymous.status_code == 401
    assert (bad.status_code, bad.json()["field"]) == (400, "ttl")
    assert (unbound.status_code, unbound.json()["field"]) == (400, "agent")
    assert [c["agent"] for c in listed.json()] == [AGENT_ID]
    assert [(r.username, r.action) for r in audit] == [("olga", "enrol_code_create")]
    assert audit[0].detail["agent"] == AGENT_ID
