"""`camera-agent discover`: the ONVIF cameras on the local network, their maker, model and
firmware, and (given the camera's ONVIF user) each media profile's resolution, codec and
stream URI, for the owner to copy into the config (docs/onvif.md).

Exit codes: 0 when devices answered; EX_NOPERM when a device refused the credentials given;
EX_UNAVAILABLE when nothing answered (with what to check); EX_NOINPUT for an unreadable
password file. A device that answered the probe but broke off, lied or flooded is listed by
its address with what went wrong; the others are still shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli_common import positive
from contract.exit_codes import EX_NOINPUT, EX_NOPERM, EX_UNAVAILABLE

if TYPE_CHECKING:  # imported lazily below (agent/cli.py says why)
    from agent.onvif import Announcement, DeviceReading

NOTHING_FOUND = (
    "No ONVIF device answered. Check that the camera is on the same network as this "
    "machine (not a guest Wi-Fi or another VLAN: they block multicast), that ONVIF is "
    "switched on in the camera's web page, and that no firewall drops UDP port 3702. "
    "You can also put the camera's device address in the config by hand: "
    "cameras[].onvif.url (docs/onvif.md)."
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    discover = commands.add_parser(
        "discover", help="find ONVIF cameras on the local network and show their streams"
    )
    discover.add_argument("--username", metavar="U", help="the cameras' ONVIF user")
    discover.add_argument(
        "--password-file",
        type=Path,
        metavar="F",
        help="a file holding that user's password (never on the command line)",
    )
    discover.add_argument(
        "--timeout",
        type=positive,
        default=None,
        metavar="S",
        help="seconds to wait for answers (default 3)",
    )
    discover.add_argument("--json", action="store_true", help="print one JSON document")
    discover.set_defaults(func=_discover)


@dataclass(frozen=True)
class Found:
    """One answering device: its announcement, and what reading it gave or why it failed."""

    announcement: Announcement
    reading: DeviceReading | None
    problem: str | None
    needs_credentials: bool
    refused: bool


def _discover(args: argparse.Namespace) -> int:
    # Lazily (agent/cli.py says why): zeep, lxml, aiohttp and WSDiscovery.
    from agent.onvif import DISCOVERY_TIMEOUT_S, discover

    password: str | None = None
    if args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            print(
                f"camera-agent discover: cannot read {args.password_file}: {exc}", file=sys.stderr
            )
            return EX_NOINPUT
        if args.username is None:
            print("camera-agent discover: --password-file needs --username", file=sys.stderr)
            return EX_NOINPUT
    timeout = args.timeout if args.timeout is not None else DISCOVERY_TIMEOUT_S
    announcements = discover(timeout)
    found = _read_all(announcements, args.username, password)
    if args.json:
        print(json.dumps(_document(found), indent=2))
    elif found:
        print(_describe(found, args.username is not None))
    if not found:
        print(f"camera-agent discover: {NOTHING_FOUND}", file=sys.stderr)
        return EX_UNAVAILABLE
    if any(f.refused for f in found):
        return EX_NOPERM
    return 0


def _read_all(
    announcements: list[Announcement], username: str | None, password: str | None
) -> list[Found]:
    """Reads every announced device at once, each within its own deadline."""
    import asyncio

    from agent.errors import OnvifError, OnvifNotAuthorized
    from agent.onvif import DEVICE_TIMEOUT_S, load_descriptions, read_device_async

    async def one(announcement: Announcement) -> Found:
        url = announcement.device_url()
        if url is None:
            shown = ", ".join(announcement.xaddrs) or "no address"
            problem = f"announced a device address not on its own host ({shown}); not contacted"
            return Found(announcement, None, _printable(problem), False, False)
        try:
            reading = await asyncio.wait_for(
                read_device_async(url, username, password), DEVICE_TIMEOUT_S
            )
        except TimeoutError:
            problem = f"no complete answer within {DEVICE_TIMEOUT_S:g} s"
            return Found(announcement, None, problem, False, False)
        except OnvifNotAuthorized as exc:
            return Found(announcement, None, str(exc), username is None, username is not None)
        except OnvifError as exc:
            return Found(announcement, None, str(exc), False, False)
        return Found(announcement, reading, None, False, False)

    async def every() -> list[Found]:
        await load_descriptions()  # once, not once per device (its docstring says why)
        return list(await asyncio.gather(*(one(a) for a in announcements)))

    return asyncio.run(every()) if announcements else []


def _describe(found: list[Found], with_credentials: bool) -> str:
    count = len(found)
    lines = [f"Found {count} ONVIF device{'s' if count != 1 else ''}:"]
    for item in found:
        a = item.announcement
        reading = item.reading
        lines.append("")
        if reading is not None and (reading.info.manufacturer or reading.info.model):
            info = reading.info
            title = f"{info.manufacturer} {info.model}".strip()
            if info.firmware:
                title += f", firmware {info.firmware}"
        else:
            title = " ".join(x for x in (a.name, a.hardware) if x) or "ONVIF device"
        lines.append(f"  {a.address}  {_printable(title)}")
        url = a.device_url()
        if url is not None:
            lines.append(f"    device: {_printable(url)}")
        if item.needs_credentials:
            lines.append(
                "    needs a user name and password: run again with --username and "
                "--password-file (the camera's ONVIF user, see docs/onvif.md)"
            )
        elif item.problem is not None:
            lines.append(f"    problem: {_printable(item.problem)}")
        if reading is not None:
            for p in reading.profiles:
                size = f"{p.width}x{p.height}" if p.width and p.height else "?x?"
                lines.append(
                    f"    profile {_printable(p.token)}: {size} {_printable(p.encoding or '?')}  "
                    f"{_printable(p.uri or '(no stream URI)')}"
                )
    if not with_credentials and any(f.needs_credentials for f in found):
        lines.append("")
        lines.append("Profiles and stream addresses need the camera's ONVIF user.")
    return "\n".join(lines)


def _document(found: list[Found]) -> dict[str, Any]:
    """The `--json` document; its shape is in docs/onvif.md."""
    devices = []
    for item in found:
        a = item.announcement
        reading = item.reading
        info = reading.info if reading is not None else None
        devices.append(
            {
                "address": a.address,
                "device_url": a.device_url(),
                "xaddrs": list(a.xaddrs),
                "name": a.name,
                "hardware": a.hardware,
                "manufacturer": info.manufacturer if info else None,
                "model": info.model if info else None,
                "firmware": info.firmware if info else None,
                "serial": info.serial if info else None,
                "clock_offset_s": reading.clock_offset_s if reading else None,
                "needs_credentials": item.needs_credentials,
                "error": None if item.needs_credentials else item.problem,
                "profiles": [
                    {
                        "token": p.token,
                        "name": p.name,
                        "width": p.width,
                        "height": p.height,
                        "encoding": p.encoding,
                        "uri": p.uri,
                    }
                    for p in (reading.profiles if reading else ())
                ],
            }
        )
    return {"devices": devices}


def _printable(text: str) -> str:
    """A device's text made safe for a terminal: no control characters or escapes."""
    return "".join(c if c.isprintable() else "?" for c in text)
