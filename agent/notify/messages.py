"""Events in the owner's words and language: a title and a plain-text body per message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from agent.i18n import Translator
from agent.notify.config import EventKind
from agent.notify.events import Event, RequestFacts
from agent.notify.limiter import Outgoing
from contract.request_states import RequestState
from contract.timestamps import rfc3339

SCHEMA = "camreg.notification.v1"


def N_(message: str) -> str:
    """Marks a string for the catalogue; translated where it is shown."""
    return message


# Each health problem in plain words, and what the owner can do about it.
PROBLEM_WORDS: dict[str, tuple[str, str]] = {
    "no_signal": (
        N_("no picture arrives"),
        N_("check that the camera has power and a network cable or Wi-Fi connection"),
    ),
    "frozen": (N_("the picture is frozen"), N_("restart the camera")),
    "covered": (
        N_("the lens is covered or the picture is black"),
        N_("remove what covers the lens"),
    ),
    "blurred": (N_("the picture is blurred"), N_("clean the lens or adjust the focus")),
    "too_dark": (N_("the picture is too dark"), N_("check the night vision or add light")),
    "too_bright": (N_("the picture is too bright"), N_("turn the camera away from bright light")),
    "low_contrast": (N_("the picture has little contrast"), N_("clean the lens or window")),
    "colour_cast": (N_("the colours are wrong"), N_("check the camera's white balance")),
    "noisy": (N_("the picture is noisy"), N_("add light or lower the camera's gain")),
    "scene_changed": (
        N_("the camera looks somewhere else than before"),
        N_("turn it back, or accept the new view with camera-agent reference reset"),
    ),
    "low_fps": (N_("too few frames per second"), N_("check the camera's stream settings")),
    "low_resolution": (N_("the resolution is too low"), N_("check the camera's stream settings")),
    "storage_low": (N_("storage is running low"), N_("free space or use a larger disk")),
    "recording_stopped": (
        N_("recording has stopped"),
        N_("check the recorder and its disk"),
    ),
    "storage_failed": (
        N_("the disk is full: footage cannot be written"),
        N_("free space on the disk; recording resumes by itself"),
    ),
    "clock_unsynced": (
        N_("the clock is not synchronised"),
        N_("check the network and the time service"),
    ),
}

PRIORITY_LOW, PRIORITY_DEFAULT, PRIORITY_HIGH = 2, 3, 4
_TAGS: dict[EventKind, str] = {
    "camera_failed": "warning",
    "camera_recovered": "white_check_mark",
    "storage_low": "floppy_disk",
    "clock_unsynced": "clock3",
    "request_received": "police_car",
    "request_completed": "package",
}
_REQUEST_END_TAGS: Mapping[str, str] = {
    RequestState.COMPLETED: "heavy_check_mark",
    RequestState.FAILED: "x",
    RequestState.DECLINED: "no_entry",
    RequestState.WITHDRAWN: "leftwards_arrow_with_hook",
    RequestState.REJECTED: "no_entry",
}
_BYTES_PER_GB = 1000**3


@dataclass(frozen=True)
class Message:
    """One message to every channel: a single event or a digest of many."""

    kind: str  # an event kind, or "digest"
    title: str
    body: str
    priority: int  # ntfy's scale: 1 (min) to 5 (urgent)
    tags: tuple[str, ...]
    events: tuple[Event, ...]
    held_back: int = 0

    def as_json(self, agent: str, locale: str) -> dict[str, Any]:
        """The webhook's JSON body."""
        return {
            "schema": SCHEMA,
            "agent": agent,
            "event": self.kind,
            "ts": rfc3339(max(e.at for e in self.events), "seconds"),
            "locale": locale,
            "title": self.title,
            "message": self.body,
            "priority": self.priority,
            "held_back": self.held_back,
            "events": [event.as_json() for event in self.events],
        }


class Renderer:
    def __init__(
        self,
        agent: str,
        translator: Translator,
        camera_names: Mapping[str, str],
        tz: tzinfo | None = None,
        owner_page_port: int | None = None,
    ) -> None:
        self._agent = agent
        self._page_port = owner_page_port
        self._ = translator
        self._names = camera_names
        self._tz = tz

    # --- single events -----------------------------------------------------------------------

    def single(self, outgoing: Outgoing) -> Message:
        _ = self._
        event = outgoing.event
        title, body, priority, tags = self._describe(event)
        if outgoing.held_back:
            body += "\n\n" + _.ngettext(
                "%(count)d earlier notice about this was held back since %(since)s.",
                "%(count)d earlier notices about this were held back since %(since)s.",
                outgoing.held_back,
            ) % {"count": outgoing.held_back, "since": self._time(outgoing.since or event.at)}
        body += "\n\n" + self._footer()
        return Message(event.kind, title, body, priority, tags, (event,), outgoing.held_back)

    def digest(self, events: Sequence[Event]) -> Message:
        """One summary: per subject and kind the latest event, how often, and since when."""
        _ = self._
        groups: dict[tuple[str, str], list[Event]] = {}
        for event in events:
            groups.setdefault((event.subject, event.kind), []).append(event)
        lines: list[str] = []
        for group in sorted(groups.values(), key=lambda g: g[-1].at):
            latest = group[-1]
            title = self._describe(latest)[0]
            line = f"- {self._time(latest.at)}  {title}"
            if len(group) > 1:
                line += " " + _.ngettext(
                    "(%(count)d time since %(first)s)",
                    "(%(count)d times since %(first)s)",
                    len(group),
                ) % {"count": len(group), "first": self._time(group[0].at)}
            lines.append(line)
        title = _.ngettext(
            "Daily summary: %(count)d notice", "Daily summary: %(count)d notices", len(groups)
        ) % {"count": len(groups)}
        body = "\n".join(lines) + "\n\n" + self._footer()
        return Message("digest", title, body, PRIORITY_DEFAULT, ("date",), tuple(events))

    def _describe(self, event: Event) -> tuple[str, str, int, tuple[str, ...]]:
        _ = self._
        tags: tuple[str, ...] = (_TAGS[event.kind],)
        at = self._time(event.at)
        if event.kind == "camera_failed":
            camera = self._camera(event.camera)
            title = _("Camera %(camera)s is not working") % {"camera": camera}
            body = _("Camera %(camera)s stopped working at %(time)s: %(problems)s.") % {
                "camera": camera,
                "time": at,
                "problems": self._problems(event.problems),
            }
            return title, body + self._advice(event.problems), PRIORITY_HIGH, tags
        if event.kind == "camera_recovered":
            camera = self._camera(event.camera)
            title = _("Camera %(camera)s works again") % {"camera": camera}
            body = _("Camera %(camera)s works again since %(time)s.") % {
                "camera": camera,
                "time": at,
            }
            if event.problems:
                body += " " + _("Still to look at: %(problems)s.") % {
                    "problems": self._problems(event.problems)
                }
                body += self._advice(event.problems)
            return title, body, PRIORITY_LOW, tags
        if event.kind == "storage_low":
            title = _("Storage is running low")
            body = _(
                "The disk for footage is nearly full (%(free)s free). The oldest footage is "
                "deleted first to make room, so less is kept than your settings ask for. "
                "Footage held for a police request is never deleted."
            ) % {"free": self._gigabytes(event.free_bytes or 0)}
            return title, body, PRIORITY_HIGH, tags
        if event.kind == "clock_unsynced":
            title = _("The clock is not synchronised")
            body = _(
                "Since %(time)s the device's clock has not been set by a time server. "
                "Footage times may be wrong, and police requests wait until the clock is "
                "right. Check the network connection and the time service (timedatectl)."
            ) % {"time": at}
            return title, body, PRIORITY_DEFAULT, tags
        assert event.request is not None
        if event.kind == "request_received":
            return self._received(event.request)
        return self._ended(event.request)

    def _received(self, request: RequestFacts) -> tuple[str, str, int, tuple[str, ...]]:
        _ = self._
        if request.must_approve:
            title = _("Police request %(case)s needs your decision") % {"case": request.case}
        else:
            title = _("Police request %(case)s received") % {"case": request.case}
        if request.kind == "preserve":
            kind = _("preservation (footage kept, nothing sent)")
        elif request.kind == "order":
            kind = _("order (mandatory)")
        else:
            kind = _("voluntary request")
        body = "\n".join(
            [
                _("A request for footage has arrived.") + "\n",
                _("Kind: %(kind)s") % {"kind": kind},
                _("Case: %(case)s") % {"case": request.case},
                _("Requested by: %(requester)s") % {"requester": request.requester},
                _("Legal basis: %(basis)s") % {"basis": request.basis},
                _("Cameras: %(cameras)s") % {"cameras": self._cameras(request.cameras)},
                _("From %(start)s to %(end)s")
                % {"start": self._time(request.start), "end": self._time(request.end)},
                "",
            ]
        )
        ids = {"id": request.id}
        if request.decision == "ask" and self._page_port is not None:
            body += _(
                "It waits for your decision. Approve or decline it on your owner page (port "
                "%(port)s of this device), or with: camera-agent requests approve %(id)s — or: "
                "camera-agent requests decline %(id)s"
            ) % {**ids, "port": self._page_port}
            priority = PRIORITY_HIGH
        elif request.decision == "ask":
            body += (
                _(
                    "It waits for your decision. Approve it with: camera-agent requests approve "
                    "%(id)s — or decline it with: camera-agent requests decline %(id)s"
                )
                % ids
            )
            priority = PRIORITY_HIGH
        elif request.decision == "preserve":
            body += (
                _(
                    "The police ask that this footage is kept: it is held on this device for a "
                    "limited time (camera-agent requests show %(id)s says until when) and nothing "
                    "is sent. A later request for it can then still be served."
                )
                % ids
            )
            priority = PRIORITY_DEFAULT
        elif request.decision == "auto":
            body += _("Your settings approve this kind of request: the footage is being sent.")
            priority = PRIORITY_DEFAULT
        else:
            body += _("Your settings decline this kind of request: nothing is sent.")
            priority = PRIORITY_DEFAULT
        return title, body, priority, (_TAGS["request_received"],)

    def _ended(self, request: RequestFacts) -> tuple[str, str, int, tuple[str, ...]]:
        _ = self._
        case = {"case": request.case, "id": request.id}
        tags = (_TAGS["request_completed"], _REQUEST_END_TAGS.get(request.state, "package"))
        if request.state == RequestState.COMPLETED:
            title = _("Police request %(case)s: footage delivered") % case
            body = _("The footage for request %(id)s (case %(case)s) was sent and received.")
            return title, body % case, PRIORITY_DEFAULT, tags
        reasons = {
            "owner_declined": _("you declined it"),
            "owner_timeout": _("you did not decide in time"),
            "footage_missing": _("the footage of that time is no longer there"),
            "footage_altered": _("recorded footage was changed after it was written"),
            "upload_failed": _("the upload did not succeed"),
        }
        if request.state == RequestState.LAPSED:
            title = _("Police preservation %(case)s lapsed") % case
            body = _(
                "The preservation %(id)s (case %(case)s) has run out: its footage is no longer "
                "held and is deleted as your retention says."
            )
            return title, body % case, PRIORITY_LOW, tags
        if request.state == RequestState.WITHDRAWN:
            title = _("Police request %(case)s withdrawn") % case
            body = _(
                "The police withdrew request %(id)s (case %(case)s): nothing more is sent, its "
                "footage is no longer on hold, and what was copied for it is deleted."
            )
            return title, body % case, PRIORITY_DEFAULT, tags
        reasons["revoked_key"] = _("the police revoked the key that signed it")
        reason = reasons.get(request.reason or "", request.reason or "")
        if request.state == RequestState.REJECTED:
            title = _("Police request %(case)s stopped") % case
            body = _("Request %(id)s (case %(case)s) was stopped: %(reason)s.")
            return title, body % {**case, "reason": reason}, PRIORITY_DEFAULT, tags
        if request.state == RequestState.DECLINED:
            title = _("Police request %(case)s declined") % case
            body = _("Request %(id)s (case %(case)s) was declined: %(reason)s.")
            return title, body % {**case, "reason": reason}, PRIORITY_DEFAULT, tags
        title = _("Police request %(case)s failed") % case
        body = _("Request %(id)s (case %(case)s) failed: %(reason)s.")
        return title, body % {**case, "reason": reason}, PRIORITY_HIGH, tags

    # --- pieces ------------------------------------------------------------------------------

    def _camera(self, camera_id: str | None) -> str:
        name = self._names.get(camera_id or "", camera_id or "?")
        return name if name == camera_id else f"{name} ({camera_id})"

    def _cameras(self, ids: Sequence[str]) -> str:
        return ", ".join(self._camera(camera) for camera in ids)

    def _problems(self, problems: Sequence[str]) -> str:
        words = [self._(PROBLEM_WORDS[p][0]) if p in PROBLEM_WORDS else p for p in problems]
        return ", ".join(words) or self._("no details")

    def _advice(self, problems: Sequence[str]) -> str:
        steps = [self._(PROBLEM_WORDS[p][1]) for p in problems if p in PROBLEM_WORDS]
        if not steps:
            return ""
        return "\n" + self._("What to do: %(steps)s.") % {"steps": "; ".join(steps)}

    def _time(self, moment: datetime) -> str:
        return moment.astimezone(self._tz).strftime("%Y-%m-%d %H:%M")

    def _gigabytes(self, size: int) -> str:
        return f"{size / _BYTES_PER_GB:.1f} GB"

    def _footer(self) -> str:
        return self._("Sent by camera-agent %(agent)s.") % {"agent": self._agent}
