"""A registry-side subscriber that counts health reports by (camera, seq), across outages.

It keeps an MQTT 5 session on the broker (clean_start false, long expiry), so what the
agent publishes while this subscriber is reconnecting is queued for it, and it
reconnects quickly on its own.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.broker import Broker
from tests.support.schemas import contract_problem


class SeqCounter:
    def __init__(self, broker: Broker, topic_filter: str) -> None:
        self._broker = broker
        self._filter = topic_filter
        self._lock = threading.Condition()
        self.seqs: dict[str, list[int]] = defaultdict(list)  # camera -> seqs in arrival order
        self.bdseqs: set[int] = set()
        self.arrivals: list[float] = []  # monotonic arrival of every live (not retained) report
        self.connects = 0
        self.contract_problems: list[str] = []
        self.expiries: set[int | None] = set()  # MQTT 5 message expiry left on arrival
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"counter-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        # paho sleeps for these seconds as given; its hint says int only
        self._client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def __enter__(self) -> SeqCounter:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self._client.connect(
            self._broker.host, self._broker.port, clean_start=False, properties=properties
        )
        self._client.loop_start()
        deadline = time.monotonic() + 10
        with self._lock:
            while self.connects == 0:
                if not self._lock.wait(deadline - time.monotonic()):
                    raise AssertionError("the counting subscriber did not connect")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        if exc[0] is None and self.contract_problems:
            raise AssertionError("\n".join(self.contract_problems))

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(self._filter, qos=1)
        with self._lock:
            self.connects += 1
            self._lock.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        problem = contract_problem(message.topic, bytes(message.payload))
        if problem is not None:
            self.contract_problems.append(problem)
            return
        body = json.loads(message.payload)
        with self._lock:
            self.seqs[body["camera"]].append(body["seq"])
            self.expiries.add(getattr(message.properties, "MessageExpiryInterval", None))
            if not message.retain:  # a retained copy comes from the broker, not the agent
                self.arrivals.append(time.monotonic())
            self.bdseqs.add(body["bdseq"])
            self._lock.notify_all()

    def first_after(self, moment: float) -> float | None:
        """Arrival time of the first report received after `moment` (monotonic)."""
        with self._lock:
            return next((t for t in self.arrivals if t > moment), None)

    def highest(self, camera: str) -> int:
        with self._lock:
            return max(self.seqs[camera], default=-1)

    def wait_for_seq(self, camera: str, seq: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while max(self.seqs[camera], default=-1) < seq:
                left = deadline - time.monotonic()
                if left <= 0 or not self._lock.wait(left):
                    raise AssertionError(
                        f"camera {camera}: seq {seq} not received within {timeout} s; "
                        f"got {self.summary()}"
                    )

    def missing(self, camera: str) -> list[int]:
        """Seqs between the first and the last received that never arrived."""
        with self._lock:
            got = set(self.seqs[camera])
        if not got:
            return []
        return sorted(set(range(min(got), max(got) + 1)) - got)

    def duplicates(self, camera: str) -> int:
        with self._lock:
            return len(self.seqs[camera]) - len(set(self.seqs[camera]))

    def summary(self) -> str:
        with self._lock:
            return ", ".join(
                f"{cam}: {len(s)} msgs, {min(s)}..{max(s)}" for cam, s in self.seqs.items() if s
            )
