"""Messages for owners in their language: English source strings looked up in gettext
catalogues (`agent/locale/<lang>/LC_MESSAGES/camera-agent.po`).

The catalogues are kept as .po text (reviewable in git, editable by translators) and
compiled in memory with Babel when first used, so there is no build step and no binary
.mo file to keep in step. English is the source language and needs no catalogue."""

from __future__ import annotations

import functools
import gettext
import io
import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

DOMAIN = "camera-agent"
LOCALE_DIR = Path(__file__).parent / "locale"
SUPPORTED = ("en", "nl")
DEFAULT = "en"


class Translator:
    """gettext for one language; unknown messages come back in English."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._translations = _load(locale)

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._translations.ngettext(singular, plural, n)

    __call__ = gettext


@functools.cache
def translator(locale: str) -> Translator:
    """The translator for `locale` ("nl", "en"); an unsupported one falls back to English."""
    if locale not in SUPPORTED:
        log.warning("no messages in %r; using English", locale)
        locale = DEFAULT
    return Translator(locale)


def _load(locale: str) -> gettext.NullTranslations:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == DEFAULT or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def negotiate(accept_language: str | None, fallback: str = DEFAULT) -> str:
    """The best supported language for a browser's Accept-Language header (RFC 9110
    quality values), else `fallback`."""
    if not accept_language:
        return fallback
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = tag.strip().lower().split("-")[0]
        if language in SUPPORTED and quality > 0:
            choices.append((-quality, index, language))
    return min(choices)[2] if choices else fallback
