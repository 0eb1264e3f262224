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

from agent.cli_common import with_config
from agent.errors import AgentError
from agent.police_requests.words import cannot_decide, state_words
from contract.exit_codes import EX_UNAVAILABLE, EX_USAGE
from contract.request_states import RequestState

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.i18n import Translator
    from agent.police_requests.store import RequestStore


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
    requests.set_defaults(func=with_config(run))


def run(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.i18n import translator
    from agent.police_requests.store import REQUESTS_FILE, RequestStore

    _ = translator(config.agent.locale)
    path = config.agent.data_dir / REQUESTS_FILE
    if args.action == "list" and not path.exists():
        print(_("no requests yet"))
        return 0
    try:
        store = RequestStore(path)
    except AgentError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    try:
        if args.action == "list":
            return _list(store, _)
        if args.action == "show":
            return _show(store, args.request, config, _)
        return _decide(store, args.request, args.action == "approve", config, _)
    finally:
        store.close()


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _kind(kind: str, _: Translator) -> str:
    if kind == "order":
        return _("order")
    if kind == "voluntary":
        return _("voluntary")
    return kind


def _list(store: RequestStore, _: Translator) -> int:
    requests = store.all()
    if not requests:
        print(_("no requests yet"))
        return 0
    for r in requests:
        said = _("{id}  {kind}  case {case}  {cameras}  {start} to {end}  {state}").format(
            id=r.id,
            kind=f"{_kind(r.kind, _):9}",
            case=r.case,
            cameras=", ".join(r.cameras),
            start=_local(r.start),
            end=_local(r.end),
            state=state_words(r.state, r.reason, _),
        )
        print(said)
    return 0


def _show(store: RequestStore, request_id: str, config: AgentConfig, _: Translator) -> int:
    from agent.audit import AUDIT_FILE, AuditLog, describe
    from agent.police_requests.store import UnknownRequest

    try:
        r = store.get(request_id)
    except UnknownRequest:
        print("camera-agent: " + _("no request '{id}'").format(id=request_id), file=sys.stderr)
        return EX_USAGE
    kind = _("a court order") if r.kind == "order" else _("asks for your help")
    # The labels are padded in each language so the values line up.
    lines = [
        _("request {id}: {state}").format(id=r.id, state=state_words(r.state, r.reason, _)),
        _("  kind        {kind} ({words})").format(kind=_kind(r.kind, _), words=kind),
        _("  case        {case}").format(case=r.case),
        _("  requester   {requester} ({issuer})").format(requester=r.requester, issuer=r.issuer),
        _("  legal basis {basis}").format(basis=r.basis),
        _("  cameras     {cameras}").format(cameras=", ".join(r.cameras)),
        _("  window      {start} to {end} (your local time)").format(
            start=_local(r.start), end=_local(r.end)
        ),
        _("  received    {received}").format(received=_local(r.received)),
    ]
    if r.owner_deadline and r.state == RequestState.AWAITING_OWNER:
        how = f"camera-agent requests approve|decline {r.id}"
        lines.append(
            _("  decide by   {deadline}: {how}").format(deadline=_local(r.owner_deadline), how=how)
        )
    if r.bytes_total:
        share = 100 * r.bytes_sent // max(r.bytes_total, 1)
        lines.append(
            _("  sent        {sent} of {total} MB ({share} %)").format(
                sent=f"{r.bytes_sent / 1e6:.1f}", total=f"{r.bytes_total / 1e6:.1f}", share=share
            )
        )
    print("\n".join(lines))
    audit_path = config.agent.data_dir / AUDIT_FILE
    if audit_path.exists():
        print(_("  history"))
        for entry in AuditLog(audit_path).entries(r.id):
            print(f"    {_local(entry.time)}  {describe(entry, _)}")
    return 0


def _decide(
    store: RequestStore, request_id: str, approve: bool, config: AgentConfig, _: Translator
) -> int:
    from agent.control import tell_daemon
    from agent.police_requests.store import UnknownRequest

    try:
        request = store.get(request_id)
    except UnknownRequest:
        print("camera-agent: " + _("no request '{id}'").format(id=request_id), file=sys.stderr)
        return EX_USAGE
    if request.state != RequestState.AWAITING_OWNER:
        print("camera-agent: " + cannot_decide(request_id, request.state, _), file=sys.stderr)
        return EX_USAGE
    command = "approve" if approve else "decline"
    return tell_daemon(
        config.agent.data_dir,
        {"command": command, "request": request_id},
        lambda: _decide_offline(store, request_id, approve, config, _),
    )


def _decide_offline(
    store: RequestStore, request_id: str, approve: bool, config: AgentConfig, _: Translator
) -> int:
    """No daemon: record the decision; the daemon exports (or not) when it starts."""
    from agent.audit import AUDIT_FILE, AuditLog
    from agent.police_requests.holds import hold_reason
    from agent.recording.index import SegmentIndex
    from agent.recording.storage import INDEX_FILE

    now = datetime.now(UTC)
    audit = AuditLog(config.agent.data_dir / AUDIT_FILE)
    if approve:
        store.update(request_id, now, state=RequestState.APPROVED)
        audit.append("approved", request_id, {"by": "owner"})
        said = _("request {id} approved; the agent sends its footage when it runs again")
        print(said.format(id=request_id))
        return 0
    store.update(request_id, now, state=RequestState.DECLINED, reason="owner_declined")
    audit.append("declined", request_id, {"reason": "owner_declined"})
    index = SegmentIndex(config.agent.data_dir / INDEX_FILE)
    for hold in index.holds(now):
        if hold.reason == hold_reason(request_id):
            index.release(hold.id)
    index.close_db()
    print(_("request {id} declined; nothing is sent").format(id=request_id))
    return 0
