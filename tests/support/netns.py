"""Two test hosts on one wire: a pair of network namespaces joined by a veth pair, for what
needs a real LAN (WS-Discovery's multicast, which the library does not send on loopback).

Nothing in them reaches the machine's own network: each namespace has only its loopback and
its end of the veth. The addresses are private to the pair, so tests running at once (xdist)
each have their own pair with the same addresses. Needs root and iproute2 (`ip`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass

import pytest

# The pair's subnet: any private one will do, since nothing outside the pair sees it.
DEVICE_ADDRESS = "10.213.0.1"
CLIENT_ADDRESS = "10.213.0.2"
PREFIX_LENGTH = 24


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class HostPair:
    """`device` and `client`: namespace names; run a command in one with `command(ns, ...)`."""

    device: str
    client: str

    @classmethod
    def create(cls) -> HostPair:
        if shutil.which("ip") is None or os.geteuid() != 0:
            pytest.fail("network namespaces need root and iproute2 ('ip')", pytrace=False)
        tag = uuid.uuid4().hex[:8]
        pair = cls(f"camtest-{tag}-d", f"camtest-{tag}-c")
        dev_link, client_link = f"cd{tag}", f"cc{tag}"  # interface names: 15 characters at most
        _ip("netns", "add", pair.device)
        try:
            _ip("netns", "add", pair.client)
            _ip("link", "add", dev_link, "type", "veth", "peer", "name", client_link)
            for ns, link, address in (
                (pair.device, dev_link, DEVICE_ADDRESS),
                (pair.client, client_link, CLIENT_ADDRESS),
            ):
                _ip("link", "set", link, "netns", ns)
                _ip("-n", ns, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", link)
                _ip("-n", ns, "link", "set", link, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except Exception:
            pair.close()
            raise
        return pair

    def command(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def close(self) -> None:
        # Deleting a namespace deletes its end of the veth, and so the pair.
        for ns in (self.device, self.client):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
