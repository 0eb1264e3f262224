"""The owner's wording of the audit log: what each entry says, in plain words.

`describe` is the sentence `camera-agent audit show` and `camera-agent requests show`
print for an entry, and the owner page's for English readers, in English or the owner's
language: the word maps here are the catalogue's msgids (agent/locale). Times are shown
in the device's time zone; an event this module does not know is shown as its name and
detail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from contract.audit_chain import AuditEntry

if TYPE_CHECKING:
    from agent.i18n import Translator

REJECTION_WORDS: Mapping[str, str] = {
    "malformed": "the token is not a well-formed signed request",
    "too_large": "the token is larger than any real request",
    "bad_algorithm": "the token is not signed with Ed25519 (EdDSA)",
    "bad_type": "the token is not marked as a camera footage request",
    "unknown_key": "the token is not signed with a police key pinned in the config",
    "bad_signature": "the token's signature does not verify",
    "claims_invalid": "a required part of the request is missing or of the wrong kind",
    "wrong_audience": "the request is addressed to another agent",
    "expired": "the request has expired",
    "not_yet_valid": "the request is dated in the future",
    "replayed": "this request was received before (a replay)",
    "unknown_camera": "it names a camera that is not configured here",
    "window_invalid": "its time window is invalid, in the future, or before any footage",
    "window_too_long": "its time window is longer than police.max_window allows",
    "upload_not_allowed": "its upload address is not in police.upload_allow",
    "revoked_key": "the police revoked the key that signed it (police key set)",
    "unknown_request": "it withdraws a request this agent never accepted",
    "request_finished": "it withdraws a request that had already ended",
}
DECLINE_WORDS: Mapping[str, str] = {
    "owner_declined": "you declined it",
    "owner_timeout": "nobody approved it within police.owner_timeout",
}
FAILURE_WORDS: Mapping[str, str] = {
    "footage_missing": "footage of the window is missing",
    "footage_altered": "a recorded file no longer matches the hash taken when it was written; "
    "nothing altered was sent",
    "upload_failed": "the upload to the evidence store failed",
    "device_key_unusable": "the device key that signs evidence is missing or unusable; "
    "the agent needs re-enrolment",
}


def _local(ts: object) -> str:
    if not isinstance(ts, str):
        return str(ts)
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _size(count: object, _: Translator) -> str:
    if not isinstance(count, int):
        return _("? bytes")
    if count < 1_000_000:
        return _.ngettext("{count} byte", "{count} bytes", count).format(count=count)
    return _("{megabytes} MB").format(megabytes=f"{count / 1e6:.1f}")


def _because(words: Mapping[str, str], reason: object, _: Translator) -> str:
    said = words.get(str(reason))
    return f"{_(said)} ({reason})" if said else str(reason)


def describe(entry: AuditEntry, translate: Translator | None = None) -> str:
    """What an entry says, in words for the owner: English, or the language of `translate`
    (the word maps above are the catalogue's msgids)."""
    from agent.i18n import translator

    _ = translate if translate is not None else translator("en")
    d = entry.detail
    match entry.event:
        case "received":
            kind = d.get("kind")
            if kind == "order":
                said = [_("received a police order")]
            elif kind == "preserve":
                said = [_("received a police preservation (keep the footage, send nothing)")]
            elif kind == "voluntary":
                said = [_("received a voluntary request")]
            else:
                said = [_("received a request")]
            cameras = d.get("cameras")
            if isinstance(cameras, list) and cameras:
                said.append(
                    _("for camera {cameras}").format(cameras=", ".join(str(c) for c in cameras))
                )
            window = d.get("window")
            if isinstance(window, dict) and "start" in window and "end" in window:
                said.append(
                    _("from {start} to {end}").format(
                        start=_local(window["start"]), end=_local(window["end"])
                    )
                )
            if d.get("case"):
                said.append(_("(case {case})").format(case=d["case"]))
            return " ".join(said)
        case "rejected":
            return _("rejected — {reason}").format(
                reason=_because(REJECTION_WORDS, d.get("reason"), _)
            )
        case "waiting_clock":
            return _("waiting until the system clock is synchronised before checking it")
        case "awaiting_owner":
            return _("waiting for you to approve or decline it (camera-agent requests)")
        case "approved":
            if d.get("by") == "policy":
                return _("approved automatically by your policy (police.consent)")
            return _("approved by you")
        case "declined":
            return _("declined — {reason}").format(
                reason=_because(DECLINE_WORDS, d.get("reason"), _)
            )
        case "held":
            return _("its footage is on hold: pruning will not delete it")
        case "exported":
            files = d.get("files")
            count = files if isinstance(files, int) else 0
            return _.ngettext(
                "exported {files} file, {size}, checked against the hash taken when it was "
                "recorded",
                "exported {files} files, {size}, each checked against the hash taken when it "
                "was recorded",
                count,
            ).format(files=files, size=_size(d.get("bytes"), _))
        case "file_uploaded":
            digest = str(d.get("sha256", ""))
            return _("uploaded {name} ({size}, sha256 {digest}…)").format(
                name=d.get("name"), size=_size(d.get("bytes"), _), digest=digest[:16]
            )
        case "completed":
            return _("completed: the footage and its signed manifest were delivered")
        case "failed":
            return _("failed — {reason}").format(reason=_because(FAILURE_WORDS, d.get("reason"), _))
        case "preserved":
            return _("its footage is kept for the police until {until}; nothing is sent").format(
                until=_local(d.get("until"))
            )
        case "lapsed":
            return _("the preservation lapsed: its footage is no longer held")
        case "withdrawn":
            withdrawn = _(
                "withdrawn by the police ({issuer}, withdrawal {withdrawal}): nothing more is "
                "sent and its footage is no longer on hold"
            ).format(issuer=d.get("issuer"), withdrawal=d.get("withdrawal"))
            note = d.get("note")
            return withdrawn + (f" — {note}" if isinstance(note, str) and note else "")
        case "rejections_summarised":
            counted = d.get("count")
            reasons = d.get("reasons")
            said_reasons = (
                ", ".join(f"{reason} {n}" for reason, n in reasons.items())
                if isinstance(reasons, dict)
                else "?"
            )
            return _.ngettext(
                "{count} more rejected token from {start} to {end}, counted, not answered one "
                "by one (a flood?): {reasons}",
                "{count} more rejected tokens from {start} to {end}, counted, not answered one "
                "by one (a flood?): {reasons}",
                counted if isinstance(counted, int) else 0,
            ).format(
                count=counted,
                start=_local(d.get("from")),
                end=_local(d.get("to")),
                reasons=said_reasons,
            )
        case "clock_stepped":
            step_ms = d.get("step_ms")
            seconds = step_ms / 1000 if isinstance(step_ms, int) else 0.0
            return _(
                "the system clock was stepped by {seconds} s, from {start} to {end}: footage "
                "times jump there"
            ).format(
                seconds=f"{seconds:+.3f}", start=_local(d.get("from")), end=_local(d.get("to"))
            )
        case "state_file_reset":
            if d.get("kept_as") is None:
                return _(
                    "state file {file} was missing ({error}); the agent started a new one"
                ).format(file=d.get("file"), error=d.get("error"))
            return _(
                "state file {file} was broken ({error}); kept as {kept_as}, and the agent "
                "started a new one"
            ).format(file=d.get("file"), error=d.get("error"), kept_as=d.get("kept_as"))
        case "problem_acceptance":
            if d.get("accepted") is True:
                change = _("camera {camera}: you accepted {problem} as normal for this camera")
            else:
                change = _("camera {camera}: {problem} is no longer accepted as normal")
            return change.format(camera=d.get("camera"), problem=d.get("problem"))
        case "keyset_accepted":
            keys, revoked = d.get("keys"), d.get("revoked")
            return _(
                "police key set version {version} accepted (signed by root key {root}…, "
                "valid until {expires}): {keys} request key(s) trusted, {revoked} revoked"
            ).format(
                version=d.get("version"),
                root=str(d.get("root_kid", ""))[:12],
                expires=_local(d.get("expires")),
                keys=len(keys) if isinstance(keys, list) else "?",
                revoked=len(revoked) if isinstance(revoked, list) else "?",
            )
        case "torn_tail":
            first, last = d.get("from_line"), d.get("to_line")
            if first == last:
                lines = _("line {first}").format(first=first)
            else:
                lines = _("lines {first}-{last}").format(first=first, last=last)
            return _(
                "audit log: {lines} ({bytes} bytes) had been cut off while being written "
                "(the agent stopped?); kept as found, and the chain goes on"
            ).format(lines=lines, bytes=d.get("bytes"))
        case _:
            extra = json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)
            return entry.event + ("" if extra == "{}" else f" {extra}")
