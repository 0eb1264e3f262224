"""A test ONVIF camera: the device and media services over HTTP (SOAP 1.2), and optionally a
WS-Discovery responder, so `camera-agent discover` and `cameras[].onvif` meet a device that
speaks the protocol as a camera does.

Its messages are not hand-written XML: they are parsed and built by zeep against the very
WSDL and XSD files onvif-zeep-async ships (`binding.get(op).input.deserialize(...)` and
`.output.serialize(...)`), so an answer that breaks the schema fails here, as it would in a
real client. What it answers: GetDeviceInformation, GetSystemDateAndTime (with a settable
clock offset, `clock_offset`), GetCapabilities, GetServices, Media GetProfiles (two
profiles, main 1920x1080 and sub 640x360, both H.264) and GetStreamUri (the RTSP URLs the
test gives it). Every operation but the pre-auth ones (GetSystemDateAndTime, GetServices,
GetCapabilities, as ONVIF's access classes allow) checks a WS-Security UsernameToken digest,
and a wrong one gets the SOAP fault ter:NotAuthorized, as real cameras answer.

Run in-process (`with OnvifDevice(...) as device:`), or as a process inside a test's network
namespace (`python -m tests.support.onvif_device --help`), where `--discovery` also answers
WS-Discovery probes on the namespace's network (the library skips loopback).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import http.server
import json
import signal
import sys
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import onvif.client
import zeep
from lxml import etree
from lxml.builder import ElementMaker

from tests.support import free_port

WSDL_DIR = Path(onvif.client._WSDL_PATH)
DEVICE_PATH = "/onvif/device_service"
MEDIA_PATH = "/onvif/media_service"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TER = "http://www.onvif.org/ver10/error"
DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
NVT_TYPE = ("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter")
# ONVIF's access class PRE_AUTH: a client may call these before it has credentials (it needs
# the device's clock to build a digest, and the service list to find the media service).
PRE_AUTH = frozenset({"GetSystemDateAndTime", "GetServices", "GetCapabilities"})
# How far a UsernameToken's Created may be from the device's clock, as cameras allow; a
# client whose clock differs more must adjust by the device's time first.
CREATED_WINDOW = dt.timedelta(minutes=5)
# A request larger than this is refused before parsing (no camera takes megabytes of SOAP).
MAX_REQUEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class Profile:
    """One media profile: what GetProfiles reports and which URL GetStreamUri gives."""

    token: str
    name: str
    width: int
    height: int
    uri: str
    encoding: str = "H264"
    fps: int = 15
    bitrate_kbps: int = 4000


@cache
def _binding(wsdl: str, namespace: str, name: str) -> Any:
    """The zeep binding of one ONVIF service, loaded once per process from the shipped files."""
    settings = zeep.Settings(strict=False)
    client = zeep.Client(str(WSDL_DIR / wsdl), settings=settings)  # type: ignore[no-untyped-call]
    return client.wsdl.bindings[f"{{{namespace}}}{name}"]


def device_binding() -> Any:
    return _binding("devicemgmt.wsdl", DEVICE_NS, "DeviceBinding")


def media_binding() -> Any:
    return _binding("media.wsdl", MEDIA_NS, "MediaBinding")


class NotAuthorized(Exception):
    """The request's UsernameToken is missing or wrong."""


@dataclass
class OnvifDevice:
    """One test camera's ONVIF services on http://HOST:PORT; restarts are not needed."""

    stream_uris: dict[str, str]
    username: str = "onvif"
    password: str = "onvif-pass"
    host: str = "127.0.0.1"
    port: int = 0
    manufacturer: str = "Camreg Test"
    model: str = "TD-1080"
    firmware: str = "2.4.1"
    serial: str = "TD0001"
    # Added to this machine's clock in GetSystemDateAndTime and in the digest's freshness
    # check: a camera whose clock is off (issue 18's clock_drift reads it).
    clock_offset: dt.timedelta = dt.timedelta(0)
    # What GetServices and GetCapabilities say the media service's address is, when not its
    # own: a device that points elsewhere (the hostile tests).
    advertised_media_url: str | None = None
    # The raw body to answer GetSystemDateAndTime with instead of the real clock: a device
    # that tells nonsense (the hostile clock tests), written as an attacker would, by hand.
    clock_reply: bytes | None = None
    # False: only the main profile, as a camera without a sub-stream has.
    sub_profile: bool = True
    requests: list[str] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()

    @property
    def url(self) -> str:
        """The device service's address, as `cameras[].onvif.url` names it."""
        return f"http://{self.host}:{self.port}{DEVICE_PATH}"

    @property
    def media_url(self) -> str:
        """The media service's address as the device advertises it."""
        return self.advertised_media_url or f"http://{self.host}:{self.port}{MEDIA_PATH}"

    def profiles(self) -> list[Profile]:
        """main 1920x1080 and sub 640x360, both H.264, as most cameras ship."""
        main = Profile("main", "mainStream", 1920, 1080, self.stream_uris["main"])
        if not self.sub_profile:
            return [main]
        return [
            main,
            Profile("sub", "subStream", 640, 360, self.stream_uris["sub"], bitrate_kbps=512),
        ]

    def now(self) -> dt.datetime:
        """The device's clock: this machine's plus `clock_offset`."""
        return dt.datetime.now(dt.UTC) + self.clock_offset

    def start(self) -> OnvifDevice:
        device = self

        class Handler(_Handler):
            owner = device

        self._server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="onvif-device", daemon=True
        ).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OnvifDevice:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the operations: each returns the output message's values, zeep renders them ---

    def service_at(self, path: str) -> str | None:
        """Which service answers at `path` (None: nothing does); a recorder adds its own."""
        return {DEVICE_PATH: "device", MEDIA_PATH: "media"}.get(path)

    def binding(self, service: str) -> Any:
        """The zeep binding `service`'s messages are parsed and built by."""
        return device_binding() if service == "device" else media_binding()

    def more_services(self) -> list[dict[str, Any]]:
        """GetServices entries beyond the device and media services (a recorder's)."""
        return []

    def answer(self, service: str, operation: str, params: Any) -> dict[str, Any]:
        if service == "device":
            return self._device_operation(operation)
        return self._media_operation(operation, params)

    def _device_operation(self, operation: str) -> dict[str, Any]:
        if operation == "GetDeviceInformation":
            return {
                "Manufacturer": self.manufacturer,
                "Model": self.model,
                "FirmwareVersion": self.firmware,
                "SerialNumber": self.serial,
                "HardwareId": self.model,
            }
        if operation == "GetSystemDateAndTime":
            now = self.now()
            stamp = {
                "Time": {"Hour": now.hour, "Minute": now.minute, "Second": now.second},
                "Date": {"Year": now.year, "Month": now.month, "Day": now.day},
            }
            return {
                "SystemDateAndTime": {
                    "DateTimeType": "NTP",
                    "DaylightSavings": False,
                    "TimeZone": {"TZ": "UTC0"},
                    "UTCDateTime": stamp,
                    "LocalDateTime": stamp,
                }
            }
        if operation == "GetServices":
            return {
                "Service": [
                    {"Namespace": DEVICE_NS, "XAddr": self.url, "Version": _VERSION},
                    {"Namespace": MEDIA_NS, "XAddr": self.media_url, "Version": _VERSION},
                    *self.more_services(),
                ]
            }
        if operation == "GetCapabilities":
            return {
                "Capabilities": {
                    "Media": {
                        "XAddr": self.media_url,
                        "StreamingCapabilities": {
                            "RTPMulticast": False,
                            "RTP_TCP": True,
                            "RTP_RTSP_TCP": True,
                        },
                    }
                }
            }
        raise Unsupported(operation)

    def _media_operation(self, operation: str, params: Any) -> dict[str, Any]:
        if operation == "GetProfiles":
            return {"Profiles": [_profile_values(p) for p in self.profiles()]}
        if operation == "GetStreamUri":
            token = params.ProfileToken
            for profile in self.profiles():
                if profile.token == token:
                    return {
                        "MediaUri": {
                            "Uri": profile.uri,
                            "InvalidAfterConnect": False,
                            "InvalidAfterReboot": False,
                            "Timeout": "PT0S",
                        }
                    }
            raise InvalidArgs(f"no profile {token!r}")
        raise Unsupported(operation)

    def check_token(self, envelope: etree._Element) -> None:
        """WS-Security UsernameToken with PasswordDigest = Base64(SHA-1(nonce + created +
        password)), its Created within CREATED_WINDOW of the device's clock."""
        ns = {"s": SOAP12, "wsse": WSSE, "wsu": WSU}
        token = envelope.find("s:Header/wsse:Security/wsse:UsernameToken", ns)
        if token is None:
            raise NotAuthorized("no UsernameToken")
        username = token.findtext("wsse:Username", namespaces=ns)
        digest = token.findtext("wsse:Password", namespaces=ns) or ""
        nonce = token.findtext("wsse:Nonce", namespaces=ns) or ""
        created = token.findtext("wsu:Created", namespaces=ns) or ""
        try:
            nonce_bytes = base64.b64decode(nonce, validate=True)
            when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            raise NotAuthorized("malformed token") from None
        expected = base64.b64encode(
            hashlib.sha1(nonce_bytes + created.encode() + self.password.encode()).digest()
        ).decode()
        if username != self.username or digest != expected:
            raise NotAuthorized("wrong user name or password")
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        if abs(when - self.now()) > CREATED_WINDOW:
            raise NotAuthorized("Created is too far from the device's clock")


_VERSION = {"Major": 2, "Minor": 60}


def _profile_values(profile: Profile) -> dict[str, Any]:
    return {
        "token": profile.token,
        "fixed": True,
        "Name": profile.name,
        "VideoSourceConfiguration": {
            "token": "vsc",
            "Name": "video source",
            "UseCount": 2,
            "SourceToken": "vs",
            "Bounds": {"x": 0, "y": 0, "width": 1920, "height": 1080},
        },
        "VideoEncoderConfiguration": {
            "token": f"vec-{profile.token}",
            "Name": f"{profile.name} encoder",
            "UseCount": 1,
            "Encoding": profile.encoding,
            "Resolution": {"Width": profile.width, "Height": profile.height},
            "Quality": 5.0,
            "RateControl": {
                "FrameRateLimit": profile.fps,
                "EncodingInterval": 1,
                "BitrateLimit": profile.bitrate_kbps,
            },
            "H264": {"GovLength": profile.fps * 2, "H264Profile": "Main"},
            "Multicast": {
                "Address": {"Type": "IPv4", "IPv4Address": "0.0.0.0"},
                "Port": 0,
                "TTL": 1,
                "AutoStart": False,
            },
            "SessionTimeout": "PT60S",
        },
    }


class Unsupported(Exception):
    """The device does not do this operation (ter:ActionNotSupported)."""


class InvalidArgs(Exception):
    """An argument names nothing the device has (ter:InvalidArgVal)."""


_ENV = ElementMaker(namespace=SOAP12, nsmap={"env": SOAP12, "ter": TER})


def fault(subcode: str, reason: str) -> bytes:
    """A SOAP 1.2 Sender fault with an ONVIF subcode (ter:NotAuthorized, ter:ActionNotSupported,
    ter:InvalidArgVal); the ONVIF WSDL has no message for faults, so it is built as lxml
    elements, not as a string."""
    envelope = _ENV.Envelope(
        _ENV.Body(
            _ENV.Fault(
                _ENV.Code(_ENV.Value("env:Sender"), _ENV.Subcode(_ENV.Value(f"ter:{subcode}"))),
                _ENV.Reason(
                    _ENV.Text(reason, {"{http://www.w3.org/XML/1998/namespace}lang": "en"})
                ),
            )
        )
    )
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


class _Handler(http.server.BaseHTTPRequestHandler):
    owner: OnvifDevice
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._send(413, b"")
            return
        body = self.rfile.read(length)
        service = self.owner.service_at(self.path)
        if service is None:
            self._send(404, b"")
            return
        status, reply = self._reply(service, body)
        self._send(status, reply)

    def _reply(self, service: str, body: bytes) -> tuple[int, bytes]:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        try:
            envelope = etree.fromstring(body, parser)
        except etree.XMLSyntaxError:
            return 400, fault("WellFormed", "not XML")
        request = envelope.find(f"{{{SOAP12}}}Body/*")
        if request is None:
            return 400, fault("WellFormed", "no Body")
        operation = etree.QName(request).localname
        self.owner.requests.append(operation)
        if operation == "GetSystemDateAndTime" and self.owner.clock_reply is not None:
            return 200, self.owner.clock_reply
        binding = self.owner.binding(service)
        try:
            op = binding.get(operation)
        except ValueError:
            return 400, fault("ActionNotSupported", f"{operation} is not supported")
        try:
            if operation not in PRE_AUTH:
                self.owner.check_token(envelope)
            params = op.input.deserialize(envelope)
            values = self.owner.answer(service, operation, params)
        except NotAuthorized:
            return 400, fault("NotAuthorized", "Sender not Authorized")
        except Unsupported:
            return 400, fault("ActionNotSupported", f"{operation} is not supported")
        except InvalidArgs as exc:
            return 400, fault("InvalidArgVal", str(exc))
        message = op.output.serialize(**values)
        return 200, bytes(etree.tostring(message.content, xml_declaration=True, encoding="utf-8"))

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class DiscoveryResponder:
    """Answers WS-Discovery probes for NetworkVideoTransmitter with the device's address and
    the ONVIF scopes cameras send (name, hardware), by the wsdiscovery library's publishing
    side. It needs a non-loopback interface: run it inside a network namespace."""

    def __init__(self, device: OnvifDevice, name: str = "TestCam") -> None:
        from wsdiscovery import QName, Scope
        from wsdiscovery.publishing import ThreadedWSPublishing

        self._publisher = ThreadedWSPublishing()
        self._types = [QName(NVT_TYPE[0], NVT_TYPE[1], "dn")]
        # Percent-encoded, as cameras send scopes: a name may hold anything (the hostile tests
        # give one with terminal escapes), and raw control characters are not XML.
        self._scopes = [
            Scope(f"onvif://www.onvif.org/name/{quote(name, safe='')}"),
            Scope(f"onvif://www.onvif.org/hardware/{quote(device.model, safe='')}"),
            Scope("onvif://www.onvif.org/type/video_encoder"),
        ]
        self._xaddrs = [device.url]

    def start(self) -> DiscoveryResponder:
        self._publisher.start()
        self._publisher.publishService(types=self._types, scopes=self._scopes, xAddrs=self._xaddrs)
        return self

    def close(self) -> None:
        self._publisher.stop()


def main(argv: list[str] | None = None) -> int:
    """The device as a process: prints one JSON line (`{"url": ...}`) once it answers, and
    runs until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.onvif_device")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--username", default="onvif")
    parser.add_argument("--password", default="onvif-pass")
    parser.add_argument("--main-uri", required=True)
    parser.add_argument("--sub-uri", required=True)
    parser.add_argument("--clock-offset", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--discovery", action="store_true", help="answer WS-Discovery probes")
    parser.add_argument("--name", default="TestCam", help="the name scope discovery announces")
    parser.add_argument("--manufacturer", default="Camreg Test")
    parser.add_argument("--model", default="TD-1080")
    parser.add_argument(
        "--media-url", default=None, help="the media service's address to advertise, if not its own"
    )
    args = parser.parse_args(argv)
    device = OnvifDevice(
        {"main": args.main_uri, "sub": args.sub_uri},
        username=args.username,
        password=args.password,
        host=args.host,
        port=args.port or 0,
        clock_offset=dt.timedelta(seconds=args.clock_offset),
        manufacturer=args.manufacturer,
        model=args.model,
        advertised_media_url=args.media_url,
    ).start()
    responder = DiscoveryResponder(device, args.name).start() if args.discovery else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"url": device.url}), flush=True)
    stop.wait()
    if responder is not None:
        responder.close()
    device.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
