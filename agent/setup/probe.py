"""The live probe of a camera as its address is entered: watched for a few seconds with
`probe`, and what came said back in plain words, so a wrong address can be typed again."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from agent.errors import StreamError
from agent.i18n import Translator
from agent.probe import run_probe
from agent.quality.assess import Health
from agent.setup.answers import Camera
from agent.setup.prompts import Prompts

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


def probe(prompts: Prompts, camera: Camera, seconds: float) -> bool:
    """Watch the stream and say what came; False when the owner types it again."""
    _ = prompts._
    prompts.say(
        _("Watching {url} for {seconds} seconds…").format(url=camera.url, seconds=f"{seconds:g}")
    )
    try:
        health = run_probe(stream_url(camera), seconds, None)
    except StreamError as exc:
        prompts.say(_("Cannot open it: {error}").format(error=exc))
        return not prompts.yes(_("Enter the address again?"), default=True)
    for line in plain_words(health, _):
        prompts.say("  " + line)
    return not prompts.yes(_("Enter the address again?"), default=health.status == "offline")


def plain_words(health: Health, _: Translator) -> list[str]:
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


def stream_url(camera: Camera) -> str:
    """The address with its login inserted, for probing only (never shown or logged)."""
    if camera.username is None:
        return camera.url
    parts = urlsplit(camera.url)
    userinfo = quote(camera.username, safe="")
    if camera.password is not None:
        userinfo += ":" + quote(camera.password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
