"""Finding ONVIF devices on the local network: a WS-Discovery Probe for
NetworkVideoTransmitter sent to 239.255.255.250:3702 on every interface (by the WSDiscovery
library), and the ProbeMatch answers heard within a timeout.

Any host on the LAN may answer, with anything. The library parses each datagram (at most
64 kB) with minidom, which expands the entities a document type declaration defines: expat
stops a "billion laughs" only after about 8 MB of expansion, some 3 s of CPU per datagram,
during which nothing else is received and `discover` cannot stop (one such datagram made a
1 s discover take 4 s, and the whole command 8-10 s). SOAP forbids a document type
declaration (SOAP 1.2 Part 1, section 5), so a datagram with one is dropped before the
library parses it (`_without_doctype`). Here, too, each answer keeps the address it came
from, answers past MAX_DEVICES are dropped, and a device address (XAddr) on a host other
than the answer's sender is not taken: discover would otherwise send a password wherever
an answer pointed.
"""

from __future__ import annotations

import threading
import time
import xml.parsers.expat
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import wsdiscovery.threaded
from wsdiscovery import QName
from wsdiscovery.discovery import ThreadedWSDiscovery
from wsdiscovery.envelope import SoapEnvelope
from wsdiscovery.message import parseSOAPMessage

# ONVIF Core: a camera (or an NVR's camera channels) answers a Probe of this type.
NVT_TYPE = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")
# Seconds to listen for answers; cameras answer within APP_MAX_DELAY (0.5 s) of a Probe.
DISCOVERY_TIMEOUT_S = 3.0
# Answers kept from one probe: more than a shop or home has cameras, and few enough that a
# flood of fake answers cannot make discover contact thousands of hosts.
MAX_DEVICES = 64
# ONVIF scopes a camera announces itself with; shown before anything is read from it.
_NAME_SCOPE = "onvif://www.onvif.org/name/"
_HARDWARE_SCOPE = "onvif://www.onvif.org/hardware/"


class _Doctype(Exception):
    """The datagram declares a document type."""


def _refuse_doctype(*_: object) -> None:
    raise _Doctype


def _declares_doctype(data: bytes) -> bool:
    """Whether `data` has a document type declaration, found by expat before it reads the
    declaration's entities (the handler fires at `<!DOCTYPE`, so nothing is expanded)."""
    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
    try:
        parser.Parse(data, True)
    except _Doctype:
        return True
    except xml.parsers.expat.ExpatError:
        return False  # not XML: the library's own parse drops it as quickly
    return False


def _without_doctype(data: bytes, address: str) -> SoapEnvelope | None:
    """The library's parse of a received datagram, for datagrams without a document type
    declaration only (the module's docstring says why)."""
    if _declares_doctype(data):
        return None
    envelope: SoapEnvelope | None = parseSOAPMessage(data, address)
    return envelope


# Process-wide, as the library's receive loop calls this module-level name: the agent is
# its only user, and a responder in the same process is no worse off for it either.
wsdiscovery.threaded.parseSOAPMessage = _without_doctype


@dataclass(frozen=True)
class Announcement:
    """One device's ProbeMatch: who sent it, where it says its device service is, its scopes."""

    address: str
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...]

    def device_url(self) -> str | None:
        """The first http(s) XAddr on the sender's own host, or None."""
        for xaddr in self.xaddrs:
            try:
                parts = urlsplit(xaddr)
            except ValueError:
                continue
            if parts.scheme in ("http", "https") and parts.hostname == self.address:
                return xaddr
        return None

    def scope(self, prefix: str) -> str | None:
        from urllib.parse import unquote

        for scope in self.scopes:
            if scope.startswith(prefix):
                return unquote(scope[len(prefix) :])
        return None

    @property
    def name(self) -> str | None:
        return self.scope(_NAME_SCOPE)

    @property
    def hardware(self) -> str | None:
        return self.scope(_HARDWARE_SCOPE)


class _Listener(ThreadedWSDiscovery):  # type: ignore[misc]
    """The library's discovery, keeping each answer's sender (its Service does not)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, Announcement] = {}
        self._lock = threading.Lock()

    def _handle_probematches(self, env: Any, addr: tuple[str, int]) -> None:
        for match in env.getProbeResolveMatches():
            with self._lock:
                if len(self.found) >= MAX_DEVICES:
                    return
                key = f"{addr[0]} {match.getEPR()}"
                self.found.setdefault(
                    key,
                    Announcement(
                        address=addr[0],
                        xaddrs=tuple(str(x) for x in (match.getXAddrs() or ()))[:8],
                        scopes=tuple(str(s) for s in (match.getScopes() or ()))[:32],
                    ),
                )


def discover(timeout: float = DISCOVERY_TIMEOUT_S) -> list[Announcement]:
    """Every device that answered a Probe within `timeout` seconds, by sender address."""
    listener = _Listener()
    listener.start()
    try:
        listener._sendProbe([NVT_TYPE], None)
        time.sleep(timeout)
        with listener._lock:
            found = list(listener.found.values())
    finally:
        listener.stop()
    return sorted(found, key=lambda a: (_sort_key(a.address), a.xaddrs))


def _sort_key(address: str) -> tuple[int, ...] | tuple[str]:
    try:
        return tuple(int(part) for part in address.split("."))
    except ValueError:
        return (address,)
