"""The on-disk outbox: order, durability, thinning of old health, refusals set aside."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.mqtt.outbox import OUTBOX_FILE, REJECTED_STATUS_KEY, Outbox, OutboxError
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher


def put_health(outbox: Outbox, camera: str, n: int) -> list[int]:
    return [
        outbox.put(f"t/{camera}", f"{camera}-{i}".encode(), retain=True, kind="health", key=camera)
        for i in range(n)
    ]


def test_messages_come_back_in_order_until_delivered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    ids = put_health(outbox, "front", 3)
    status = outbox.put("t/status", b"s", retain=True, kind="status")
    assert [m.id for m in outbox.after(0, 10)] == [*ids, status]
    assert [m.id for m in outbox.after(ids[1], 10)] == [ids[2], status]
    outbox.delivered(ids[0])
    assert [m.payload for m in outbox.after(0, 2)] == [b"front-1", b"front-2"]
    assert outbox.pending() == 3


def test_what_was_not_acknowledged_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    first = Outbox(path)
    ids = put_health(first, "front", 4)
    first.delivered(ids[0])
    first.close()  # a kill -9 loses no committed row either: each put is its own commit
    again = Outbox(path)
    assert [m.payload for m in again.after(0, 10)] == [b"front-1", b"front-2", b"front-3"]
    newer = again.put("t/front", b"new", retain=True, kind="health", key="front")
    assert newer > ids[-1]


def test_a_long_outage_thins_one_cameras_old_health_but_never_statuses(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", max_health_per_camera=10)
    statuses = [outbox.put("t/s", b"%d" % i, retain=True, kind="status") for i in range(30)]
    put_health(outbox, "back", 5)
    put_health(outbox, "front", 11)
    kept = outbox.after(0, 1000)
    front = [m.payload.decode() for m in kept if m.topic == "t/front"]
    # The oldest half lost every other report; the newest half is whole.
    assert front == ["front-0", "front-2", "front-4", *[f"front-{i}" for i in range(5, 11)]]
    assert [m.id for m in kept if m.kind == "status"] == statuses
    assert len([m for m in kept if m.topic == "t/back"]) == 5


def test_a_refused_message_leaves_the_queue_and_is_kept_with_its_reason(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    ids = put_health(outbox, "front", 2)
    refused = outbox.refused(ids[0], "Not authorized")
    assert refused is not None and refused.payload == b"front-0"
    assert [m.id for m in outbox.after(0, 10)] == [ids[1]]
    assert outbox.refusals() == [("t/front", "Not authorized")]
    assert outbox.refused(ids[0], "again") is None


def test_an_unknown_kind_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        Outbox(tmp_path / "o.sqlite").put("t", b"x", retain=False, kind="birth")


def test_a_file_that_is_not_an_outbox_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match=r"outbox\.sqlite"):
        Outbox(path)


def test_statuses_of_rejected_tokens_are_capped_and_others_kept(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", max_rejected_statuses=5)
    kept = outbox.put("p/requests/good/status", b"{}", retain=True, kind="status")
    for n in range(12):
        outbox.put(
            f"p/requests/{n:016x}/status",
            b"{}",
            retain=False,
            kind="status",
            key=REJECTED_STATUS_KEY,
        )
    topics = [m.topic for m in outbox.after(0, 100)]
    assert topics == ["p/requests/good/status"] + [
        f"p/requests/{n:016x}/status" for n in range(7, 12)
    ]
    assert outbox.after(0, 1)[0].id == kept


def status(request_id: str) -> bytes:
    body = {
        "request_id": request_id,
        "state": "rejected",
        "reason": "malformed",
        "progress": {"bytes_sent": 0, "bytes_total": 0},
        "manifest_sha256": None,
        "ts": "2026-12-01T10:00:00.000Z",
    }
    return json.dumps(body).encode()


def test_unpublishable_messages_left_in_the_outbox_are_set_aside_and_the_rest_are_sent(
    tmp_path: Path,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
) -> None:
    clip = tmp_h264(2, width=320, height=180, fps=10)
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[{"id": "front", "url": str(clip), "analysis_interval": "1s"}],
    )
    # What an earlier run left on disk: wildcards in a topic (a request id `#`), which
    # paho will not publish, between two good messages.
    base = "camreg/v1/agents/shop-42/requests"
    left = Outbox(tmp_path / "state" / OUTBOX_FILE)
    for request_id in ("before", "#", "a/+", "after"):
        left.put(f"{base}/{request_id}/status", status(request_id), retain=True, kind="status")
    left.close()
    health = "camreg/v1/agents/shop-42/cameras/front/health"
    with Watcher.for_broker(broker, "camreg/#") as watch:
        boots = []
        for _ in range(2):  # and again after a restart
            agent = AgentProcess(config).start()
            agents.append(agent)
            fresh = watch.wait_for(
                lambda m: m.topic == health and m.json()["bdseq"] not in boots, timeout=20
            )
            boots.append(fresh.json()["bdseq"])
            assert agent.terminate()[0] == 0
        sent = [m.topic for m in watch.messages(f"{base}/+/status")]
        assert sent == [f"{base}/before/status", f"{base}/after/status"]
    assert "cannot be published" in agents[0].log
    kept = Outbox(tmp_path / "state" / OUTBOX_FILE)
    assert [topic for topic, _ in kept.refusals()] == [f"{base}/#/status", f"{base}/a/+/status"]
    assert all(reason.startswith("unpublishable") for _, reason in kept.refusals())
    assert kept.pending() == 0
