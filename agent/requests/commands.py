"""`camera-agent requests list | show ID | approve ID | decline ID`: the owner's side.

Decisions go to the running daemon over its control socket; with no daemon running
they are written to the request store and the audit log directly, and the daemon acts
on them when it starts.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.requests.store import RequestStore

EX_USAGE = 64
EX_UNAVAILABLE = 69

_WORDS = {
    "received": "received, being checked",
    "waiting_clock": "waiting for the system clock to be synchronised",
    "rejected": "rejected",
    "awaiting_owner": "waiting for your decision",
    "declined": "declined",
    "approved": "approved",
    "exporting": "copying the footage",
    "uploading": "sending the footage",
    "completed": "completed: the footage was delivered",
    "failed": "failed",
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    requests = commands.add_parser("requests", help="police requests for footage")
    actions = requests.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every request with its state")
    listing.add_argument("--config", type=Path, default=config, metavar="PATH")
    for name, text in (
        ("show", "one request in full"),
        ("approve", "let a waiting voluntary request have its footage"),
        ("decline", "refuse a waiting request; its footage is not sent"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("request", metavar="ID")
        action.add_argument("--config", type=Path, default=config, metavar="PATH")


def run(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.requests.store import REQUESTS_FILE, RequestStore

    path = config.agent.data_dir / REQUESTS_FILE
    if args.action == "list" and not path.exists():
        print("no requests yet")
        return 0
    try:
        store = RequestStore(path)
    except AgentError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    try:
        if args.action == "list":
            return _list(store)
        if args.action == "show":
            return _show(store, args.request, config)
        return _decide(store, args.request, args.action == "approve", config)
    finally:
        store.close()


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _list(store: RequestStore) -> int:
    requests = store.all()
    if not requests:
        print("no requests yet")
        return 0
    for r in requests:
        print(
            f"{r.id}  {r.kind:9}  case {r.case}  {', '.join(r.cameras)}  "
            f"{_local(r.start)} to {_local(r.end)}  {_WORDS.get(r.state, r.state)}"
            + (f" ({r.reason})" if r.reason else "")
        )
    return 0


def _show(store: RequestStore, request_id: str, config: AgentConfig) -> int:
    from agent.audit import AUDIT_FILE, AuditLog, describe
    from agent.requests.store import RequestStoreError

    try:
        r = store.get(request_id)
    except RequestStoreError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_USAGE
    kind = "a court order" if r.kind == "order" else "asks for your help"
    lines = [
        f"request {r.id}: {_WORDS.get(r.state, r.state)}" + (f" ({r.reason})" if r.reason else ""),
        f"  kind        {r.kind} ({kind})",
        f"  case        {r.case}",
        f"  requester   {r.requester} ({r.issuer})",
        f"  legal basis {r.basis}",
        f"  cameras     {', '.join(r.cameras)}",
        f"  window      {_local(r.start)} to {_local(r.end)} (your local time)",
        f"  received    {_local(r.received)}",
    ]
    if r.owner_deadline and r.state == "awaiting_owner":
        how = f"camera-agent requests approve|decline {r.id}"
        lines.append(f"  decide by   {_local(r.owner_deadline)}: {how}")
    if r.bytes_total:
        share = 100 * r.bytes_sent // max(r.bytes_total, 1)
        lines.append(
            f"  sent        {r.bytes_sent / 1e6:.1f} of {r.bytes_total / 1e6:.1f} MB ({share} %)"
        )
    print("\n".join(lines))
    audit_path = config.agent.data_dir / AUDIT_FILE
    if audit_path.exists():
        print("  history")
        for entry in AuditLog(audit_path).entries(r.id):
            print(f"    {_local(entry.time)}  {describe(entry)}")
    return 0


def _decide(store: RequestStore, request_id: str, approve: bool, config: AgentConfig) -> int:
    from agent.control import tell_daemon
    from agent.requests.store import RequestStoreError

    try:
        request = store.get(request_id)
    except RequestStoreError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_USAGE
    if request.state != "awaiting_owner":
        print(
            f"camera-agent: request {request_id} is {_WORDS.get(request.state, request.state)};"
            " only a request waiting for your decision can be approved or declined",
            file=sys.stderr,
        )
        return EX_USAGE
    command = "approve" if approve else "decline"
    return tell_daemon(
        config.agent.data_dir,
        {"command": command, "request": request_id},
        lambda: _decide_offline(store, request_id, approve, config),
    )


def _decide_offline(
    store: RequestStore, request_id: str, approve: bool, config: AgentConfig
) -> int:
    """No daemon: record the decision; the daemon exports (or not) when it starts."""
    from agent.audit import AUDIT_FILE, AuditLog
    from agent.recording.index import SegmentIndex
    from agent.recording.storage import INDEX_FILE

    now = datetime.now(UTC)
    audit = AuditLog(config.agent.data_dir / AUDIT_FILE)
    if approve:
        store.update(request_id, now, state="approved")
        audit.append("approved", request_id, {"by": "owner"})
        print(f"request {request_id} approved; the agent sends its footage when it runs again")
        return 0
    store.update(request_id, now, state="declined", reason="owner_declined")
    audit.append("declined", request_id, {"reason": "owner_declined"})
    index = SegmentIndex(config.agent.data_dir / INDEX_FILE)
    for hold in index.holds(now):
        if hold.reason == f"request {request_id}":
            index.release(hold.id)
    index.close_db()
    print(f"request {request_id} declined; nothing is sent")
    return 0
