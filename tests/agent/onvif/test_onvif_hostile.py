"""A host on the LAN may answer as an ONVIF device with anything: reading it stays bounded in
time and memory and ends in an OnvifError that says what was wrong, never a crash."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from agent.errors import OnvifError
from agent.onvif import read_device
from agent.onvif.transport import MAX_REPLY_BYTES
from tests.support import free_port
from tests.support.onvif_device import OnvifDevice

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">]>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
<tds:GetSystemDateAndTimeResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl">&lol6;
</tds:GetSystemDateAndTimeResponse></env:Body></env:Envelope>"""


def _server(reply: Callable[[http.server.BaseHTTPRequestHandler], None]) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply(self)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/onvif/device_service"
    server.shutdown()
    server.server_close()


def _send(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/soap+xml")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def huge() -> Iterator[str]:
    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/soap+xml")
        h.end_headers()  # no length: it would go on for 50 MB
        chunk = b"<a>" + b"x" * 65536 + b"</a>"
        try:
            for _ in range(800):
                h.wfile.write(chunk)
        except OSError:
            pass

    yield from _server(reply)


@pytest.fixture
def laughs() -> Iterator[str]:
    yield from _server(lambda h: _send(h, BILLION_LAUGHS))


@pytest.fixture
def silent() -> Iterator[str]:
    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(2)

    yield from _server(reply)


def test_a_huge_reply_is_cut_off(huge: str) -> None:
    with pytest.raises(OnvifError, match=f"passed {MAX_REPLY_BYTES // 1024} kB"):
        read_device(huge, "u", "p", timeout=10)


def test_entity_expansion_is_refused(laughs: str) -> None:
    with pytest.raises(OnvifError, match="outside ONVIF"):
        read_device(laughs, "u", "p", timeout=10)


def test_a_device_that_never_answers_is_given_up_on_in_time(silent: str) -> None:
    began = time.monotonic()
    with pytest.raises(OnvifError, match="no complete answer within 1 s"):
        read_device(silent, "u", "p", timeout=1)
    assert time.monotonic() - began < 3


def test_a_media_service_on_another_host_is_not_sent_the_password() -> None:
    device = OnvifDevice(
        {"main": "rtsp://127.0.0.1/m", "sub": "rtsp://127.0.0.1/s"},
        advertised_media_url="http://192.0.2.7/onvif/media_service",
    )
    with device, pytest.raises(OnvifError, match="another host"):
        read_device(device.url, device.username, device.password, timeout=10)
    assert "GetProfiles" not in device.requests
