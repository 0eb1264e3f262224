"""The owner page served by a real agent process (real broker, H.264 camera, tus server): a
voluntary police request approved on the page is delivered; no picture ever goes to MQTT."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import requests

from agent.owner_page.auth import set_owner_password
from tests.support import free_port
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.tokens import Police
from tests.support.tus_server import TusServer

PASSWORD = "lamp post number 7"
BASE = "camreg/v1/agents/shop-42"


def test_a_request_approved_on_the_page_of_a_running_agent_is_delivered(
    tmp_path: Path, broker: Broker, tmp_h264: Callable[..., Path], agents: list[AgentProcess]
) -> None:
    port = free_port()
    with TusServer(token="bearer-123") as tus:
        police = Police(upload=tus.endpoint)
        config = write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {
                    "id": "front",
                    "url": str(tmp_h264(4, width=320, height=180, fps=10)),
                    "analysis_interval": "1s",
                    "recording": {"segment": "2s"},
                    "location": {"lat": 52.99, "lon": 6.56, "fov_deg": 90},
                }
            ],
            police={"keys": [{"jwk": police.jwk}], "upload_allow": [tus.endpoint]},
            owner_page={"enabled": True, "listen": f"127.0.0.1:{port}"},
        )
        set_owner_password(tmp_path / "state", PASSWORD)
        url = f"http://127.0.0.1:{port}"
        with Watcher.for_broker(broker, "camreg/#") as watch:
            agent = AgentProcess(config).start()
            agents.append(agent)
            watch.wait_for(
                lambda m: (
                    m.topic.endswith("/front/health")
                    and bool((m.json().get("footage") or {}).get("oldest"))
                ),
                timeout=30,
            )
            # More footage on purpose: the default window ends 5 s before a token is made.
            time.sleep(3)
            client = requests.Session()
            page = client.post(url + "/login", data={"password": PASSWORD}, timeout=10)
            assert page.status_code == 200, agent.log
            assert 'data-problem="low_resolution"' in page.text  # 320 wide, 640 expected
            assert "Choose the camera&#39;s main (high resolution) stream" in page.text
            snapshot = client.get(url + "/cameras/front/snapshot.jpg", timeout=10)
            assert snapshot.content[:3] == b"\xff\xd8\xff"

            token = police.token(police.claims(jti="vol-9", kind="voluntary"))
            watch.publish(f"{BASE}/requests", token)
            watch.wait_for(
                lambda m: (
                    m.topic == f"{BASE}/requests/vol-9/status"
                    and m.json()["state"] == "awaiting_owner"
                ),
                timeout=20,
            )
            listing = client.get(url + "/requests", timeout=10).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', listing)
            assert csrf is not None and 'data-state="awaiting_owner"' in listing
            client.post(
                url + "/requests/vol-9/decision",
                data={"decision": "approve", "csrf": csrf.group(1)},
                timeout=10,
            )
            done = watch.wait_for(
                lambda m: (
                    m.topic == f"{BASE}/requests/vol-9/status" and m.json()["state"] == "completed"
                ),
                timeout=60,
            ).json()
            assert done["progress"]["bytes_sent"] == done["progress"]["bytes_total"] > 0
            listing = client.get(url + "/requests", timeout=10).text
            assert 'data-state="completed"' in listing and "100 %" in listing
            audit = client.get(url + "/audit", timeout=10).text
            assert "approved by you" in audit
            assert agent.terminate()[0] == 0
            assert "owner page: request vol-9: approve by the owner from 127.0.0.1" in agent.log
            # The snapshot was shown, but no message on the broker carries a picture.
            for message in watch.messages():
                assert b"\xff\xd8\xff" not in message.payload, message.topic
                assert len(message.payload) < 20_000, message.topic
