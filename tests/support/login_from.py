"""A login form posted from a chosen loopback address (127.0.0.0/8 is all loopback), so a
test can be many clients at once: per-address limits see each as its own."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    retry_after: str | None


def post_login(url: str, source: str, fields: dict[str, str]) -> Answer:
    """POST `fields` to `url`/login from `source` (127.x.y.z)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=60, source_address=(source, 0)
    )
    try:
        connection.request(
            "POST",
            "/login",
            urlencode(fields),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        answer = connection.getresponse()
        body = answer.read().decode(errors="replace")
        return Answer(answer.status, body, answer.getheader("retry-after"))
    finally:
        connection.close()
