"""Times as RFC 3339 text: UTC, to the millisecond, ending in Z (`2026-11-27T12:00:00.000Z`).

Part of the contract: the agent writes its health reports, evidence manifests and request
statuses with it, and the registry reads them back."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
