"""What arrived on the requests topic and waits for the desk's thread: request tokens and
withdrawals, in two queues under one bound.

The MQTT thread only sorts a message (a withdrawal says so in its header's `typ`,
withdrawal.is_withdrawal) and queues it; nothing is trusted before the desk checks it.
Withdrawals wait apart so that the desk can take them between the chunks of an upload,
while request tokens wait until it is done: stopping an upload must not wait for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from datetime import datetime

from agent.police_requests.rejections import RejectionGate
from agent.police_requests.token import status_id
from agent.police_requests.withdrawal import is_withdrawal

# Messages waiting for the desk's thread, which may be busy for hours with an upload: a
# flood must not grow memory without bound. A police system sends one token a request;
# 256 waiting is more than any honest burst, and 4 MiB holds them at the usual ~1 kB
# (a token is at most MAX_TOKEN_BYTES, 16 KiB, anyway). Past either, a message is dropped
# unchecked and counted as `not_checked` in the rejections' summary: the sender sees no
# status and may send it again.
MAX_WAITING_TOKENS = 256
MAX_WAITING_BYTES = 4 * 1024 * 1024


class RequestInbox:
    def __init__(self, rejections: RejectionGate, now: Callable[[], datetime]) -> None:
        self._rejections = rejections
        self._now = now
        self._tokens: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._withdrawals: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._waiting = (0, 0)  # messages queued and their bytes, under _lock
        self._lock = threading.Lock()

    def put(self, payload: bytes) -> bool:
        """Queue a message (MQTT thread); False when it was dropped and counted unchecked."""
        with self._lock:
            count, size = self._waiting
            full = count >= MAX_WAITING_TOKENS or size + len(payload) > MAX_WAITING_BYTES
            if not full:
                self._waiting = (count + 1, size + len(payload))
        if full:
            self._rejections.not_checked(status_id(payload), len(payload), self._now())
            return False
        (self._withdrawals if is_withdrawal(payload) else self._tokens).put(payload)
        return True

    def next_token(self) -> bytes | None:
        return self._take(self._tokens)

    def next_withdrawal(self) -> bytes | None:
        return self._take(self._withdrawals)

    def _take(self, waiting: queue.SimpleQueue[bytes]) -> bytes | None:
        try:
            payload = waiting.get_nowait()
        except queue.Empty:
            return None
        with self._lock:
            count, size = self._waiting
            self._waiting = (count - 1, size - len(payload))
        return payload
