"""The audit chain's format and its hash: what one entry is, and the rule anyone can recompute.

An entry is one JSON line of seven fields (FIELDS). Each names the hash of the one before it
(`prev`; GENESIS for the first), so an edited, removed, inserted or reordered entry breaks
the chain at that line. Its own hash is SHA-256 over the canonical JSON of the entry without
`hash` (keys sorted at every level, no whitespace, UTF-8, non-ASCII as is): anyone can
recompute it with any JSON library. Numbers are integers only, because float text differs
between languages.

Part of the contract: the agent writes the chain (agent/audit/), the registry checks every
entry it receives with `entry_hash`. This module therefore knows nothing of the writer, the
event vocabulary or the agent, and imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64  # `prev` of the first entry

FIELDS = ("seq", "ts", "event", "request_id", "detail", "prev", "hash")
EVENT_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def canonical(value: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(
    seq: int, ts: str, event: str, request_id: str | None, detail: Mapping[str, Any], prev: str
) -> str:
    """An entry's hash: SHA-256, in hex, of the canonical JSON of its other six fields."""
    body = {
        "seq": seq,
        "ts": ts,
        "event": event,
        "request_id": request_id,
        "detail": detail,
        "prev": prev,
    }
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One line of the log. `detail` is plain JSON (dicts, lists, str, int, bool, None)."""

    seq: int
    ts: str
    event: str
    request_id: str | None
    detail: Mapping[str, Any]
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def line(self) -> bytes:
        """The exact bytes of its line, without the newline; also the MQTT payload.

        Fields in schema order (seq first, for people reading the file), `detail` with
        sorted keys; the hash does not depend on this order."""
        ordered = self.as_dict()
        ordered["detail"] = json.loads(canonical(self.detail))
        return json.dumps(
            ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    def computed_hash(self) -> str:
        return entry_hash(self.seq, self.ts, self.event, self.request_id, self.detail, self.prev)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.ts.replace("Z", "+00:00"))


def make_entry(
    seq: int, ts: str, event: str, request_id: str | None, detail: Mapping[str, Any], prev: str
) -> AuditEntry:
    """The entry of these fields, with its hash."""
    digest = entry_hash(seq, ts, event, request_id, detail, prev)
    return AuditEntry(seq, ts, event, request_id, detail, prev, digest)
