"""Owner messages in Dutch and English; the browser's language wins where it says so."""

from __future__ import annotations

import pytest

from agent.i18n import negotiate, translator


def test_dutch_catalogue_is_used_and_unknown_messages_stay_english() -> None:
    nl = translator("nl")
    assert nl("camera") == "camera"
    assert nl("a message nobody translated") == "a message nobody translated"
    assert translator("en")("camera") == "camera"


def test_an_unsupported_locale_falls_back_to_english() -> None:
    assert translator("fr").locale == "en"


@pytest.mark.parametrize(
    ("header", "fallback", "chosen"),
    [
        ("nl-NL,nl;q=0.9,en;q=0.8", "en", "nl"),
        ("en-GB,en;q=0.9,nl;q=0.8", "nl", "en"),
        ("fr-FR, nl;q=0.5", "en", "nl"),
        ("de, fr", "nl", "nl"),
        ("nl;q=0, en;q=0.1", "nl", "en"),
        ("nl;q=bad", "en", "en"),
        (None, "nl", "nl"),
        ("", "en", "en"),
    ],
)
def test_negotiate(header: str | None, fallback: str, chosen: str) -> None:
    assert negotiate(header, fallback) == chosen
