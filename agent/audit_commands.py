"""`camera-agent audit show | verify`: the hash-chained log of every footage request, in
plain words or as JSON lines, and the check of its chain. Read-only, with or without a
running daemon."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.audit import AUDIT_FILE, AuditError, AuditLog, describe
from agent.cli_common import load, owner_translator
from contract.exit_codes import EX_IOERR

if TYPE_CHECKING:
    from agent.i18n import Translator


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    audit = commands.add_parser("audit", help="the hash-chained log of every footage request")
    audit_commands = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = audit_commands.add_parser("show", help="print the audit log in plain words")
    show.add_argument("--request", metavar="ID", help="only the entries of this request")
    show.add_argument("--json", action="store_true", help="print the entries as JSON lines")
    show.add_argument("--config", type=Path, default=config, metavar="PATH")
    verify = audit_commands.add_parser(
        "verify", help="check every entry and link of the chain; exit 1 on any break"
    )
    verify.add_argument(
        "--head",
        type=_sha256,
        metavar="HASH",
        help="the newest entry's hash as the registry holds it: the log must contain it",
    )
    verify.add_argument("--config", type=Path, default=config, metavar="PATH")
    audit.set_defaults(func=_audit)


def _sha256(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"not a SHA-256 hash (64 hex digits): {text!r}")
    return value


def _audit(args: argparse.Namespace) -> int:
    """`audit show` and `audit verify`: read-only, with or without a running daemon."""
    config = load(args.config)
    if isinstance(config, int):
        return config
    path = config.agent.data_dir / AUDIT_FILE
    try:
        audit = AuditLog(path)
        if args.action == "verify":
            return _audit_verify(audit, args.head, owner_translator(config))
        return _audit_show(audit, args.request, args.json, owner_translator(config))
    except AuditError as exc:
        hint = ""
        if isinstance(exc.__cause__, PermissionError):
            _ = owner_translator(config)
            hint = " " + _("(it belongs to the agent's service user: run this with sudo)")
        print(f"camera-agent: {exc}{hint}", file=sys.stderr)
        return EX_IOERR


def _audit_verify(audit: AuditLog, head: str | None, _: Translator) -> int:
    if not audit.path.exists() and head is None:
        print(_("no audit entries yet ({path} does not exist)").format(path=audit.path))
        return 0
    result = audit.verify(expected_head=head)
    for tear in result.recorded_tears:
        print(f"note: {tear}")
    if result.intact:
        if result.head is None:
            print(_("no audit entries yet ({path} is empty)").format(path=audit.path))
        else:
            said = _.ngettext(
                "audit log intact: {count} entry, head {head}",
                "audit log intact: {count} entries, head {head}",
                result.entries,
            )
            print(said.format(count=result.entries, head=result.head))
        return 0
    count = len(result.breaks)
    said = _.ngettext(
        "audit log BROKEN: {count} problem in {path}",
        "audit log BROKEN: {count} problems in {path}",
        count,
    )
    print(said.format(count=count, path=audit.path))
    # The problems name lines, hashes and fields: kept as they are, for whoever checks.
    for problem in result.breaks:
        print(f"  {problem}")
    if result.head is not None:
        print(_("last entry: {seq}, hash {head}").format(seq=result.head_seq, head=result.head))
    return 1


def _audit_show(audit: AuditLog, request: str | None, as_json: bool, _: Translator) -> int:
    if not audit.path.exists():
        print(_("no audit entries yet"))
        return 0
    entries = audit.entries(request)
    if not entries:
        if request is None:
            print(_("no audit entries yet"))
        else:
            print(_("no audit entries for {request}").format(request=request))
    for entry in entries:
        if as_json:
            print(entry.line().decode("utf-8"))
            continue
        when = entry.time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        who = ""
        if entry.request_id:
            who = _("request {request}: ").format(request=entry.request_id)
        print(f"{when}  #{entry.seq}  {who}{describe(entry, _)}")
    result = audit.verify()
    if result.intact:
        return 0
    said = _("the audit log is broken, do not trust what it shows (camera-agent audit verify):")
    print("camera-agent: " + said, file=sys.stderr)
    for problem in result.breaks:
        print(f"  {problem}", file=sys.stderr)
    return 1
