"""What the page says about cameras, requests and audit entries, in plain words.

English source strings, marked with `N_` here and translated when a page is rendered
(`_(...)`), so the catalogue (agent/locale) holds every one of them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from agent.audit import AuditEntry, describe
from agent.i18n import Translator
from contract.request_states import RequestState


def N_(message: str) -> str:
    """Marks a string for the catalogue without translating it yet."""
    return message


# Each problem code (DESIGN.md vocabulary): what it means, and what the owner can do.
PROBLEMS: Mapping[str, tuple[str, str]] = {
    "no_signal": (
        N_("No picture arrives from the camera."),
        N_(
            "Check that the camera has power and its network cable or Wi-Fi works, "
            "and that its address and password in the config are right."
        ),
    ),
    "frozen": (
        N_("The picture is frozen: it does not change at all."),
        N_("Restart the camera (unplug it for ten seconds)."),
    ),
    "blurred": (
        N_("The picture is blurred."),
        N_("Clean the lens and check the focus; look for condensation, dirt or a spider web."),
    ),
    "too_dark": (
        N_("The picture is too dark."),
        N_("Add light, or switch on the camera's infrared (night) mode."),
    ),
    "too_bright": (
        N_("The picture is too bright (overexposed)."),
        N_("Point the camera away from the sun or a lamp, or lower its exposure."),
    ),
    "low_contrast": (
        N_("The picture has hardly any contrast (fog, glare or a dirty lens)."),
        N_("Clean the lens and the window in front of it; check for glare."),
    ),
    "covered": (
        N_("Something blocks the lens."),
        N_("Check the camera: remove what covers it (tape, a bag, leaves, a plant)."),
    ),
    "colour_cast": (
        N_("The colours are off (a strong colour cast)."),
        N_("Check the camera's white balance, or whether its infrared filter is stuck."),
    ),
    "noisy": (
        N_("The picture is very noisy (grainy)."),
        N_("Add light, or check the camera's gain and night settings."),
    ),
    "scene_changed": (
        N_("The camera looks at something else than before: it was moved or turned."),
        N_(
            "Point it back. If the new view is the right one, accept it with: "
            "camera-agent reference reset CAMERA"
        ),
    ),
    "low_fps": (
        N_("The camera sends fewer pictures per second than expected."),
        N_("Raise the frame rate in the camera's settings, or check the network."),
    ),
    "low_resolution": (
        N_("The picture has a lower resolution than expected."),
        N_("Choose the camera's main (high resolution) stream in its URL or settings."),
    ),
    "storage_low": (
        N_("The disk is almost full: the oldest footage is deleted early."),
        N_("Free space on the disk, use a bigger one, or lower storage.max_bytes."),
    ),
    "recording_stopped": (
        N_("Recording has stopped although the camera sends pictures."),
        N_("Check the recorder or the disk; restart the agent if it stays so."),
    ),
    "storage_failed": (
        N_("The disk is full even after deleting old footage: nothing is recorded."),
        N_(
            "Free space on the disk (other files, or footage held for a request fill it). "
            "Recording resumes by itself as soon as there is room."
        ),
    ),
    "clock_unsynced": (
        N_("The device's clock is not synchronised: footage times may be wrong."),
        N_("Check the internet connection and the time service (timedatectl)."),
    ),
    "clock_drift": (
        N_(
            "The camera's own clock is wrong (further off this device's than "
            "clock.camera_drift_limit): the time in its picture disagrees with the footage's."
        ),
        N_(
            "In the camera's settings, let it take its time from a time server (NTP), "
            "for example pool.ntp.org or your router."
        ),
    ),
}

STATUSES: Mapping[str, str] = {
    "ok": N_("working"),
    "degraded": N_("working, with a problem"),
    "failed": N_("no usable picture"),
    "offline": N_("offline"),
    "starting": N_("starting"),
}

REQUEST_STATES: Mapping[str, str] = {
    RequestState.RECEIVED: N_("received"),
    RequestState.WAITING_CLOCK: N_("waiting for the clock"),
    RequestState.REJECTED: N_("rejected"),
    RequestState.AWAITING_OWNER: N_("waits for your decision"),
    RequestState.DECLINED: N_("declined"),
    RequestState.APPROVED: N_("approved"),
    RequestState.EXPORTING: N_("exporting"),
    RequestState.UPLOADING: N_("uploading"),
    RequestState.COMPLETED: N_("completed"),
    RequestState.FAILED: N_("failed"),
    RequestState.WITHDRAWN: N_("withdrawn by the police"),
    RequestState.PRESERVED: N_("footage kept, nothing sent"),
    RequestState.LAPSED: N_("preservation lapsed"),
}

KINDS: Mapping[str, str] = {
    "order": N_("police order"),
    "voluntary": N_("voluntary request"),
    "preserve": N_("preservation (footage kept, nothing sent)"),
}

REASONS: Mapping[str, str] = {
    "owner_declined": N_("you declined it"),
    "owner_timeout": N_("nobody decided in time"),
    "footage_missing": N_("footage of the window is missing"),
    "footage_altered": N_("a recorded file no longer matches its hash; nothing altered was sent"),
    "upload_failed": N_("the upload to the evidence store failed"),
    "revoked_key": N_("the police revoked the key that signed it"),
}

AUDIT_EVENTS: Mapping[str, str] = {
    "received": N_("Request received"),
    "rejected": N_("Request rejected"),
    "waiting_clock": N_("Waiting for a synchronised clock"),
    "awaiting_owner": N_("Waiting for your decision"),
    "approved": N_("Approved"),
    "declined": N_("Declined"),
    "held": N_("Footage put on hold"),
    "exported": N_("Footage exported"),
    "file_uploaded": N_("File uploaded"),
    "completed": N_("Completed"),
    "failed": N_("Failed"),
    "torn_tail": N_("Audit log: a cut-off line was found"),
    "problem_acceptance": N_("Accepted problems changed"),
    "keyset_accepted": N_("Police key set accepted"),
    "withdrawn": N_("Withdrawn by the police"),
    "preserved": N_("Footage kept for the police"),
    "lapsed": N_("Preservation lapsed"),
}

DORI_LEVELS: Mapping[str, str] = {
    "identify": N_("identify a person"),
    "recognise": N_("recognise a known person"),
    "observe": N_("observe what people do"),
    "detect": N_("detect that someone is there"),
}


def problem_words(code: str, _: Translator) -> tuple[str, str]:
    """(what is wrong, what to do) for a problem code; an unknown code as itself."""
    said = PROBLEMS.get(code)
    if said is None:
        return code, ""
    return _(said[0]), _(said[1])


def label(table: Mapping[str, str], code: str | None, _: Translator) -> str:
    if code is None:
        return ""
    said = table.get(code)
    return _(said) if said else code


def size(count: int) -> str:
    """Bytes as an owner reads them (units are the same in Dutch)."""
    if count >= 1_000_000_000:
        return f"{count / 1e9:.1f} GB"
    return f"{count / 1e6:.1f} MB"


def local_time(moment: datetime | None) -> str:
    """In the device's time zone, as the owner reads a clock."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def audit_title(entry: AuditEntry, _: Translator) -> str:
    """The entry's event as a short title in the owner's language."""
    title = label(AUDIT_EVENTS, entry.event, _)
    reason = entry.detail.get("reason")
    if isinstance(reason, str) and reason in REASONS:
        title += " — " + _(REASONS[reason])
    return title


FACTS: Mapping[str, str] = {
    "kind": N_("Kind"),
    "case": N_("Case"),
    "requester": N_("Requested by"),
    "basis": N_("Legal basis"),
    "by": N_("Decided by"),
    "files": N_("Files"),
    "bytes": N_("Size"),
    "name": N_("File"),
    "cameras": N_("Cameras"),
    "window": N_("Time window"),
    "camera": N_("Camera"),
    "problem": N_("Problem"),
}


def audit_details(entry: AuditEntry, locale: str, _: Translator) -> str:
    """The plain-words sentence of `agent.audit.describe` for English readers; for another
    language the entry's own facts (case, cameras, window, sizes) under translated names."""
    if locale == "en":
        return describe(entry)
    d = entry.detail
    facts: list[str] = []
    for key in ("kind", "case", "requester", "basis", "by", "files", "bytes", "name", "camera"):
        value = d.get(key)
        if value in (None, ""):
            continue
        if key == "kind":
            value = label(KINDS, str(value), _)
        elif key == "by":
            value = _("you") if value == "owner" else _("your policy (police.consent)")
        elif key == "bytes" and isinstance(value, int):
            value = size(value)
        facts.append(f"{_(FACTS[key])}: {value}")
    problem = d.get("problem")
    if isinstance(problem, str):
        accepted = d.get("accepted") is True
        facts.append(
            f"{_(FACTS['problem'])}: {problem_words(problem, _)[0]} "
            + (_("(accepted as normal)") if accepted else _("(no longer accepted)"))
        )
    cameras = d.get("cameras")
    if isinstance(cameras, list) and cameras:
        facts.append(f"{_(FACTS['cameras'])}: " + ", ".join(str(c) for c in cameras))
    window = d.get("window")
    if isinstance(window, dict):
        facts.append(
            f"{_(FACTS['window'])}: {window.get('start', '?')} to {window.get('end', '?')}"
        )
    return "; ".join(facts)
