"""A request that waits for the owner keeps its window from the owner's ONVIF recorder at
once: a hold stops the agent's own pruning, but nothing stops a recorder from overwriting
the window while the owner thinks it over (up to `police.owner_timeout`, 72 h by default).
So the window is fetched into the agent's storage (held there by the request's hold) as
soon as the request waits, once per request and agent start; the export then finds the
copy and does not ask the recorder again. A failed copy is logged and tried once more at
the export, whose failure is the request's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from agent.police_requests.store import StoredRequest
from agent.recording.recorder_fetch import FetchError

log = logging.getLogger(__name__)

FetchFootage = Callable[[Sequence[str], datetime, datetime, threading.Event], None]


class EarlyCopies:
    """Fetches each waiting request's window once (the desk's thread)."""

    def __init__(self, fetch: FetchFootage | None) -> None:
        self._fetch = fetch
        self._tried: set[str] = set()

    def keep(self, request: StoredRequest, stop: threading.Event) -> None:
        if self._fetch is None or request.id in self._tried:
            return
        self._tried.add(request.id)
        try:
            self._fetch(request.cameras, request.start, request.end, stop)
        except FetchError as exc:
            if not stop.is_set():
                log.warning(
                    "request %s: could not keep a copy of the window from the recorder while "
                    "it waits for you (%s); tried again when it is exported",
                    request.id,
                    exc,
                )
