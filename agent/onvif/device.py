"""Reading one ONVIF device: who made it (GetDeviceInformation), its clock
(GetSystemDateAndTime), its media profiles (Media GetProfiles) and each profile's stream URI
(GetStreamUri), by onvif-zeep-async's ONVIFService against the WSDL files it ships.

ONVIFCamera, the library's front door, insists on `/onvif/device_service` at a host and
port; owners and discovery hand us the device URL itself (some cameras serve it elsewhere),
so the services are built from that URL directly. Two things ONVIFCamera also does are
done here too: the device's clock offset is read first, without credentials, and folded
into the WS-Security digest's timestamp (cameras refuse a token more than a few minutes
off their own clock, and a camera's clock is often wrong); and the media service's address
comes from GetServices, falling back to GetCapabilities for older firmware.

Every call is bounded by one deadline, and a media service at another host than the device
is refused: the password is sent only to the address the owner or discovery named.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import zeep.exceptions
from lxml import etree
from onvif.client import _WSDL_PATH, ONVIFService
from onvif.definition import SERVICES
from onvif.exceptions import ONVIFError

from agent.errors import OnvifBadAnswer, OnvifError, OnvifNotAuthorized
from agent.onvif.transport import ReplyTooLarge, capped

# How long reading one device may take in all (several requests): a camera on the LAN
# answers each in well under a second; a slow NVR with many channels in a few.
DEVICE_TIMEOUT_S = 10.0
# How long asking for the clock alone may take: one small request on the LAN. A device
# slower than this gives a reading too uncertain to be worth having anyway.
CLOCK_TIMEOUT_S = 5.0
# ONVIF's DateTime carries whole seconds.
_WHOLE_SECOND_S = 1.0
# What the library's own default waits per request (90 s) is far past DEVICE_TIMEOUT_S;
# the deadline above is what bounds a call.
_DEVICE_NS = SERVICES["devicemgmt"]["ns"]
_MEDIA_NS = SERVICES["media"]["ns"]
_DEVICE_BINDING = f"{{{_DEVICE_NS}}}{SERVICES['devicemgmt']['binding']}"
_MEDIA_BINDING = f"{{{_MEDIA_NS}}}{SERVICES['media']['binding']}"
# The stream asked of GetStreamUri: unicast RTP over RTSP, which every camera serves.
_STREAM_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
# The narrowest picture worth analysing: under 320 pixels wide a scene has too few pixels
# for the picture measures and the reference view's features (cameras' third streams,
# 176x144 or so, are for phones), so such a profile is never picked as the sub-stream.
MIN_ANALYSIS_WIDTH = 320
# The encodings the agent's analysis decodes from a sub-stream (ONVIF names them so; Media
# 2 says H265, some firmware HEVC). A JPEG or MPEG-4 profile is left alone.
ANALYSIS_ENCODINGS = frozenset({"H264", "H265", "HEVC"})
# How an ONVIF device says "wrong or no credentials" (ONVIF Core, SOAP fault subcodes).
_NOT_AUTHORIZED = "NotAuthorized"

T = TypeVar("T")


@dataclass(frozen=True)
class DeviceInfo:
    """GetDeviceInformation: who made the device and what it runs."""

    manufacturer: str
    model: str
    firmware: str
    serial: str


@dataclass(frozen=True)
class MediaProfile:
    """One media profile: its video encoder's resolution and codec, and its stream URI."""

    token: str
    name: str
    width: int | None
    height: int | None
    encoding: str | None
    uri: str | None

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


@dataclass(frozen=True)
class DeviceReading:
    """What one device told us; `profiles` is empty when they were not asked for."""

    url: str
    info: DeviceInfo
    clock_offset_s: float | None
    profiles: tuple[MediaProfile, ...] = field(default_factory=tuple)


def read_device(
    url: str,
    username: str | None,
    password: str | None,
    *,
    profiles: bool = True,
    timeout: float = DEVICE_TIMEOUT_S,
) -> DeviceReading:
    """Read one device, within `timeout` seconds. OnvifNotAuthorized when it refuses the
    credentials (or needs some and got none), OnvifError for anything else."""
    return asyncio.run(_bounded(read_device_async(url, username, password, profiles), timeout))


def stream_uri(
    url: str, username: str | None, password: str | None, timeout: float = DEVICE_TIMEOUT_S
) -> str:
    """The stream URI of the device's first highest-resolution profile (its main stream),
    as `cameras[].onvif` without `url` uses it; asked afresh each time, since a firmware
    update may move it."""
    reading = read_device(url, username, password, timeout=timeout)
    best = main_profile(reading.profiles)
    if best is None or not best.uri:
        raise OnvifError("the device reports no media profile with a stream")
    return best.uri


def main_profile(profiles: tuple[MediaProfile, ...]) -> MediaProfile | None:
    """The first profile of the highest resolution among those with a stream URI."""
    usable = [p for p in profiles if p.uri]
    return max(usable, key=lambda p: p.pixels, default=None)


def analysis_profile(profiles: tuple[MediaProfile, ...]) -> MediaProfile | None:
    """The sub-stream to analyse: the lowest-resolution H.264/H.265 profile with a stream
    URI that is at least MIN_ANALYSIS_WIDTH wide and smaller than the main profile; None
    when there is none (the main stream's pictures are then analysed)."""
    main = main_profile(profiles)
    if main is None:
        return None
    smaller = [
        p
        for p in profiles
        if p.uri
        and p.width is not None
        and p.width >= MIN_ANALYSIS_WIDTH
        and (p.encoding or "").upper() in ANALYSIS_ENCODINGS
        and p.pixels < main.pixels
    ]
    return min(smaller, key=lambda p: p.pixels, default=None)


def analysis_stream_uri(
    url: str, username: str | None, password: str | None, timeout: float = DEVICE_TIMEOUT_S
) -> MediaProfile:
    """The profile `analysis_profile` picks, asked afresh each time as `stream_uri` is;
    OnvifError when the device has none to offer."""
    reading = read_device(url, username, password, timeout=timeout)
    picked = analysis_profile(reading.profiles)
    if picked is None or not picked.uri:
        raise OnvifNoSubStream(
            "the device has no smaller H.264 or H.265 profile at least "
            f"{MIN_ANALYSIS_WIDTH} pixels wide to analyse"
        )
    return picked


class OnvifNoSubStream(OnvifError):
    """The device answered, and has no profile `analysis_profile` would pick."""


async def _bounded(call: Awaitable[T], timeout: float) -> T:
    try:
        return await asyncio.wait_for(call, timeout)
    except TimeoutError:
        raise OnvifError(f"no complete answer within {timeout:g} s") from None


async def read_device_async(
    url: str, username: str | None, password: str | None, profiles: bool = True
) -> DeviceReading:
    """As read_device, without the deadline (the caller sets one)."""
    services: list[Any] = []
    try:
        return await _read(url, username, password, profiles, services)
    except _DEVICE_FAILURES as exc:
        raise _translated(exc, username) from None
    finally:
        for service in services:
            await service.close()


async def load_descriptions() -> None:
    """Load the device and media services' WSDL into the library's process-wide cache
    before reading many devices at once: reads started together each load them (some
    0.2 s of CPU apiece) before the first has filled the cache, so 35 devices answering
    discover took 7 s of parsing the same files (measured in the test namespaces)."""
    services: list[Any] = []
    try:
        for binding, name in ((_DEVICE_BINDING, "devicemgmt"), (_MEDIA_BINDING, "media")):
            # No request is sent: setup() only builds the client from the WSDL.
            await _service("http://127.0.0.1/", None, None, None, binding, name, services)
    finally:
        for service in services:
            await service.close()


@dataclass(frozen=True)
class ClockMeasure:
    """A device's clock against this machine's wall clock, at one moment."""

    at: dt.datetime  # this machine's clock, mid-way through the round trip
    offset_s: float  # the device's UTC time minus ours
    uncertainty_s: float  # the true offset lies within offset_s ± this
    said: dt.datetime | None = None  # the UTC time the device gave, as it gave it


def measure_clock(url: str, timeout: float = CLOCK_TIMEOUT_S) -> ClockMeasure:
    """Ask the device for its clock (GetSystemDateAndTime, without credentials, as ONVIF
    lets any client) within `timeout` seconds; OnvifError when it does not tell."""
    return asyncio.run(_bounded(_measure_clock(url), timeout))


async def _measure_clock(url: str) -> ClockMeasure:
    services: list[Any] = []
    try:
        _check_device_url(url)
        device = await _service(url, None, None, None, _DEVICE_BINDING, "devicemgmt", services)
        sent = time.monotonic()
        answer = await device.authless_GetSystemDateAndTime()
        back = time.monotonic()
        wall = dt.datetime.now(dt.UTC)
        when = _utc_of(answer)
        if when is None:
            raise OnvifBadAnswer("did not give a valid UTC date and time")
    except _DEVICE_FAILURES as exc:
        raise _translated(exc, None) from None
    finally:
        for service in services:
            await service.close()
    # The device read its clock somewhere in the round trip: its middle is the best guess,
    # half the round trip the error. It gives whole seconds, cut off, so its clock showed
    # between `when` and a second later: the middle again, and half a second more error.
    half = (back - sent) / 2
    middle = wall - dt.timedelta(seconds=half)
    offset = (when - middle).total_seconds() + _WHOLE_SECOND_S / 2
    return ClockMeasure(middle, offset, half + _WHOLE_SECOND_S / 2, when)


# What read_device and measure_clock translate into OnvifError at the boundary.
_DEVICE_FAILURES = (
    zeep.exceptions.Fault,
    aiohttp.ClientError,
    OSError,
    ReplyTooLarge,
    zeep.exceptions.Error,
    etree.LxmlError,
    ONVIFError,
    ValueError,
)


def _translated(exc: Exception, username: str | None) -> OnvifError:
    """A library's failure as the OnvifError the agent reports."""
    if isinstance(exc, OnvifError):
        return exc
    if isinstance(exc, zeep.exceptions.Fault):
        if _is_not_authorized(exc):
            return OnvifNotAuthorized(_refused(username))
        return OnvifBadAnswer(f"answered with a SOAP fault: {_short(exc.message)}")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return OnvifError(f"cannot be reached: {_short(str(exc)) or type(exc).__name__}")
    if isinstance(exc, ReplyTooLarge):
        return OnvifBadAnswer(str(exc))
    return OnvifBadAnswer(f"answered outside ONVIF: {_short(str(exc))}")


async def _read(
    url: str,
    username: str | None,
    password: str | None,
    profiles: bool,
    services: list[Any],
) -> DeviceReading:
    _check_device_url(url)
    anonymous = await _service(url, None, None, None, _DEVICE_BINDING, "devicemgmt", services)
    offset = await _clock_offset(anonymous)
    if username is None:
        device = anonymous
        call: Callable[[Any, str, dict[str, Any] | None], Awaitable[Any]] = _authless
    else:
        diff = dt.timedelta(seconds=offset) if offset is not None else None
        device = await _service(
            url, username, password, diff, _DEVICE_BINDING, "devicemgmt", services
        )
        call = _with_auth
    info = await call(device, "GetDeviceInformation", None)
    reading = DeviceReading(url, _info(info), offset)
    if not profiles:
        return reading
    media_url = await _media_url(url, anonymous, device, call)
    media = await _service(
        media_url,
        username,
        password,
        dt.timedelta(seconds=offset) if offset is not None and username else None,
        _MEDIA_BINDING,
        "media",
        services,
    )
    found = []
    for profile in await call(media, "GetProfiles", None) or []:
        token = str(profile.token)
        answer = await call(
            media, "GetStreamUri", {"StreamSetup": _STREAM_SETUP, "ProfileToken": token}
        )
        found.append(_profile(profile, answer))
    return DeviceReading(url, reading.info, offset, tuple(found))


async def _service(
    xaddr: str,
    username: str | None,
    password: str | None,
    dt_diff: dt.timedelta | None,
    binding: str,
    name: str,
    services: list[Any],
) -> Any:
    wsdl = f"{_WSDL_PATH}/{SERVICES[name]['wsdl']}"
    service = capped(
        ONVIFService(
            xaddr, username, password, wsdl, no_cache=True, dt_diff=dt_diff, binding_name=binding
        )
    )
    services.append(service)
    await service.setup()
    return service


async def _authless(service: Any, operation: str, params: dict[str, Any] | None) -> Any:
    return await getattr(service, f"authless_{operation}")(params)


async def _with_auth(service: Any, operation: str, params: dict[str, Any] | None) -> Any:
    return await getattr(service, operation)(params)


async def _clock_offset(device: Any) -> float | None:
    """The device's clock minus ours, in seconds; None when it will not tell without
    credentials (some cameras) or tells nonsense."""
    try:
        answer = await device.authless_GetSystemDateAndTime()
    except zeep.exceptions.Fault:
        return None
    when = _utc_of(answer)
    if when is None:
        return None
    return (when - dt.datetime.now(dt.UTC)).total_seconds()


def _utc_of(answer: Any) -> dt.datetime | None:
    """GetSystemDateAndTime's UTC time; None when the answer lacks it or it is nonsense."""
    try:
        utc = answer.UTCDateTime
        return dt.datetime(
            utc.Date.Year,
            utc.Date.Month,
            utc.Date.Day,
            utc.Time.Hour,
            utc.Time.Minute,
            utc.Time.Second,
            tzinfo=dt.UTC,
        )
    except (AttributeError, TypeError, ValueError):
        return None


async def _media_url(
    url: str,
    anonymous: Any,
    device: Any,
    call: Callable[[Any, str, dict[str, Any] | None], Awaitable[Any]],
) -> str:
    """The media service's address: GetServices, else GetCapabilities; on the device's host."""
    found: str | None = None
    try:
        for service in await anonymous.authless_GetServices({"IncludeCapability": False}) or []:
            if getattr(service, "Namespace", None) == _MEDIA_NS:
                found = str(service.XAddr)
                break
    except zeep.exceptions.Fault:
        found = None
    if found is None:
        capabilities = await call(device, "GetCapabilities", {"Category": "Media"})
        media = getattr(capabilities, "Media", None)
        if media is None or not getattr(media, "XAddr", None):
            raise OnvifError("the device has no media service")
        found = str(media.XAddr)
    if not same_host(url, found):
        raise OnvifError(
            f"its media service is at another host ({_short(found)}); not contacted, "
            "so the password goes nowhere else"
        )
    return found


def same_host(url: str, other: str) -> bool:
    """Whether `other` is an http(s) URL on the host of `url` (any port)."""
    try:
        a, b = urlsplit(url), urlsplit(other)
        return (
            b.scheme in ("http", "https") and a.hostname is not None and (a.hostname == b.hostname)
        )
    except ValueError:
        return False


def _check_device_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OnvifError(f"{_short(url)} is not an http:// or https:// device address")


def _info(answer: Any) -> DeviceInfo:
    def text(name: str) -> str:
        value = getattr(answer, name, None)
        return "" if value is None else _short(str(value), 120)

    return DeviceInfo(
        text("Manufacturer"), text("Model"), text("FirmwareVersion"), text("SerialNumber")
    )


def _profile(profile: Any, answer: Any) -> MediaProfile:
    encoder = getattr(profile, "VideoEncoderConfiguration", None)
    resolution = getattr(encoder, "Resolution", None)
    uri = getattr(answer, "Uri", None)
    encoding = getattr(encoder, "Encoding", None)
    return MediaProfile(
        token=_short(str(profile.token), 64),
        name=_short(str(getattr(profile, "Name", "") or ""), 64),
        width=_int(getattr(resolution, "Width", None)),
        height=_int(getattr(resolution, "Height", None)),
        encoding=None if encoding is None else _short(str(encoding), 16),
        uri=None if uri is None else _short(str(uri), 1000),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 < value < 100_000 else None


def _is_not_authorized(fault: zeep.exceptions.Fault) -> bool:
    subcodes = fault.subcodes or []
    if any(getattr(code, "localname", str(code)).endswith(_NOT_AUTHORIZED) for code in subcodes):
        return True
    return "not authorized" in (fault.message or "").lower()


def _refused(username: str | None) -> str:
    if username is None:
        return "needs a user name and password (the camera's ONVIF user)"
    return f"refused the user name {username!r} or its password"


def _short(text: str, limit: int = 200) -> str:
    """A device's text, one line, at most `limit` characters: it ends up on a terminal."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
