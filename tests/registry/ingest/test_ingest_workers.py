"""`camera-registry ingest --workers N`: worker processes, each with its own client id and
broker user, share the messages through the documented broker (use_username_as_clientid,
the docs ACL) and stop on SIGTERM; and the strict JSON parse's fast path agrees with the
stdlib parse."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from registry.config import ServerConfig
from registry.db.schema import cameras, health_history
from registry.errors import RegistryError
from registry.ingest.validate import parse_strict
from registry.ingest.workers import check_workers, worker_config
from tests.registry.ingest.test_ingest_store import encode, health, topic
from tests.support import REPO_ROOT, eventually
from tests.support.broker import Broker

DOCS_ACL = REPO_ROOT / "docs" / "mosquitto" / "acl"
PASSWORD = "registry-secret"
WAIT_S = 20.0


def test_each_worker_gets_its_own_client_id_and_broker_user(tmp_path: Path) -> None:
    password_file = tmp_path / "broker.pass"
    password_file.write_text(PASSWORD + "\n")
    config = ServerConfig.model_validate(
        {
            "mqtt": {
                "broker": "mqtt://127.0.0.1:1883",
                "username": "camera-registry",
                "password_file": password_file,
            }
        }
    )
    first, first_id = worker_config(config, 1, "reg-a")
    third, third_id = worker_config(config, 3, "reg-a")
    assert (first.mqtt.username, first_id) == ("camera-registry", "reg-a")
    assert (third.mqtt.username, third_id) == ("camera-registry-3", "reg-a-3")
    assert third.mqtt.broker == config.mqtt.broker
    assert third.mqtt.password == config.mqtt.password  # one password for all of them
    _, long_id = worker_config(config, 12, "x" * 80)
    assert long_id == "x" * 61 + "-12"


def test_several_workers_with_one_client_certificate_are_refused(tmp_path: Path) -> None:
    cert = tmp_path / "registry.crt"
    cert.write_text("not read here")
    key = tmp_path / "registry.key"
    key.write_text("not read here")
    config = ServerConfig.model_validate(
        {
            "mqtt": {
                "broker": "mqtts://registry.example.org:8883",
                "client_cert": cert,
                "client_key": key,
            }
        }
    )
    check_workers(config, 1)
    with pytest.raises(RegistryError, match="its own certificate"):
        check_workers(config, 2)


@pytest.fixture
def documented_broker(tmp_path: Path) -> Iterator[Broker]:
    """Users and ACL as docs/mosquitto says for two ingest workers: camera-registry and
    camera-registry-2 (the same lines), with use_username_as_clientid."""
    acl = DOCS_ACL.read_text()
    registry_lines = acl[acl.index("user camera-registry\n") :].splitlines()[1:]
    acl += (
        "\nuser camera-registry-2\n"
        + "\n".join(line for line in registry_lines if line.startswith("topic "))
        + "\n"
    )
    broker = Broker(
        users={"camera-registry": PASSWORD, "camera-registry-2": PASSWORD, "shop-1": "shop-secret"},
        acl=acl,
        directory=tmp_path / "broker",
    )
    broker.config_file.write_text(
        broker.config_file.read_text() + "use_username_as_clientid true\n"
    )
    broker.start()
    yield broker
    broker.close()


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_two_worker_processes_share_the_load_and_stop_on_sigterm(
    documented_broker: Broker,
    db_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    password_file = tmp_path / "broker.pass"
    password_file.write_text(PASSWORD + "\n")
    config_file = tmp_path / "registry.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "database": db_url,
                "mqtt": {
                    "broker": documented_broker.url,
                    "username": "camera-registry",
                    "password_file": str(password_file),
                },
            }
        )
    )
    ingest = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registry",
            "ingest",
            "--config",
            str(config_file),
            "--workers",
            "2",
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def both_connected() -> bool:
            assert ingest.poll() is None
            return all(
                f"as {user} " in documented_broker.log()
                for user in ("camera-registry", "camera-registry-2")
            )

        eventually(both_connected, "both ingest workers connected", WAIT_S, interval=0.1)
        time.sleep(0.5)  # the SUBACKs

        agent = paho.Client(CallbackAPIVersion.VERSION2, client_id="shop-1", protocol=paho.MQTTv5)
        agent.username_pw_set("shop-1", "shop-secret")
        agent.max_inflight_messages_set(1000)
        agent.connect(documented_broker.host, documented_broker.port)
        agent.loop_start()
        infos = [
            agent.publish(
                topic("shop-1", f"cameras/cam-{c}/health"),
                encode(health(camera=f"cam-{c}", seq=s)),
                qos=1,
            )
            for s in range(1, 11)
            for c in range(40)
        ]
        for info in infos:
            info.wait_for_publish(WAIT_S)
        agent.disconnect()
        agent.loop_stop()

        eventually(
            lambda: _count(engine, health_history) >= len(infos),
            "every report in the history",
            WAIT_S,
            interval=0.1,
        )
        ingest.send_signal(signal.SIGTERM)
        _, stderr = ingest.communicate(timeout=WAIT_S)
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.communicate()
    assert ingest.returncode == 0, stderr
    # Each worker says what it did as it stops; together they stored every report once.
    handled = [int(n) for n in re.findall(r"ingest stopped: (\d+) messages", stderr)]
    assert len(handled) == 2 and all(n > 0 for n in handled), stderr
    assert sum(handled) == len(infos)
    assert "took over this session" not in stderr
    with engine.connect() as connection:
        rows = connection.execute(select(cameras.c.received, cameras.c.missing, cameras.c.seq))
        assert {tuple(row) for row in rows} == {(10, 0, 10)}


# --- the strict JSON parse: fast path (orjson, round trip) and the stdlib path agree ------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES, st.sampled_from([(",", ":"), (", ", ": ")]), st.booleans())
def test_the_strict_parse_reads_what_the_stdlib_reads(
    value: Any, separators: tuple[str, str], ascii_only: bool
) -> None:
    text = json.dumps(value, separators=separators, ensure_ascii=ascii_only)
    assert parse_strict(text.encode(), text) == json.loads(text)


@given(
    st.dictionaries(st.text(max_size=5), JSON_VALUES, min_size=1, max_size=4),
    JSON_VALUES,
    st.data(),
)
def test_a_repeated_key_is_refused_whatever_the_spelling(
    value: dict[str, Any], other: Any, data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(value)))
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    nested = data.draw(st.booleans())
    inner = "{" + json.dumps(key, ensure_ascii=False) + ":" + json.dumps(other) + "," + compact[1:]
    text = '{"outer":' + inner + "}" if nested else inner
    with pytest.raises(ValueError, match="appears twice"):
        parse_strict(text.encode(), text)


@pytest.mark.parametrize("raw", [b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}'])
def test_nan_and_infinity_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        parse_strict(raw, raw.decode())
