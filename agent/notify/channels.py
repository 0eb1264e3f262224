"""The ways a message reaches the owner: e-mail (SMTP), a webhook (JSON POST), ntfy push.

Each `send` blocks (only the notification sender's thread calls it), has its timeouts in
the library calls, and raises ChannelError for anything that should be tried again."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import requests

from agent.errors import AgentError
from agent.notify.config import EmailSettings, NtfySettings, WebhookSettings
from agent.notify.messages import Message

USER_AGENT = "camera-agent notifications"


class ChannelError(AgentError):
    """A message could not be delivered on one channel (this time)."""


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None: ...


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(ca_file)  # added to the system's CAs
    return context


class EmailChannel:
    name = "email"

    def __init__(self, settings: EmailSettings, agent: str) -> None:
        self._settings = settings
        self._agent = agent

    def compose(self, message: Message) -> EmailMessage:
        settings = self._settings
        mail = EmailMessage()
        mail["Subject"] = f"[{self._agent}] {message.title}"
        mail["From"] = settings.sender
        mail["To"] = ", ".join(settings.to)
        mail["Date"] = formatdate(localtime=True)
        mail["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2].strip(">"))
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        mail.set_content(message.body)
        return mail

    def send(self, message: Message) -> None:
        settings = self._settings
        ca_file = str(settings.ca_file) if settings.ca_file else None
        host, port, timeout = settings.host, settings.effective_port, settings.timeout
        try:
            smtp: smtplib.SMTP
            if settings.security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context(ca_file))
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            with smtp:
                if settings.security == "starttls":
                    smtp.starttls(context=_tls_context(ca_file))
                if settings.username is not None and settings.password is not None:
                    smtp.login(settings.username, settings.password.get_secret_value())
                smtp.send_message(self.compose(message))
        except smtplib.SMTPException as exc:
            raise ChannelError(f"mail server {host}:{port}: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ChannelError(f"mail server {host}:{port}: {exc.strerror or exc}") from exc


def _post(
    session: requests.Session,
    url: str,
    *,
    data: bytes,
    headers: dict[str, str],
    timeout: float,
) -> None:
    try:
        response = session.post(
            url, data=data, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise ChannelError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise ChannelError(f"{url}: HTTP {response.status_code} {response.text[:200]!r}")


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        settings: WebhookSettings,
        agent: str,
        locale: str,
        session: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self._agent = agent
        self._locale = locale
        self._session = session or requests.Session()

    def send(self, message: Message) -> None:
        settings = self._settings
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        body = json.dumps(message.as_json(self._agent, self._locale), ensure_ascii=False)
        _post(
            self._session,
            settings.url,
            data=body.encode(),
            headers=headers,
            timeout=settings.timeout,
        )


def header_text(text: str) -> str:
    """An HTTP header value: as is when ASCII, else an RFC 2047 encoded-word (ntfy decodes
    those; HTTP headers are Latin-1 at best)."""
    text = " ".join(text.split())  # no line breaks in a header
    if text.isascii():
        return text
    return Header(text, "utf-8").encode(maxlinelen=10_000)


class NtfyChannel:
    name = "ntfy"

    def __init__(self, settings: NtfySettings, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._session = session or requests.Session()

    def send(self, message: Message) -> None:
        settings = self._settings
        headers = {
            "Title": header_text(message.title),
            "Priority": str(message.priority),
            "Tags": ",".join(message.tags),
            "Content-Type": "text/plain; charset=utf-8",
            "User-Agent": USER_AGENT,
        }
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        _post(
            self._session,
            settings.url,
            data=message.body.encode(),
            headers=headers,
            timeout=settings.timeout,
        )
