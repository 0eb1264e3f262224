"""A host that answers WS-Discovery probes as an attacker would, for the discover tests: it
joins the multicast group on its namespace's network and answers each Probe with every kind
of bad reply at once: an XAddr on another host (to lure the password elsewhere), a
datagram of entity expansion, one of garbage, and a flood of distinct devices. These
replies are hand-written on purpose: they are what no schema would let through.

Run it inside a test network namespace: `python -m tests.support.hostile_discovery ADDRESS`.
"""

from __future__ import annotations

import re
import socket
import struct
import sys
import uuid

GROUP = "239.255.255.250"
PORT = 3702
FLOOD = 200  # distinct devices announced: past discover's MAX_DEVICES

_MATCH = """<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<soap:Header>
<wsa:MessageID>urn:uuid:{message}</wsa:MessageID>
<wsa:RelatesTo>{relates}</wsa:RelatesTo>
<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
<d:AppSequence InstanceId="1" MessageNumber="1"/>
</soap:Header>
<soap:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:{epr}</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter</d:Types>
<d:Scopes>onvif://www.onvif.org/name/{name}</d:Scopes>
<d:XAddrs>{xaddr}</d:XAddrs>
<d:MetadataVersion>1</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches></soap:Body></soap:Envelope>"""

_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + ']><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">'
    "<soap:Body>&j;</soap:Body></soap:Envelope>"
)


def replies(relates: str, address: str) -> list[bytes]:
    def match(name: str, xaddr: str) -> bytes:
        return _MATCH.format(
            message=uuid.uuid4(), relates=relates, epr=uuid.uuid4(), name=name, xaddr=xaddr
        ).encode()

    out = [
        match("Lure", "http://192.0.2.66/onvif/device_service"),
        _LAUGHS.encode(),
        b"\x00\xff<not xml" * 100,
    ]
    out += [match(f"Flood{i}", f"http://{address}:9/onvif/device_service") for i in range(FLOOD)]
    return out


def main(address: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", PORT))
    membership = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    print("ready", flush=True)
    while True:
        data, sender = sock.recvfrom(65535)
        found = re.search(rb"MessageID>([^<]+)<", data)
        if b"Probe<" not in data.replace(b"Probe </", b"Probe<") and b":Probe>" not in data:
            continue
        if found is None:
            continue
        for reply in replies(found.group(1).decode(), address):
            sock.sendto(reply, sender)


if __name__ == "__main__":
    main(sys.argv[1])
