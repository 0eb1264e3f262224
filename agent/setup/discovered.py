"""The cameras discovery found, offered when the owner adds a camera: setup listens once for
ONVIF devices on the network (agent.onvif.discover), lists them by address and what they
call themselves, and for the one picked asks its ONVIF user and password, reads its media
profiles and says which it will record and which analyse. The camera is then written as
`onvif: {url}`: the agent asks the device for both streams at every connect. "None of
these" (and any device that cannot be read) leaves the owner with typing a stream address.

Everything shown here is what a device on the LAN said about itself, and any host may
answer discovery: each text is shown without control characters and cut (`shown`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agent.config import CameraConfig
from agent.errors import OnvifError, OnvifNotAuthorized
from agent.setup.answers import Camera
from agent.setup.prompts import Prompts

if TYPE_CHECKING:
    from agent.onvif import DeviceReading

# How much of a device's own text (its name, model, a profile's token) is shown: a line
# of a terminal, with room for the address beside it; no camera needs more to be known.
SHOWN_CHARS = 60


@dataclass(frozen=True)
class Offered:
    """One device discovery found: where it answered from, its device service, its names."""

    address: str
    device_url: str
    title: str  # already made safe to show


class DiscoveredDevices:
    """Discovery's finds for one run of setup: heard once, then offered for each camera
    until picked."""

    def __init__(self, prompts: Prompts, seconds: float) -> None:
        self._prompts = prompts
        self._seconds = seconds
        self._found: list[Offered] | None = None
        self._used: set[str] = set()

    def use(self, device_url: str) -> None:
        """The owner kept a camera from this device: it is not offered again."""
        self._used.add(device_url)

    def _search(self) -> list[Offered]:
        # Lazily: the ONVIF client (zeep, lxml, aiohttp) only when setup searches.
        from agent.onvif import discover

        _ = self._prompts._
        self._prompts.say(
            _("Looking for ONVIF cameras on this network ({seconds} s)…").format(
                seconds=f"{self._seconds:g}"
            )
        )
        try:
            announcements = discover(self._seconds)
        except OSError as exc:  # no usable network interface, or sockets refused
            self._prompts.say(
                _("Cannot look for cameras: {error}. Type its stream address instead.").format(
                    error=exc.strerror or exc
                )
            )
            return []
        found = []
        for announcement in announcements:
            url = announcement.device_url()
            if url is None:  # it pointed elsewhere: a password must not follow it there
                continue
            names = " ".join(x for x in (announcement.name, announcement.hardware) if x)
            found.append(Offered(announcement.address, url, shown(names or "ONVIF device")))
        if not found:
            self._prompts.say(
                _(
                    "No ONVIF camera answered (it may be on another network, or have ONVIF "
                    "switched off: docs/onvif.md). Type its stream address instead."
                )
            )
        return found

    def choose(self, camera: Camera) -> bool:
        """Fill `camera` from a device the owner picks; False when the owner types a
        stream address instead (none found, "none of these", or the device could not be
        read)."""
        if self._found is None:
            self._found = self._search()
        prompts = self._prompts
        _ = prompts._
        while offered := [d for d in self._found if d.device_url not in self._used]:
            prompts.say(_("ONVIF cameras found on this network:"))
            for number, device in enumerate(offered, 1):
                prompts.say(f"  {number}. {device.address}  {device.title}")
            prompts.say("  0. " + _("none of these: type a stream address"))
            picked = self._pick(len(offered))
            if picked is None:
                return False
            outcome = self._read(camera, offered[picked])
            if outcome is not None:
                return outcome
        return False

    def _pick(self, count: int) -> int | None:
        _ = self._prompts._
        while True:
            answer = self._prompts.ask(_("Which one? (number)"), "1")
            if answer.isdigit() and 0 <= int(answer) <= count:
                return int(answer) - 1 if int(answer) else None
            self._prompts.say(_("Give a number from 0 to {count}.").format(count=count))

    def _read(self, camera: Camera, device: Offered) -> bool | None:
        """Read the device with the owner's login and fill `camera`: True when done, None
        when the login was refused (pick again), False for the manual path."""
        from agent.onvif import read_device  # lazily, as in _search

        prompts = self._prompts
        _ = prompts._
        username = prompts.ask(_("Its ONVIF user name (empty: none)")) or None
        password = (prompts.secret(_("Its ONVIF password")) or None) if username else None
        prompts.say(_("Reading {address}…").format(address=device.address))
        try:
            reading = read_device(device.device_url, username, password)
        except OnvifNotAuthorized as exc:
            prompts.say(_("{address}: {error}").format(address=device.address, error=shown(exc)))
            return None
        except OnvifError as exc:
            prompts.say(
                _("Cannot read the streams of {address}: {error}").format(
                    address=device.address, error=shown(str(exc), 200)
                )
            )
            prompts.say(_("Type its stream address instead (docs/onvif.md)."))
            return False
        return self._streams(camera, device, reading, username, password)

    def _streams(
        self,
        camera: Camera,
        device: Offered,
        reading: DeviceReading,
        username: str | None,
        password: str | None,
    ) -> bool:
        from agent.onvif import analysis_profile, main_profile

        prompts = self._prompts
        _ = prompts._
        info = reading.info
        title = f"{info.manufacturer} {info.model}".strip() or device.title
        if info.firmware:
            title += ", " + _("firmware {version}").format(version=info.firmware)
        prompts.say(f"{device.address}  {shown(title, 2 * SHOWN_CHARS)}")
        for p in reading.profiles:
            size = f"{p.width}x{p.height}" if p.width and p.height else "?x?"
            prompts.say(
                "  "
                + _("profile {token}: {size} {encoding}").format(
                    token=shown(p.token), size=size, encoding=shown(p.encoding or "?")
                )
            )
        main = main_profile(reading.profiles)
        if main is None or main.uri is None:
            prompts.say(_("It gives no stream address. Type its stream address instead."))
            return False
        try:
            config = CameraConfig.model_validate(
                {"id": camera.id, "onvif": {"url": device.device_url}}
            )
            config.onvif_stream_url(main.uri)  # checked only: the probe adds the login
        except (ValidationError, ValueError) as exc:
            error = str(exc).splitlines()[0]
            prompts.say(_("Its stream cannot be used: {error}").format(error=shown(error, 200)))
            prompts.say(_("Type its stream address instead (docs/onvif.md)."))
            return False
        sub = analysis_profile(reading.profiles)
        prompts.say(
            _("Recorded: profile {token} ({size})").format(
                token=shown(main.token), size=f"{main.width}x{main.height}"
            )
        )
        if sub is not None:
            prompts.say(
                _("Analysed: profile {token} ({size})").format(
                    token=shown(sub.token), size=f"{sub.width}x{sub.height}"
                )
            )
        else:
            prompts.say(_("Analysed: the same stream (the camera has no smaller one)"))
        camera.url = main.uri
        camera.onvif_url = device.device_url
        camera.username, camera.password = username, password
        return True


def shown(text: object, limit: int = SHOWN_CHARS) -> str:
    """A device's text made safe for a terminal: control characters (escape sequences)
    become '?', and it is cut to `limit` characters."""
    flat = "".join(c if c.isprintable() else "?" for c in str(text))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
