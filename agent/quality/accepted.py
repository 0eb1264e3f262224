"""Problems an owner accepted as normal for one camera ("this is normal for this camera").

A camera over a dim alley is always `too_dark` for rules that must hold for every camera,
one looking at a hedge in the wind always `noisy`. An owner who is told so every day
turns notifications off, and then misses the day the camera really breaks. So the owner
may accept one such problem for one camera: health then leaves it out of `problems` (and
so out of `status`) and lists it in `accepted` while it is seen, so the registry still
knows. Only problems that depend on the scene can be accepted (ACCEPTABLE_PROBLEMS); the
others say the camera is not working or was moved, or are faults that configuration
fixes, and `why_not_acceptable` says which, in the owner's words.

Kept in `<data_dir>/accepted-problems.json`, written atomically (a new file, fsync,
rename, fsync of the folder), so a power cut leaves the old list or the new one. A file
that cannot be read as such a list is moved aside (agent/state_files.py) with one clear
error, and the agent goes on with none accepted: the problems come back, which is the
safe side.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.audit import PROBLEM_ACCEPTANCE, STATE_FILE_RESET, AuditError, AuditTrail
from agent.errors import AgentError
from agent.quality.assess import ACCEPTABLE_PROBLEMS
from agent.state_files import MovedAside, move_aside

if TYPE_CHECKING:
    from agent.i18n import Translator

log = logging.getLogger(__name__)

ACCEPTED_FILE = "accepted-problems.json"
FILE_SCHEMA = "camera-agent.accepted-problems.v1"
CAMERA_ID_RE = re.compile(r"[a-z0-9_-]{1,64}")
FILE_MODE = 0o600

# Why the other problems cannot be accepted (`why_not_acceptable`).
_NOT_WORKING = frozenset({"no_signal", "frozen", "covered"})
_FROM_CONFIG = frozenset({"low_fps", "low_resolution"})
_THE_DEVICE = frozenset(
    {"storage_low", "recording_stopped", "storage_failed", "clock_unsynced", "clock_drift"}
)
_KNOWN = ACCEPTABLE_PROBLEMS | _NOT_WORKING | _FROM_CONFIG | _THE_DEVICE | {"scene_changed"}


class AcceptedProblemsError(AgentError):
    """The list of accepted problems could not be written."""


def why_not_acceptable(problem: str, _: Translator) -> str | None:
    """Why `problem` cannot be accepted as normal, in the owner's words; None: it can."""
    if problem in ACCEPTABLE_PROBLEMS:
        return None
    if problem in _NOT_WORKING:
        said = _(
            "{problem} means the camera is not working (no picture, a still picture or a "
            "covered lens); that is never normal, so it cannot be accepted: fix the camera"
        )
    elif problem == "scene_changed":
        said = _(
            "scene_changed means the camera was moved; it cannot be accepted: if the new "
            "view is right, make it the reference view (camera-agent reference reset)"
        )
    elif problem in _FROM_CONFIG:
        said = _(
            "{problem} compares the stream with the camera's expect settings in the config; "
            "if it is normal for this camera, lower cameras[].expect there instead"
        )
    elif problem in _THE_DEVICE:
        said = _(
            "{problem} is about this device's storage, recording or clock, not the camera's "
            "picture; it must be fixed, so it cannot be accepted"
        )
    else:
        said = _("there is no problem '{problem}'; problems that can be accepted: {acceptable}")
    return said.format(problem=problem, acceptable=", ".join(sorted(ACCEPTABLE_PROBLEMS)))


def known_problem(problem: str) -> bool:
    return problem in _KNOWN


class AcceptedProblems:
    """The owner's accepted problems per camera, with when each was accepted.

    Thread-safe: the control socket and the owner page may both change it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ACCEPTED_FILE
        self._lock = threading.Lock()
        self._cameras: dict[str, dict[str, str]] = {}
        self.reset: MovedAside | None = None  # set when a broken file was moved aside
        # Set when the file is there but cannot be read (permissions, a failing disk): it
        # may be fine, so it is neither moved nor overwritten, and changes are refused.
        self._unreadable: str | None = None
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._unreadable = f"cannot read {self.path}: {exc.strerror or exc}"
            log.error("%s; going on with no problem accepted", self._unreadable)
            return
        try:
            self._cameras = _parse(data.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError too
            self.reset = move_aside(self.path, exc)
            log.error(
                "the list of accepted problems %s is broken (%s); kept it as %s and went on "
                "with no problem accepted: accept them again (camera-agent problems accept)",
                self.path,
                exc,
                self.reset.kept_as,
            )

    def of(self, camera: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._cameras.get(camera, {}))

    def since(self, camera: str) -> dict[str, str]:
        """Each accepted problem of `camera` with when it was accepted (RFC 3339)."""
        with self._lock:
            return dict(sorted(self._cameras.get(camera, {}).items()))

    def change(self, camera: str, problem: str, accept: bool) -> bool:
        """Accept (or no longer accept) `problem` for `camera`; False: it already was (not).
        ValueError for a problem that cannot be accepted (`why_not_acceptable`)."""
        if accept and problem not in ACCEPTABLE_PROBLEMS:
            raise ValueError(f"{problem!r} cannot be accepted")
        if self._unreadable is not None:
            raise AcceptedProblemsError(self._unreadable)
        with self._lock:
            found = dict(self._cameras.get(camera, {}))
            if accept == (problem in found):
                return False
            if accept:
                found[problem] = _now()
            else:
                del found[problem]
            cameras = {**self._cameras, camera: found}
            if not found:
                del cameras[camera]
            self._write(cameras)
            self._cameras = cameras
            return True

    def _write(self, cameras: Mapping[str, Mapping[str, str]]) -> None:
        body = {"schema": FILE_SCHEMA, "cameras": {c: dict(p) for c, p in sorted(cameras.items())}}
        data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
        temporary = self.path.with_name(f".{self.path.name}.new")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise AcceptedProblemsError(
                f"cannot write {self.path}: {exc.strerror or exc}"
            ) from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: str) -> dict[str, dict[str, str]]:
    """The file's cameras; ValueError naming what is wrong with it."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("schema") != FILE_SCHEMA:
        raise ValueError(f"not a {FILE_SCHEMA} object")
    cameras = body.get("cameras")
    if not isinstance(cameras, dict):
        raise ValueError("'cameras' is not an object")
    found: dict[str, dict[str, str]] = {}
    for camera, problems in cameras.items():
        if not CAMERA_ID_RE.fullmatch(camera) or not isinstance(problems, dict):
            raise ValueError(f"camera {camera!r}: not a camera id with an object of problems")
        for problem, since in problems.items():
            if problem not in ACCEPTABLE_PROBLEMS or not isinstance(since, str):
                raise ValueError(f"camera {camera}: {problem!r} is not an acceptable problem")
        found[camera] = dict(problems)
    return found


class AcceptanceRefused(AgentError):
    """The owner's change was refused; the message says why, in the owner's words."""


# Who is told of a change: a camera's assessor (`StreamAssessor.accept`), in a daemon.
Apply = Callable[[frozenset[str]], None]


class Acceptance:
    """The one door for an owner's "this is normal for this camera": checks the camera and
    the problem, keeps the change, hands it to the camera's assessor and audits it. The
    daemon's control socket, the owner page and the CLI without a daemon all go through it."""

    def __init__(
        self,
        store: AcceptedProblems,
        audit: AuditTrail,
        cameras: Mapping[str, Apply | None],
        _: Translator,
    ) -> None:
        self.store = store
        self._audit = audit
        self._cameras = cameras
        self._ = _

    def audit_reset(self, reset: MovedAside) -> None:
        """Record that a broken list was moved aside (the CLI's; the daemon records its own
        with the other state files)."""
        self._audit.append(STATE_FILE_RESET, None, reset.audit_detail())

    def apply_all(self) -> None:
        """Hand each camera its accepted problems (at start)."""
        for camera, apply in self._cameras.items():
            if apply is not None:
                apply(self.store.of(camera))

    def change(self, camera: str, problem: str, accept: bool, via: str) -> str:
        """Accept `problem` for `camera` (or take that back); the owner's message, or
        AcceptanceRefused saying why not."""
        _ = self._
        if camera not in self._cameras:
            said = _("there is no camera '{camera}' (cameras: {known})")
            raise AcceptanceRefused(said.format(camera=camera, known=", ".join(self._cameras)))
        if accept:
            why = why_not_acceptable(problem, _)
            if why is not None:
                raise AcceptanceRefused(why)
        try:
            changed = self.store.change(camera, problem, accept)
        except AcceptedProblemsError as exc:
            raise AcceptanceRefused(str(exc)) from None
        if not changed:
            if accept:
                said = _("camera {camera}: {problem} was already accepted as normal")
            else:
                said = _("camera {camera}: {problem} was not accepted; nothing changed")
            return said.format(camera=camera, problem=problem)
        detail = {"camera": camera, "problem": problem, "accepted": accept, "via": via}
        try:
            self._audit.append(PROBLEM_ACCEPTANCE, None, detail)
        except AuditError as exc:
            # Unaudited, the change does not stand: it changes what the registry is told.
            self.store.change(camera, problem, not accept)
            said = _("not changed: the audit log cannot be written ({error})")
            raise AcceptanceRefused(said.format(error=exc)) from None
        apply = self._cameras[camera]
        if apply is not None:
            apply(self.store.of(camera))
        log.info(
            "camera %s: %s %s by the owner (%s)",
            camera,
            problem,
            "accepted as normal" if accept else "no longer accepted",
            via,
        )
        if accept:
            said = _(
                "camera {camera}: {problem} accepted as normal for this camera; it is no "
                "longer reported as a problem, and the registry is told it was accepted"
            )
        else:
            said = _("camera {camera}: {problem} is reported as a problem again when seen")
        return said.format(camera=camera, problem=problem)

    def describe(self, only: str | None = None) -> str:
        """`problems show`: each camera's accepted problems and since when."""
        _ = self._
        if only is not None and only not in self._cameras:
            said = _("there is no camera '{camera}' (cameras: {known})")
            raise AcceptanceRefused(said.format(camera=only, known=", ".join(self._cameras)))
        lines = []
        for camera in self._cameras if only is None else [only]:
            accepted = self.store.since(camera)
            if not accepted:
                lines.append(_("{camera}: no problem accepted").format(camera=camera))
                continue
            lines.append(_("{camera}: accepted as normal:").format(camera=camera))
            for problem, since in accepted.items():
                lines.append(_("  {problem} (since {since})").format(problem=problem, since=since))
        return "\n".join(lines)
