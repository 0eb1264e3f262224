"""The demo's notice board: a local HTTP receiver that prints each notification the agent
sends, webhook (JSON) or ntfy-style (plain text with a Title header), as one line:

    notification: Camera Demo camera (front) is not working — ... What to do: ...

    python demo/notice_board.py --port 18082

Stands in for the owner's phone or mail box; it answers every POST with 200."""

from __future__ import annotations

import argparse
import json
import sys
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCHEMA = "camreg.notification.v1"
# A request's message runs to a dozen lines; one terminal line is enough to notice it.
MAX_LINES = 2  # per paragraph
MAX_SUMMARY = 300
MAX_BODY = 1_000_000


def say(line: str) -> None:
    """Print one line in one write: the demo's scripts share one terminal, and print()
    under `python -u` writes the text and its newline apart, so another script's line
    could land between them (seen: "agent: sentnotification: ...")."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def summary(title: str, message: str) -> str:
    """The title and the message on one line: without the message's `Sent by ...` footer,
    and of a long paragraph its first and last lines (what happened, what to do)."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) > 1:
        paragraphs = paragraphs[:-1]
    said: list[str] = []
    for paragraph in paragraphs:
        lines = [" ".join(line.split()) for line in paragraph.splitlines() if line.strip()]
        said += [lines[0], "…", lines[-1]] if len(lines) > MAX_LINES else lines
    text = " ".join(said)
    if len(text) > MAX_SUMMARY:
        text = text[: MAX_SUMMARY - 1].rstrip() + "…"
    return f"notification: {title} — {text}" if text else f"notification: {title}"


def header_text(value: str) -> str:
    """A header as ntfy reads it: RFC 2047 encoded-words decoded."""
    return str(make_header(decode_header(value)))


def parse(content_type: str, headers: dict[str, str], body: bytes) -> tuple[str, str] | None:
    """(title, message) of a webhook or ntfy post; None if it is neither."""
    text = body.decode("utf-8", errors="replace")
    if content_type.startswith("application/json"):
        try:
            data: Any = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            return None
        return str(data.get("title", "")), str(data.get("message", ""))
    title = headers.get("title")
    return (header_text(title) if title else "(no title)"), text


class NoticeHandler(BaseHTTPRequestHandler):
    server_version = "demo-notice-board"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            self._answer(413, "too large")
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        parsed = parse(headers.get("content-type", ""), headers, body)
        if parsed is None:
            self._answer(400, "not a notification")
            return
        say(summary(*parsed))
        self._answer(200, "ok")

    def _answer(self, status: int, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the notifications are the output."""


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with ThreadingHTTPServer((args.host, args.port), NoticeHandler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
