"""The questions of `camera-agent setup`, each asked again until its answer is one the
config accepts: the agent id, the data folder, the registry (an enrolment code or a
broker), each camera (its address probed live, its location), the footage space, the
police key, notifications and the owner page's password."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import ValidationError

from agent.cli_common import DEFAULT_CONFIG
from agent.config import (
    DEFAULT_DATA_DIR,
    BrokerConfig,
    CameraConfig,
    Location,
    police_key_from_file,
)
from agent.enrolment import check_registry_url
from agent.i18n import Translator
from agent.notify.config import NtfySettings
from agent.setup.answers import Camera, PoliceTrust, Registry
from agent.setup.discovered import DiscoveredDevices
from agent.setup.probe import probe
from agent.setup.prompts import Prompts
from contract import jws
from contract.config.fields import web_url
from contract.durations import parse_size

_ID = re.compile(r"[a-z0-9_-]{1,64}")


class Wizard(Prompts):
    """The questions; `ask` and `say` are input() and print() unless a test swaps them."""

    def __init__(
        self,
        config_path: Path,
        _: Translator,
        probe_seconds: float,
        ask: Callable[[str], str] = input,
        say: Callable[[str], None] = print,
        discover_seconds: float | None = None,
    ) -> None:
        super().__init__(_, ask, say)
        self.config_path = config_path
        self.probe_seconds = probe_seconds
        # The cameras on the network, offered before a stream address is asked; None when
        # setup does not look (--no-discover, or answers from a pipe).
        self.devices = (
            DiscoveredDevices(self, discover_seconds) if discover_seconds is not None else None
        )

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
        default = DEFAULT_DATA_DIR
        if self.config_path.absolute() != DEFAULT_CONFIG:
            default = self.config_path.absolute().parent / "data"
        answer = self.ask(_("Folder for the agent's state and footage"), str(default))
        return Path(answer).expanduser().absolute()

    def registry(self) -> Registry:
        _ = self._
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
        while True:
            broker = self.ask(_("MQTT broker address, e.g. mqtts://registry.example.org:8883"))
            try:
                BrokerConfig.model_validate({"broker": broker})
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
            camera.onvif_url = None
            if self.devices is None or not self.devices.choose(camera):
                self.address(camera)
            if probe(self, camera, self.probe_seconds):
                break
        if camera.onvif_url is not None and self.devices is not None:
            self.devices.use(camera.onvif_url)
        self.location(camera)
        return camera

    def address(self, camera: Camera) -> None:
        """The stream address with its login; a login typed into the URL is taken out of it
        (the config refuses credentials in a URL: they would end up in logs)."""
        _ = self._
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

    def location(self, camera: Camera) -> None:
        _ = self._
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
