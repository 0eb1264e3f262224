"""`camera-agent setup`: the config file from answers to a few questions.

Asks, in the owner's language: the agent id, the registry (an enrolment code, or a broker
address), each camera's address — watched for a few seconds with `probe` as it is entered,
and said back in plain words so a wrong address can be typed again — and optionally where
each camera is. Passwords never enter config.yaml: each goes into its own file (0600) in
`<data_dir>/keys/`, beside the device key and the broker password that enrolment saves,
because the service runs as a systemd dynamic user that can read its state directory but
no root-only file in /etc (docs/service.md). The result is validated with the loader
`check` uses before it is written; an existing config is only replaced when the owner
says so, and then kept as a backup.

Over 500 lines, not split in the issue 14 change: the questions, the live probe and the
writing of the config are separate jobs (issue 17).
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import yaml

from agent.cli_common import DEFAULT_CONFIG, environment_locale
from agent.errors import AgentError, ConfigError, StreamError
from agent.i18n import Translator, translator

if TYPE_CHECKING:
    from agent.quality.assess import Health

EX_OK = 0
EX_STOPPED = 1
EX_CONFIG = 78
EX_CANTCREAT = 73
INTERRUPTED = 130

CONFIG_MODE = 0o644  # read by the service's dynamic user; it holds no secret
SECRET_MODE = 0o600
PASSWORD_SUFFIX = ".pass"
_ID = re.compile(r"[a-z0-9_-]{1,64}")
_YES = ("y", "yes", "j", "ja")
_NO = ("n", "no", "nee")

# Each problem `probe` can find, in words for the owner (msgids).
PROBLEM_WORDS: dict[str, str] = {
    "no_signal": "no picture arrives: is the address right, and is the camera on?",
    "frozen": "the picture does not change (frozen)",
    "blurred": "the picture is blurred: focus, or a dirty lens?",
    "too_dark": "the picture is too dark",
    "too_bright": "the picture is too bright",
    "low_contrast": "the picture has hardly any contrast (fog, glare, a dirty lens?)",
    "covered": "the lens seems covered",
    "colour_cast": "the colours are off",
    "noisy": "the picture is very noisy",
    "scene_changed": "the camera looks somewhere else than it did",
    "low_fps": "too few pictures a second",
    "low_resolution": "the picture is small (low resolution)",
}


class Stopped(Exception):
    """The owner ended the questions (end of input or Ctrl-C)."""


@dataclass
class Camera:
    id: str
    name: str
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    location: dict[str, float] = field(default_factory=dict)


@dataclass
class Registry:
    broker: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None  # already saved (enrolment)
    topic_prefix: str | None = None
    enrol_url: str | None = None
    enrol_code: str | None = None


@dataclass
class PoliceTrust:
    """The police key the owner checked by its fingerprint, and where evidence may go."""

    key: bytes = field(repr=False)
    kid: str
    upload_allow: str


class Wizard:
    """The questions; `ask` and `say` are input() and print() unless a test swaps them."""

    def __init__(
        self,
        config_path: Path,
        _: Translator,
        probe_seconds: float,
        ask: Callable[[str], str] = input,
        say: Callable[[str], None] = print,
    ) -> None:
        self.config_path = config_path
        self._ = _
        self.probe_seconds = probe_seconds
        self._ask = ask
        self.say = say

    # --- asking ------------------------------------------------------------------------------

    def ask(self, question: str, default: str | None = None) -> str:
        prompt = f"{question} [{default}]: " if default else f"{question}: "
        try:
            answer = self._ask(prompt).strip()
        except EOFError:
            raise Stopped from None
        return answer or (default or "")

    def secret(self, question: str) -> str:
        """A password: not echoed at a terminal; read as a line from a pipe."""
        if sys.stdin.isatty():
            try:
                return getpass.getpass(f"{question}: ")
            except EOFError:
                raise Stopped from None
        return self.ask(question)

    def yes(self, question: str, default: bool) -> bool:
        _ = self._
        hint = _("Y/n") if default else _("y/N")
        while True:
            answer = self.ask(f"{question} ({hint})").lower()
            if not answer:
                return default
            if answer in _YES:
                return True
            if answer in _NO:
                return False
            self.say(_("Please answer y (yes) or n (no)."))

    # --- the questions -----------------------------------------------------------------------

    def agent_id(self) -> str:
        _ = self._
        guess = re.sub(r"[^a-z0-9_-]", "-", socket.gethostname().lower())[:64] or "camera-agent"
        while True:
            answer = self.ask(_("Name of this installation (the agent id)"), guess)
            if _ID.fullmatch(answer):
                return answer
            self.say(_("Use 1 to 64 characters: lower-case letters a-z, digits, '-' or '_'."))

    def data_dir(self) -> Path:
        _ = self._
        from agent.config import DEFAULT_DATA_DIR

        default = DEFAULT_DATA_DIR
        if self.config_path.absolute() != DEFAULT_CONFIG:
            default = self.config_path.absolute().parent / "data"
        answer = self.ask(_("Folder for the agent's state and footage"), str(default))
        return Path(answer).expanduser().absolute()

    def registry(self) -> Registry:
        _ = self._
        from agent.enrolment import check_registry_url

        self.say("")
        self.say(_("The registry: with an enrolment code from its operator, or a broker address."))
        while True:
            url = self.ask(
                _("Registry address, e.g. https://registry.example.org (empty: no enrolment)")
            )
            if not url:
                break
            try:
                url = check_registry_url(url)
            except ValueError as exc:
                self.say(str(exc))
                continue
            code = self.ask(_("Enrolment code, e.g. 7KQ2-M9XD-4HRT-0WBE"))
            if code:
                return Registry(broker="", enrol_url=url, enrol_code=code)
        return self.broker()

    def broker(self) -> Registry:
        _ = self._
        from pydantic import ValidationError

        from agent.config import RegistryConfig

        while True:
            broker = self.ask(_("MQTT broker address, e.g. mqtts://registry.example.org:8883"))
            try:
                RegistryConfig.model_validate({"broker": broker})
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    self.say(str(error["msg"]).removeprefix("Value error, "))
                continue
            break
        username = self.ask(_("Broker user name (empty: none)")) or None
        password = None
        while username is not None and not password:
            password = self.secret(_("Broker password"))
        return Registry(broker=broker, username=username, password=password)

    def cameras(self) -> list[Camera]:
        _ = self._
        cameras: list[Camera] = []
        while True:
            self.say("")
            self.say(_("Camera {number}").format(number=len(cameras) + 1))
            cameras.append(self.camera({c.id for c in cameras}, len(cameras) + 1))
            if not self.yes(_("Add another camera?"), default=False):
                return cameras

    def camera(self, taken: set[str], number: int) -> Camera:
        _ = self._
        while True:
            camera_id = self.ask(_("Camera id (short, e.g. front)"), f"camera{number}")
            if not _ID.fullmatch(camera_id):
                self.say(_("Use 1 to 64 characters: lower-case letters a-z, digits, '-' or '_'."))
            elif camera_id in taken:
                self.say(_("There is already a camera '{camera}'.").format(camera=camera_id))
            else:
                break
        name = self.ask(_("Name to show, e.g. Front door"), camera_id)
        camera = Camera(id=camera_id, name=name, url="")
        while True:
            self.address(camera)
            if self.probe(camera):
                break
        self.location(camera)
        return camera

    def address(self, camera: Camera) -> None:
        """The stream address with its login; a login typed into the URL is taken out of it
        (the config refuses credentials in a URL: they would end up in logs)."""
        _ = self._
        from pydantic import ValidationError

        from agent.config import CameraConfig

        username: str | None = None
        password: str | None = None
        while True:
            url = self.ask(
                _("Stream address, e.g. rtsp://192.168.1.20:554/stream1 (or a video file)")
            )
            username = password = None
            parts = urlsplit(url)
            if parts.scheme and "@" in parts.netloc:
                userinfo, _at, host = parts.netloc.rpartition("@")
                name, colon, secret = userinfo.partition(":")
                username = unquote(name) or None
                password = unquote(secret) if colon else None
                url = urlunsplit(parts._replace(netloc=host))
                self.say(
                    _(
                        "The user name and password were taken out of the address; the "
                        "password is kept in a file of its own."
                    )
                )
            try:
                CameraConfig.model_validate({"id": camera.id, "url": url})
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    self.say(str(error["msg"]).removeprefix("Value error, "))
                continue
            break
        if username is None and urlsplit(url).scheme.lower() in ("rtsp", "rtsps", "http", "https"):
            username = self.ask(_("Camera user name (empty: none)")) or None
        if username is not None and password is None:
            password = self.secret(_("Camera password (empty: none)")) or None
        camera.url, camera.username, camera.password = url, username, password

    def probe(self, camera: Camera) -> bool:
        """Watch the stream and say what came; False when the owner types it again."""
        _ = self._
        from agent.probe import run_probe

        self.say(
            _("Watching {url} for {seconds} seconds…").format(
                url=camera.url, seconds=f"{self.probe_seconds:g}"
            )
        )
        try:
            health = run_probe(stream_url(camera), self.probe_seconds, None)
        except StreamError as exc:
            self.say(_("Cannot open it: {error}").format(error=exc))
            return not self.yes(_("Enter the address again?"), default=True)
        for line in self.plain_words(health):
            self.say("  " + line)
        return not self.yes(_("Enter the address again?"), default=health.status == "offline")

    def plain_words(self, health: Health) -> list[str]:
        _ = self._
        lines: list[str] = []
        stream = health.stream
        if health.status == "ok":
            lines.append(_("The camera works: no problems seen."))
        elif health.status == "offline":
            lines.append(_("No picture arrived."))
        else:
            lines.append(_("A picture arrives, but:"))
        if stream is not None and stream.width:
            size = _("picture {width}x{height} ({codec})").format(
                width=stream.width, height=stream.height, codec=stream.codec
            )
            if stream.fps is not None:
                size += ", " + _("{fps} pictures a second").format(fps=f"{stream.fps:.0f}")
            lines.append(size)
        for problem in health.problems:
            words = PROBLEM_WORDS.get(problem)
            lines.append("- " + (_(words) if words else problem))
        return lines

    def location(self, camera: Camera) -> None:
        _ = self._
        from pydantic import ValidationError

        from agent.config import Location

        while True:
            where = self.ask(
                _("Where is it? latitude, longitude, e.g. 52.9925, 6.5649 (empty: skip)")
            )
            if not where:
                return
            try:
                lat, lon = (float(part) for part in where.replace(";", ",").split(","))
            except ValueError:
                self.say(_("Give two numbers separated by a comma."))
                continue
            place: dict[str, float] = {"lat": lat, "lon": lon}
            for key, question in (
                ("bearing_deg", _("Direction it looks in, degrees from north (empty: skip)")),
                ("fov_deg", _("Field of view in degrees (empty: skip)")),
                ("range_m", _("How far it sees, in metres (empty: skip)")),
            ):
                while True:
                    answer = self.ask(question)
                    if not answer:
                        break
                    try:
                        place[key] = float(answer)
                        break
                    except ValueError:
                        self.say(_("Give a number."))
            try:
                Location.model_validate(place)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    key = ".".join(str(part) for part in error["loc"])
                    self.say(f"{key}: {str(error['msg']).removeprefix('Value error, ')}")
                continue
            camera.location = place
            return

    def footage_space(self) -> str:
        _ = self._
        from agent.durations import parse_size

        while True:
            answer = self.ask(_("Disk space footage may use, e.g. 20GB"), "50GB")
            try:
                parse_size(answer)
            except ValueError as exc:
                self.say(str(exc))
                continue
            return answer

    def police(self, registry: Registry) -> PoliceTrust | None:
        """The police key to trust, checked by its fingerprint: without one the agent
        refuses every request, which is safe but useless to the police."""
        _ = self._
        from agent.config import police_key_from_file
        from agent.config_fields import web_url
        from agent.crypto import jws

        self.say("")
        self.say(_("Police requests: the agent only obeys requests signed with a key you trust."))
        while True:
            answer = self.ask(
                _(
                    "File with the police's public key, from the police or the registry "
                    "(empty: none; every request is then refused)"
                )
            )
            if not answer:
                return None
            path = Path(answer).expanduser().absolute()
            try:
                data = path.read_bytes()
                key = police_key_from_file(data, path)
            except OSError as exc:
                self.say(_("Cannot read {path}: {error}").format(path=path, error=exc.strerror))
                continue
            except ValueError as exc:
                said = _("{path} is not a police public key: {error}")
                self.say(said.format(path=path, error=_first_line(exc)))
                continue
            kid = jws.thumbprint(key)
            self.say(_("Its fingerprint: {kid}").format(kid=kid))
            if not self.yes(
                _("Is this the fingerprint the police published? Trust this key?"), default=False
            ):
                continue
            break
        default = f"{registry.enrol_url.rstrip('/')}/files/" if registry.enrol_url else None
        while True:
            upload = self.ask(
                _("Address evidence may be sent to, e.g. https://evidence.example.org/files/"),
                default,
            )
            try:
                web_url(upload)
            except ValueError as exc:
                self.say(str(exc))
                continue
            return PoliceTrust(data, kid, upload)

    def notifications(self) -> str | None:
        """An ntfy topic for the owner's phone (e-mail and webhooks: edit the config)."""
        _ = self._
        from pydantic import ValidationError

        from agent.notify.config import NtfySettings

        while True:
            answer = self.ask(
                _(
                    "Notifications on your phone with the ntfy app: its topic address, e.g. "
                    "https://ntfy.sh/shop-42-x7q (empty: none)"
                )
            )
            if not answer:
                return None
            try:
                NtfySettings.model_validate({"url": answer})
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    self.say(str(error["msg"]).removeprefix("Value error, "))
                continue
            return answer

    def owner_page_password(self) -> str | None:
        _ = self._
        while True:
            first = self.secret(_("Password for the owner page (empty: no page)"))
            if not first:
                return None
            if self.secret(_("The same password again")) == first:
                return first
            self.say(_("The two passwords differ; try again."))


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def police_key_path(config_path: Path, kid: str) -> Path:
    """Where setup keeps a trusted police key: beside the config, named by its fingerprint."""
    return config_path.absolute().parent / f"police-{kid[:16]}.pem"


def stream_url(camera: Camera) -> str:
    """The address with its login inserted, for probing only (never shown or logged)."""
    if camera.username is None:
        return camera.url
    parts = urlsplit(camera.url)
    userinfo = quote(camera.username, safe="")
    if camera.password is not None:
        userinfo += ":" + quote(camera.password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def owner_page_setter() -> Callable[[Path, str], None] | None:
    """agent.owner_page.set_owner_password, when that module is installed."""
    try:
        module = importlib.import_module("agent.owner_page")
    except ImportError:
        return None
    setter = getattr(module, "set_owner_password", None)
    return setter if callable(setter) else None


def write_secret(path: Path, secret: str) -> None:
    """One password alone in a 0600 file, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, SECRET_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def config_document(
    agent_id: str,
    data_dir: Path,
    locale: str,
    registry: Registry,
    cameras: list[Camera],
    max_bytes: str,
    owner_page: bool = False,
    police: tuple[Path, str] | None = None,
    ntfy: str | None = None,
) -> dict[str, Any]:
    """The config as YAML-ready data; password files are named, never passwords."""
    from agent.crypto.device_key import key_dir

    section: dict[str, Any] = {"broker": registry.broker}
    if registry.username is not None:
        section["username"] = registry.username
    if registry.password_file is not None:
        section["password_file"] = str(registry.password_file)
    if registry.topic_prefix and registry.topic_prefix != "camreg/v1":
        section["topic_prefix"] = registry.topic_prefix
    listed: list[dict[str, Any]] = []
    for camera in cameras:
        entry: dict[str, Any] = {"id": camera.id, "name": camera.name, "url": camera.url}
        if camera.username is not None:
            entry["username"] = camera.username
        if camera.password is not None:
            entry["password_file"] = str(camera_password_path(key_dir(data_dir), camera.id))
        if camera.location:
            entry["location"] = dict(camera.location)
        listed.append(entry)
    document: dict[str, Any] = {
        "agent": {"id": agent_id, "data_dir": str(data_dir), "locale": locale},
        "registry": section,
        "storage": {"max_bytes": max_bytes},
    }
    if police is not None:
        key_file, upload_allow = police
        document["police"] = {"keys": [{"file": str(key_file)}], "upload_allow": [upload_allow]}
    if owner_page:
        document["owner_page"] = {"enabled": True}
    if ntfy is not None:
        document["notifications"] = {"ntfy": {"url": ntfy}}
    document["cameras"] = listed
    return document


def camera_password_path(keys: Path, camera_id: str) -> Path:
    return keys / f"camera-{camera_id}{PASSWORD_SUFFIX}"


def write_config(path: Path, document: dict[str, Any], _: Translator) -> ConfigError | None:
    """Validate with `check`'s loader, then put the file in place (mode 0644); the errors
    instead when it does not validate (nothing is then written)."""
    from agent.config import load_config

    header = _(
        "# Written by `camera-agent setup` on {date}. Every key is explained in\n"
        "# config.example.yaml; check changes with `camera-agent check`.\n"
    ).format(date=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"))
    text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd, temporary = tempfile.mkstemp(prefix=".config.", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, CONFIG_MODE)
        try:
            load_config(temporary, check_folders=True)
        except ConfigError as exc:
            Path(temporary).unlink()
            return exc
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return None


def choose_language(requested: str | None, ask: Callable[[str], str]) -> str:
    """--language, else asked (in both languages), with the environment's as the default."""
    if requested is not None:
        return requested
    default = environment_locale()
    while True:
        try:
            answer = ask(f"Taal / Language (nl/en) [{default}]: ").strip().lower()
        except EOFError:
            raise Stopped from None
        if not answer:
            return default
        if answer in ("nl", "en"):
            return answer
        if answer in ("nederlands", "dutch"):
            return "nl"
        if answer in ("engels", "english"):
            return "en"


def run(args: argparse.Namespace) -> int:
    try:
        locale = choose_language(args.language, input)
    except (Stopped, KeyboardInterrupt):
        return EX_STOPPED
    _ = translator(locale)
    wizard = Wizard(args.config, _, args.probe_seconds)
    try:
        return _questions(wizard, locale)
    except Stopped:
        print()
        print(_("Setup stopped; nothing was written."), file=sys.stderr)
        return EX_STOPPED
    except KeyboardInterrupt:
        print()
        print(_("Setup stopped; nothing was written."), file=sys.stderr)
        return INTERRUPTED


def _questions(wizard: Wizard, locale: str) -> int:
    _ = wizard._
    say = wizard.say
    path = wizard.config_path
    say(_("This sets up camera-agent; it writes {path}.").format(path=path))
    replacing = path.exists()
    if replacing:
        say(_("There is a config file already: {path}").format(path=path))
        if wizard.yes(_("Keep it?"), default=True):
            say(_("Kept; nothing was changed."))
            return EX_OK
    agent_id = wizard.agent_id()
    data_dir = wizard.data_dir()
    registry = wizard.registry()
    cameras = wizard.cameras()
    say("")
    max_bytes = wizard.footage_space()
    police = wizard.police(registry)
    say("")
    ntfy = wizard.notifications()
    setter = owner_page_setter()
    page_password = wizard.owner_page_password() if setter is not None else None
    if page_password is not None:
        say(_("The owner page will be on: http://<this device's address>:8081/"))

    from agent.crypto.device_key import key_dir

    keys = key_dir(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for camera in cameras:
            if camera.password is not None:
                write_secret(camera_password_path(keys, camera.id), camera.password)
        if registry.enrol_url is not None:
            outcome = _enrol(wizard, registry, agent_id, data_dir, locale, cameras)
            if outcome is not None:
                return outcome
        elif registry.password is not None:
            from agent.enrolment import save_password

            registry.password_file = save_password(data_dir, registry.password)
    except OSError as exc:
        print(
            _("Cannot write in {path}: {error}").format(path=data_dir, error=exc), file=sys.stderr
        )
        return EX_CANTCREAT

    from agent.config import AgentConfig

    # The page is switched on with its password, where this version of the agent has one.
    page = page_password is not None and "owner_page" in AgentConfig.model_fields
    pinned = None
    if police is not None:
        # A copy beside the config: the file the owner named may be gone tomorrow.
        key_file = police_key_path(path, police.kid)
        try:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_bytes(police.key)
            key_file.chmod(CONFIG_MODE)
        except OSError as exc:
            said = _("Cannot write {path}: {error}").format(path=key_file, error=exc)
            print(said, file=sys.stderr)
            return EX_CANTCREAT
        pinned = (key_file, police.upload_allow)
    document = config_document(
        agent_id, data_dir, locale, registry, cameras, max_bytes, page, pinned, ntfy
    )
    if replacing:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        # A copy: the old file stays in place until the new one has validated.
        shutil.copy2(path, backup)
        say(_("The old config file is kept as {path}.").format(path=backup))
    try:
        problems = write_config(path, document, _)
    except OSError as exc:
        print(_("Cannot write {path}: {error}").format(path=path, error=exc), file=sys.stderr)
        return EX_CANTCREAT
    if problems is not None:
        print(_("The answers do not make a valid config:"), file=sys.stderr)
        for line in problems.errors:
            print(f"  {line}", file=sys.stderr)
        return EX_CONFIG
    while setter is not None and page_password is not None:
        try:
            setter(data_dir, page_password)
        except AgentError as exc:
            say(str(exc))
            page_password = wizard.owner_page_password()
            continue
        say(_("The owner page password is set."))
        break
    say("")
    say(_("Written: {path}").format(path=path))
    if any(camera.password is not None for camera in cameras):
        say(_("Camera passwords are in {path} (readable by the agent only).").format(path=keys))
    say(_("Check it any time with: camera-agent check --config {path}").format(path=path))
    return EX_OK


def _enrol(
    wizard: Wizard,
    registry: Registry,
    agent_id: str,
    data_dir: Path,
    locale: str,
    cameras: list[Camera],
) -> int | None:
    """Enrol with the registry, asking for a new code (or a broker) when it fails; fills
    `registry`. An exit code when setup must stop."""
    from agent.enrolment import EnrolmentError, EnrolmentView, enrol, save_password

    _ = wizard._
    view = EnrolmentView.model_validate(
        {
            "agent": {"id": agent_id, "data_dir": str(data_dir), "locale": locale},
            "cameras": [
                {"id": c.id, "name": c.name, "location": c.location or None} for c in cameras
            ],
        }
    )
    assert registry.enrol_url is not None and registry.enrol_code is not None
    code = registry.enrol_code
    while True:
        wizard.say(_("Enrolling with {url}…").format(url=registry.enrol_url))
        try:
            result = enrol(view, registry.enrol_url, code)
        except EnrolmentError as exc:
            wizard.say(_("Enrolment failed: {error}").format(error=exc))
            if wizard.yes(_("Try again with another code?"), default=True):
                code = wizard.ask(_("Enrolment code, e.g. 7KQ2-M9XD-4HRT-0WBE"))
                continue
            manual = wizard.broker()
            registry.broker, registry.username = manual.broker, manual.username
            registry.enrol_url = None
            if manual.password is not None:
                registry.password_file = save_password(data_dir, manual.password)
            return None
        break
    wizard.say(
        _("Enrolled as {agent}; device key {kid}").format(
            agent=result.agent_id, kid=result.key_thumbprint
        )
    )
    registry.broker = result.broker
    registry.topic_prefix = result.topic_prefix
    if result.password is not None:
        registry.username = result.username
        registry.password_file = save_password(data_dir, result.password)
    else:
        wizard.say(
            _(
                "The registry issued no password: its broker knows this agent by a client "
                "certificate. Add client_cert and client_key to the registry section."
            )
        )
    return None
