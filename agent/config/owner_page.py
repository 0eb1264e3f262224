"""The `owner_page:` section: where the owner's local web page listens and whom it answers."""

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, Field

from contract.config.fields import ConfigSection

# The private and link-local ranges of home and shop networks, and this machine itself.
LOCAL_NETWORKS = (
    "192.168.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "127.0.0.0/8",
    "::1/128",
    "fe80::/10",
    "fd00::/8",
)


def _check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an address or network (like 192.168.1.0/24)") from None
    return value.strip()


# Dot-separated labels of letters, digits and inner hyphens (RFC 1123), at most 253 long.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


def _check_host_name(value: str) -> str:
    name = value.strip().lower()
    if not _HOST_NAME.fullmatch(name):
        raise ValueError(f"{value!r} is not a host name (like camera.home.arpa)")
    return name


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: want ADDRESS:PORT, like 0.0.0.0:8081 or [::]:8081")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{value!r}: put an IPv6 address in brackets, like [::]:8081")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r}: the address must be an IP address, not a name") from None
    return host, int(port)


def _check_listen(value: str) -> str:
    _split_listen(value)
    return value


class OwnerPageConfig(ConfigSection):
    """The owner's local web page (docs/owner-page.md): off unless enabled."""

    enabled: bool = False
    listen: Annotated[str, AfterValidator(_check_listen)] = "0.0.0.0:8081"
    # Peers outside these networks get 403 (and a log line) whatever they send.
    allow: list[Annotated[str, AfterValidator(_check_network)]] = Field(
        default_factory=lambda: list(LOCAL_NETWORKS), min_length=1
    )
    # Names the page answers to besides localhost and this machine's own host name (and
    # .local); any other name in a request's Host gets 400 (DNS rebinding). IP addresses
    # always work.
    allowed_hosts: list[Annotated[str, AfterValidator(_check_host_name)]] = Field(
        default_factory=list
    )

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen)[1]
