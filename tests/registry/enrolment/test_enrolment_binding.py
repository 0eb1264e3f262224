"""Attacks on enrolment with a code someone holds legitimately (issue 14, item 1): a code
enrols only the agent id it was made for, an enrolled agent only with a code made to
replace its key, and no broker user that is not an agent's is ever made or changed.

Each attack goes through the HTTP enrolment endpoint of a running registry (uvicorn),
with a real mosquitto whose password file the registry updates."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select

from agent.config import BrokerConfig
from contract import jws
from registry.cli import main as registry_main
from registry.config import ServerConfig
from registry.db.engine import open_engine
from registry.db.schema import agents
from registry.enrolment.codes import code_sha256, generate_code, issue_code, list_open_codes
from registry.enrolment.credentials import NoPassword
from registry.enrolment.names import SERVICE_NAMES
from tests.registry.enrolment.test_enrolment import (
    agent_config,
    broker_pid_file,
    enroll,
    mqtt_login,
    registry,
    server_config,
)
from tests.support.broker import Broker, _CertAuthority, _find_binary
from tests.support.registry_proc import wait_for

INGEST_PASSWORD = "ingest-secret"
LOGIN_WAIT_S = 5.0


def code_for(engine: Engine, agent: str, *, replace: bool = False) -> str:
    """A code the operator made for `agent`."""
    return issue_code(engine, "alice", agent, service_names=SERVICE_NAMES, replace=replace).code


def enrol_body(code: str, agent: str, key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    private = key or Ed25519PrivateKey.generate()
    return {
        "code": code,
        "agent_id": agent,
        "public_key": jws.public_jwk(private.public_key()),
        "cameras": [{"id": "front"}],
    }


def post(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/api/v1/enrol", json=body, timeout=30)


def stored_key(engine: Engine, agent: str) -> str | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(agents.c.key_thumbprint).where(agents.c.agent_id == agent)
        ).first()
    return None if row is None else row.key_thumbprint


def password_lines(path: Path) -> dict[str, str]:
    """username -> its whole line (salt and hash) in a mosquitto password file."""
    lines = [line for line in path.read_text().splitlines() if line]
    return {line.split(":", 1)[0]: line for line in lines}


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    """A broker whose password file already holds the ingest worker's user."""
    return make_broker(users={"camera-registry": INGEST_PASSWORD})


def broker_config(broker: Broker, tmp_path: Path) -> ServerConfig:
    return server_config(
        tmp_path,
        "mqtt://127.0.0.1:1883",
        password_file=broker.directory / "passwords",
        broker_pid_file=broker_pid_file(broker, tmp_path),
    )


def add_broker_user(broker: Broker, username: str, password: str) -> None:
    """What the broker's administrator does by hand (docs/mosquitto/README.md)."""
    password_file = broker.directory / "passwords"
    tool = _find_binary("mosquitto_passwd")
    subprocess.run([tool, "-b", str(password_file), username, password], check=True)
    os.kill(broker.pid, signal.SIGHUP)
    wait_for(f"{username} to log in", lambda: logs_in(broker, username, password), LOGIN_WAIT_S)


def logs_in(broker: Broker, username: str, password: str) -> bool:
    """The broker reloads its password file on SIGHUP, a moment after enrolment answers."""
    return mqtt_login(broker, username, password) == 0


def enrol_victim(engine: Engine, url: str, broker: Broker) -> tuple[str, str]:
    """shop-42 enrols with its own code; its key thumbprint and broker password."""
    key = Ed25519PrivateKey.generate()
    answer = post(url, enrol_body(code_for(engine, "shop-42"), "shop-42", key))
    assert answer.status_code == 200, answer.text
    password = answer.json()["password"]
    wait_for("shop-42 to log in", lambda: logs_in(broker, "shop-42", password), LOGIN_WAIT_S)
    return jws.thumbprint(key.public_key()), password


# --- attacks ----------------------------------------------------------------------------------


def test_a_code_made_for_another_agent_does_not_take_over_an_enrolled_one(
    engine: Engine, tmp_path: Path, broker: Broker
) -> None:
    config = broker_config(broker, tmp_path)
    with registry(engine, config) as url:
        victim_key, victim_password = enrol_victim(engine, url, broker)
        # The attacker holds a good code, made for a shop of their own.
        theirs = code_for(engine, "shop-99")
        attack = post(url, enrol_body(theirs, "shop-42"))
        # The code was not spent by the refusal: it still enrols the agent it is for.
        own = post(url, enrol_body(theirs, "shop-99"))

    assert attack.status_code == 403, attack.text
    assert attack.json()["error"] == "code_wrong_agent"
    assert "shop-99" in attack.json()["message"]
    assert stored_key(engine, "shop-42") == victim_key
    assert logs_in(broker, "shop-42", victim_password)
    assert own.status_code == 200, own.text


def test_an_enrolled_agent_is_not_re_enrolled_with_a_code_for_a_first_enrolment(
    engine: Engine, tmp_path: Path, broker: Broker
) -> None:
    config = broker_config(broker, tmp_path)
    # Two codes for shop-42 (say, one mailed and one lost), made before it enrolled.
    spare = code_for(engine, "shop-42")
    with registry(engine, config) as url:
        victim_key, victim_password = enrol_victim(engine, url, broker)
        before = password_lines(broker.directory / "passwords")
        attack = post(url, enrol_body(spare, "shop-42"))

    assert attack.status_code == 409, attack.text
    assert attack.json()["error"] == "already_enrolled"
    assert "--replace" in attack.json()["message"]
    assert stored_key(engine, "shop-42") == victim_key
    assert password_lines(broker.directory / "passwords") == before
    assert logs_in(broker, "shop-42", victim_password)


@pytest.mark.parametrize(
    "service",
    ["camera-registry", "camera-registry-2", "registry", "registry-2", "ingest-east-3"],
)
def test_service_accounts_cannot_be_enrolled(
    engine: Engine, tmp_path: Path, broker: Broker, service: str
) -> None:
    config = broker_config(broker, tmp_path)
    # This registry's own broker user; its workers 2, 3, ... add -2, -3, ...
    own = config.mqtt.model_copy(update={"username": "ingest-east"})
    config = config.model_copy(update={"mqtt": own})
    before = password_lines(broker.directory / "passwords")
    with registry(engine, config) as url:
        attack = post(url, enrol_body(code_for(engine, "shop-1"), service))

    assert attack.status_code == 400, attack.text
    assert attack.json()["field"] == "agent_id"
    assert "registry's own" in attack.json()["message"]
    assert stored_key(engine, service) is None
    assert password_lines(broker.directory / "passwords") == before
    assert logs_in(broker, "camera-registry", INGEST_PASSWORD)


def test_a_broker_user_that_enrolment_did_not_make_is_never_changed(
    engine: Engine, tmp_path: Path, broker: Broker
) -> None:
    config = broker_config(broker, tmp_path)
    # A code for `monitor`; the broker's admin then adds a user of that name by hand.
    code = code_for(engine, "monitor")
    add_broker_user(broker, "monitor", "monitor-secret")
    before = password_lines(broker.directory / "passwords")
    with registry(engine, config) as url:
        attack = post(url, enrol_body(code, "monitor"))

    assert attack.status_code == 409, attack.text
    assert attack.json()["error"] == "username_taken"
    assert stored_key(engine, "monitor") is None
    assert password_lines(broker.directory / "passwords") == before
    assert logs_in(broker, "monitor", "monitor-secret")


def test_two_codes_for_one_new_agent_enrol_it_once(engine: Engine, tmp_path: Path) -> None:
    config = server_config(tmp_path, "mqtt://127.0.0.1:1883")
    codes = [code_for(engine, "shop-42") for _ in range(4)]
    answers: list[requests.Response] = []
    start = threading.Barrier(len(codes))

    def attempt(code: str, url: str) -> None:
        start.wait()
        answers.append(post(url, enrol_body(code, "shop-42")))

    with registry(engine, config, NoPassword()) as url:
        threads = [threading.Thread(target=attempt, args=(code, url)) for code in codes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    [winner] = [a for a in answers if a.status_code == 200]
    assert stored_key(engine, "shop-42") == winner.json()["key_thumbprint"]


# --- the operator's side: a code names its agent, and says when it replaces a key -------------


def registry_cli_config(tmp_path: Path) -> Path:
    config = tmp_path / "registry.yaml"
    (tmp_path / "ingest.pass").write_text("ingest-secret\n")
    config.write_text(
        f"data_dir: {tmp_path / 'registry'}\n"
        "mqtt:\n  broker: mqtt://127.0.0.1:1883\n  username: ingest-east\n"
        f"  password_file: {tmp_path / 'ingest.pass'}\n"
    )
    return config


def test_the_operator_replaces_a_key_only_with_a_code_made_for_that(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = registry_cli_config(tmp_path)
    command = ["enrol-code", "--config", str(config), "--by", "olga", "--agent"]
    engine = open_engine(f"sqlite:///{tmp_path / 'registry' / 'registry.sqlite'}")
    registry_config = server_config(tmp_path, "mqtt://127.0.0.1:1883")

    # No key to replace yet; the registry's own users never get a code.
    assert registry_main([*command, "shop-42", "--replace"]) == 65
    assert "shop-42 is not enrolled" in capsys.readouterr().err
    for service in ("ingest-east-2", "camera-registry", "registry"):
        assert registry_main([*command, service]) == 65
        assert "registry's own broker user" in capsys.readouterr().err
    assert registry_main([*command, "Shop 42"]) == 65
    assert "not an agent id" in capsys.readouterr().err

    assert registry_main([*command, "shop-42"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    with registry(engine, registry_config, NoPassword()) as url:
        old = Ed25519PrivateKey.generate()
        assert post(url, enrol_body(first, "shop-42", old)).status_code == 200
        old_kid = jws.thumbprint(old.public_key())

        # Enrolled: a plain code is refused, a re-enrolment code says what it replaces.
        assert registry_main([*command, "shop-42"]) == 65
        refusal = capsys.readouterr().err
        assert f"shop-42 is enrolled already (device key {old_kid})" in refusal
        assert "--replace" in refusal
        assert registry_main([*command, "shop-42", "--replace"]) == 0
        shown = capsys.readouterr().out.splitlines()
        assert f"this code REPLACES shop-42's device key {old_kid}" in shown[-1]
        assert registry_main([*command, "shop-42", "--replace"]) == 0
        stale = capsys.readouterr().out.splitlines()[0]
        assert registry_main(["enrol-code", "--config", str(config), "--list"]) == 0
        listed = capsys.readouterr().out
        assert listed.count(f"for shop-42, REPLACES key {old_kid}") == 2

        # The re-enrolment code enrols shop-42 only, with its new key.
        new = Ed25519PrivateKey.generate()
        other = post(url, enrol_body(shown[0], "shop-43"))
        replaced = post(url, enrol_body(shown[0], "shop-42", new))
        # The second one was made for the old key, which is gone.
        late = post(url, enrol_body(stale, "shop-42"))
    engine.dispose()
    assert (other.status_code, other.json()["error"]) == (403, "code_wrong_agent")
    assert replaced.status_code == 200, replaced.text
    assert (late.status_code, late.json()["error"]) == (409, "key_changed")
    engine = open_engine(f"sqlite:///{tmp_path / 'registry' / 'registry.sqlite'}")
    assert stored_key(engine, "shop-42") == jws.thumbprint(new.public_key())
    engine.dispose()


def test_a_database_from_before_bound_codes_is_upgraded_and_its_codes_enrol_nobody(
    db_url: str, tmp_path: Path
) -> None:
    code = generate_code()
    old = open_engine(db_url)
    with old.begin() as connection:
        # The table as it was: no replaces_key; an open code bound to no agent.
        connection.exec_driver_sql("ALTER TABLE enrol_codes DROP COLUMN replaces_key")
        connection.exec_driver_sql(
            "INSERT INTO enrol_codes (code_sha256, created_by, created_at, expires_at) "
            f"VALUES ('{code_sha256(code)}', 'alice', {time.time()}, {time.time() + 3600})"
        )
    old.dispose()
    engine = open_engine(db_url)
    try:
        [unbound] = list_open_codes(engine)
        assert (unbound.agent, unbound.replaces_key) == (None, None)
        with registry(engine, server_config(tmp_path, "mqtt://127.0.0.1:1"), NoPassword()) as url:
            answer = post(url, enrol_body(code, "shop-42"))
        assert (answer.status_code, answer.json()["error"]) == (403, "code_rejected")
        assert stored_key(engine, "shop-42") is None
        assert code_for(engine, "shop-42")  # and new codes work
    finally:
        engine.dispose()


def test_the_registry_certificates_name_is_not_an_agent_id(engine: Engine, tmp_path: Path) -> None:
    """With client certificates the registry's broker user is its certificate's CN."""
    now = dt.datetime.now(dt.UTC)
    authority = _CertAuthority(tmp_path)
    pair = authority.issue(
        "registry", "ingest-tls", not_before=now, not_after=now + dt.timedelta(days=1), server=False
    )
    config = ServerConfig(
        data_dir=tmp_path / "registry",
        mqtt=BrokerConfig(
            broker="mqtts://127.0.0.1:8883",
            ca_file=authority.ca_file,
            client_cert=pair.cert_file,
            client_key=pair.key_file,
        ),
    )
    with registry(engine, config, NoPassword()) as url:
        attack = post(url, enrol_body(code_for(engine, "shop-1"), "ingest-tls-2"))
    assert (attack.status_code, attack.json()["field"]) == (400, "agent_id")
    assert "'ingest-tls'" in attack.json()["message"]


def test_no_code_is_made_for_a_broker_user_enrolment_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passwords = tmp_path / "mosquitto.passwd"
    passwords.write_text("monitor:$7$101$c2FsdA==$aGFzaA==\n")
    config = registry_cli_config(tmp_path)
    with config.open("a") as out:
        out.write(f"enrolment:\n  password_file: {passwords}\n")
    command = ["enrol-code", "--config", str(config), "--agent"]
    assert registry_main([*command, "monitor"]) == 65
    assert "password file has a user 'monitor'" in capsys.readouterr().err
    assert registry_main([*command, "shop-42"]) == 0
    assert passwords.read_text() == "monitor:$7$101$c2FsdA==$aGFzaA==\n"


def test_the_owner_is_told_which_id_a_code_is_for_and_when_the_agent_is_enrolled(
    engine: Engine, tmp_path: Path
) -> None:
    owner = agent_config(tmp_path, agent_id="shop-43")
    code = code_for(engine, "shop-42")
    spare = code_for(engine, "shop-43")
    with registry(engine, server_config(tmp_path, "mqtt://127.0.0.1:1"), NoPassword()) as url:
        wrong = enroll(owner, url, code)
        assert enroll(owner, url, code_for(engine, "shop-43")).returncode == 0
        again = enroll(owner, url, spare)
    assert wrong.returncode == 77
    assert "this code was made for the agent id 'shop-42'" in wrong.stderr
    assert again.returncode == 77
    assert "shop-43 is enrolled already" in again.stderr
