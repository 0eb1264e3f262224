"""The audit log: every event of every footage request, as hash-chained JSON lines.

`<data_dir>/audit.jsonl`, one entry a line, only ever appended to; each entry names the
hash of the one before it, so an edited, removed, inserted or reordered entry breaks the
chain at that line, and `AuditLog.verify` names it. docs/audit.md explains it for owners
and police. One module a job:

- contract/audit_chain.py (the shared contract): the chain's format and its hash
  (canonical JSON, `entry_hash`), which the registry uses too; no writer.
- writer.py: `AuditLog`, appending (O_APPEND, fsync, flock) and recording a torn tail.
- verifier.py: reading the log back and verifying every line and link.
- events.py: the events' vocabulary and the checks of their detail fields.
- wording.py: `describe`, an entry in words for the owner.

The names other code uses are imported from here, as before the split.
"""

from agent.audit.events import (
    CLOCK_STEPPED,
    EVENTS,
    KEYSET_ACCEPTED,
    PROBLEM_ACCEPTANCE,
    REJECTIONS_SUMMARISED,
    REQUEST_EVENTS,
    STATE_FILE_RESET,
    TORN_TAIL,
    clock_step_detail,
)
from agent.audit.verifier import AuditError, Break, RecordedTear, VerificationResult
from agent.audit.wording import describe
from agent.audit.writer import AUDIT_FILE, AuditLog, AuditTrail, TornTail
from contract.audit_chain import (
    GENESIS,
    REQUEST_ID_RE,
    AuditEntry,
    canonical,
    entry_hash,
)

__all__ = [
    "AUDIT_FILE",
    "CLOCK_STEPPED",
    "EVENTS",
    "GENESIS",
    "KEYSET_ACCEPTED",
    "PROBLEM_ACCEPTANCE",
    "REJECTIONS_SUMMARISED",
    "REQUEST_EVENTS",
    "REQUEST_ID_RE",
    "STATE_FILE_RESET",
    "TORN_TAIL",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditTrail",
    "Break",
    "RecordedTear",
    "TornTail",
    "VerificationResult",
    "canonical",
    "clock_step_detail",
    "describe",
    "entry_hash",
]
