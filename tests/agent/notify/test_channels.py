"""Each channel against a real server: aiosmtpd for mail, a real HTTP server for posts."""

from __future__ import annotations

import datetime as dt
import json
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from agent.i18n import translator
from agent.notify.channels import ChannelError, EmailChannel, NtfyChannel, WebhookChannel
from agent.notify.events import Event
from agent.notify.limiter import Outgoing
from agent.notify.messages import Message, Renderer
from tests.agent.notify.conftest import ConfigMaker
from tests.agent.notify.receiver import http_receiver, smtp_server
from tests.support import free_port
from tests.support.broker import _CertAuthority

AT = dt.datetime(2026, 3, 14, 13, 5, tzinfo=dt.UTC)
AMSTERDAM = dt.timezone(dt.timedelta(hours=1))


def covered_message(locale: str) -> Message:
    renderer = Renderer("shop-42", translator(locale), {"front": "Voordeur"}, AMSTERDAM)
    event = Event("camera_failed", AT, "front", "failed", ("covered",))
    return renderer.single(Outgoing(event))


@pytest.fixture
def server_cert(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(CA file, server cert, server key) for 127.0.0.1 / localhost."""
    authority = _CertAuthority(tmp_path)
    now = dt.datetime.now(dt.UTC)
    pair = authority.issue(
        "smtp", "localhost", not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=2), server=True,
    )  # fmt: skip
    return authority.ca_file, pair.cert_file, pair.key_file


def test_mail_through_a_local_relay_arrives_in_dutch(make_config: ConfigMaker) -> None:
    with smtp_server() as server:
        config = make_config(
            {
                "email": {
                    "host": "127.0.0.1",
                    "port": server.port,
                    "security": "none",
                    "from": "Camera's <cameras@shop.example>",
                    "to": ["owner@shop.example", "partner@shop.example"],
                }
            },
            locale="nl",
        )
        assert config.notifications is not None and config.notifications.email is not None
        EmailChannel(config.notifications.email, "shop-42").send(covered_message("nl"))
        [mail] = server.mailbox.wait()
    assert mail["Subject"] == "[shop-42] Camera Voordeur (front) werkt niet"
    assert mail["To"] == "owner@shop.example, partner@shop.example"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert server.mailbox.envelopes == [
        ("cameras@shop.example", ["owner@shop.example", "partner@shop.example"])
    ]
    body = mail.get_content()
    assert "Camera Voordeur (front) werkt niet meer sinds 2026-03-14 14:05" in body
    assert "de lens is afgedekt of het beeld is zwart" in body
    assert "Wat u kunt doen: haal weg wat de lens afdekt." in body
    assert "Verstuurd door camera-agent shop-42." in body


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_mail_over_tls_with_a_login_from_a_password_file(
    make_config: ConfigMaker,
    tmp_path: Path,
    server_cert: tuple[Path, Path, Path],
    security: str,
) -> None:
    ca_file, cert, key = server_cert
    (tmp_path / "smtp.pass").write_text("s3cret\n")
    with smtp_server(tls=(cert, key), implicit_tls=security == "ssl") as server:
        config = make_config(
            {
                "email": {
                    "host": "localhost",
                    "port": server.port,
                    "security": security,
                    "username": "shop",
                    "password_file": "smtp.pass",  # relative to the config file
                    "ca_file": str(ca_file),
                    "from": "cameras@shop.example",
                    "to": ["owner@shop.example"],
                }
            }
        )
        assert config.notifications is not None and config.notifications.email is not None
        EmailChannel(config.notifications.email, "shop-42").send(covered_message("en"))
        [mail] = server.mailbox.wait()
    assert server.mailbox.logins == [("shop", "s3cret")]
    assert mail["Subject"] == "[shop-42] Camera Voordeur (front) is not working"
    assert "the lens is covered or the picture is black" in mail.get_content()


def test_a_mail_server_with_an_untrusted_certificate_is_refused(
    make_config: ConfigMaker, tmp_path: Path, server_cert: tuple[Path, Path, Path]
) -> None:
    _, cert, key = server_cert
    (tmp_path / "smtp.pass").write_text("s3cret")
    with smtp_server(tls=(cert, key)) as server:
        config = make_config(
            {
                "email": {
                    "host": "localhost",
                    "port": server.port,
                    "username": "shop",
                    "password_file": "smtp.pass",
                    "from": "cameras@shop.example",
                    "to": ["owner@shop.example"],
                }
            }
        )
        assert config.notifications is not None and config.notifications.email is not None
        with pytest.raises(ChannelError, match="certificate verify failed"):
            EmailChannel(config.notifications.email, "shop-42").send(covered_message("en"))
    assert server.mailbox.logins == [] and server.mailbox.mails == []


def test_a_mail_server_that_is_not_there_is_a_channel_error(make_config: ConfigMaker) -> None:
    config = make_config(
        {
            "email": {
                "host": "127.0.0.1",
                "port": free_port(),
                "security": "none",
                "timeout": "2s",
                "from": "cameras@shop.example",
                "to": ["owner@shop.example"],
            }
        }
    )
    assert config.notifications is not None and config.notifications.email is not None
    with pytest.raises(ChannelError, match=r"mail server 127\.0\.0\.1"):
        EmailChannel(config.notifications.email, "shop-42").send(covered_message("en"))


def test_webhook_posts_the_event_as_json_with_a_bearer_token(
    make_config: ConfigMaker, tmp_path: Path
) -> None:
    (tmp_path / "hook.token").write_text("tok-123\n")
    with http_receiver() as receiver:
        config = make_config(
            {"webhook": {"url": f"{receiver.url}/hooks/cam", "token_file": "hook.token"}},
            locale="nl",
        )
        assert config.notifications is not None and config.notifications.webhook is not None
        channel = WebhookChannel(config.notifications.webhook, "shop-42", "nl")
        channel.send(covered_message("nl"))
        post = receiver.wait_for()
    assert post.path == "/hooks/cam"
    assert post.headers["authorization"] == "Bearer tok-123"
    assert post.headers["content-type"] == "application/json"
    body = json.loads(post.body)
    assert body["schema"] == "camreg.notification.v1"
    assert (body["agent"], body["event"], body["locale"]) == ("shop-42", "camera_failed", "nl")
    assert body["title"] == "Camera Voordeur (front) werkt niet"
    assert body["ts"] == "2026-03-14T13:05:00Z"
    assert body["events"] == [
        {
            "event": "camera_failed",
            "ts": "2026-03-14T13:05:00Z",
            "camera": "front",
            "status": "failed",
            "problems": ["covered"],
        }
    ]


def test_webhook_error_status_is_a_channel_error(make_config: ConfigMaker) -> None:
    with http_receiver() as receiver:
        receiver.fail_next.append(503)
        config = make_config({"webhook": {"url": f"{receiver.url}/hook"}})
        assert config.notifications is not None and config.notifications.webhook is not None
        with pytest.raises(ChannelError, match="HTTP 503"):
            WebhookChannel(config.notifications.webhook, "shop-42", "en").send(
                covered_message("en")
            )


def test_ntfy_posts_plain_text_with_title_priority_and_tags(
    make_config: ConfigMaker, tmp_path: Path
) -> None:
    (tmp_path / "ntfy.token").write_text("tk_abc")
    renderer = Renderer("shop-42", translator("en"), {"front": "Façade"}, AMSTERDAM)
    message = renderer.single(Outgoing(Event("camera_failed", AT, "front", "offline", ())))
    with http_receiver() as receiver:
        config = make_config(
            {"ntfy": {"url": f"{receiver.url}/shop-42-cams", "token_file": "ntfy.token"}}
        )
        assert config.notifications is not None and config.notifications.ntfy is not None
        NtfyChannel(config.notifications.ntfy).send(message)
        post = receiver.wait_for()
    assert post.path == "/shop-42-cams"
    assert post.headers["authorization"] == "Bearer tk_abc"
    assert post.headers["priority"] == "4" and post.headers["tags"] == "warning"
    # Not Latin-1 safe in a header: sent as an RFC 2047 encoded-word, which ntfy decodes.
    assert str(make_header(decode_header(post.headers["title"]))) == (
        "Camera Façade (front) is not working"
    )
    assert post.body.decode().startswith("Camera Façade (front) stopped working at 2026-03-14")
