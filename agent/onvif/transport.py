"""The HTTP side of talking to an ONVIF device, bounded: a device on the owner's LAN (or a
host pretending to be one) may answer with anything, so a reply larger than
MAX_REPLY_BYTES is cut off before it is read whole, and zeep's XML parser keeps libxml2's
limits on depth and text size.

onvif-zeep-async reads every reply into memory (`response.read()`) and turns libxml2's
limits off (`xml_huge_tree = True` in its shared settings, for some vendors' large event
messages). The agent reads only small replies (device information, profiles, a stream
URI), so it puts both back.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import onvif.settings
from onvif.client import AsyncTransportProtocolErrorHandler

# The largest reply the agent reads: a camera's GetProfiles with a dozen profiles is about
# 30 kB; a megabyte leaves room for verbose firmware and stops a flood early.
MAX_REPLY_BYTES = 1024 * 1024

# Process-wide, as the library shares one Settings object: keep libxml2's limits (depth,
# node size) on for every ONVIF reply this process parses. Entities are never resolved
# (zeep's forbid_entities and resolve_entities=False); see tests/test_onvif_hostile.py.
onvif.settings.DEFAULT_SETTINGS.xml_huge_tree = False


class ReplyTooLarge(Exception):
    """The device's reply passed MAX_REPLY_BYTES."""


class CappedTransport(AsyncTransportProtocolErrorHandler):  # type: ignore[misc]
    """The library's transport, reading at most MAX_REPLY_BYTES of a reply."""

    async def _post_internal(
        self, address: str, message: str | bytes, headers: dict[str, str]
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        headers = dict(headers or {})
        headers.setdefault("Content-Type", 'application/soap+xml; charset="utf-8"')
        data = message.encode("utf-8") if isinstance(message, str) else message
        response = await self.session.post(
            address, data=data, headers=headers, timeout=self._client_timeout
        )
        content = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            content += chunk
            if len(content) > MAX_REPLY_BYTES:
                response.close()
                raise ReplyTooLarge(f"its reply passed {MAX_REPLY_BYTES // 1024} kB")
        return response, bytes(content)


def capped(service: Any) -> Any:
    """`service` (an onvif.client.ONVIFService, not yet set up) with the capped transport."""
    service.transport = CappedTransport(session=service._session, verify_ssl=False, cache=None)
    return service
