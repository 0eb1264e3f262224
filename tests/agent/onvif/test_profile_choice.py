"""Which of a device's media profiles is recorded (the largest) and which analysed (the
smallest H.264/H.265 one at least 320 pixels wide, when smaller than the largest)."""

from __future__ import annotations

import pytest

from agent.onvif import MediaProfile, analysis_profile, main_profile


def profile(
    token: str, width: int | None, height: int | None, encoding: str | None = "H264"
) -> MediaProfile:
    return MediaProfile(token, token, width, height, encoding, f"rtsp://cam/{token}")


MAIN = profile("main", 1920, 1080)
SUB = profile("sub", 640, 360)


@pytest.mark.parametrize(
    ("profiles", "recorded", "analysed"),
    [
        ((MAIN, SUB), "main", "sub"),
        ((SUB, MAIN), "main", "sub"),  # order does not matter
        ((MAIN,), "main", None),  # one profile: the main stream is analysed
        ((MAIN, profile("third", 176, 144), SUB), "main", "sub"),  # too small to judge
        ((MAIN, profile("third", 320, 180), SUB), "main", "third"),  # just wide enough
        ((MAIN, profile("mjpeg", 640, 360, "JPEG")), "main", None),  # not decoded for analysis
        ((MAIN, profile("hevc", 640, 360, "H265")), "main", "hevc"),
        ((MAIN, profile("unknown", None, None)), "main", None),  # no size given
        ((MAIN, profile("same", 1920, 1080)), "main", None),  # not smaller
        ((MAIN, MediaProfile("nouri", "nouri", 640, 360, "H264", None)), "main", None),
        ((), None, None),
    ],
)
def test_profile_choice(
    profiles: tuple[MediaProfile, ...], recorded: str | None, analysed: str | None
) -> None:
    main = main_profile(profiles)
    assert (main.token if main else None) == recorded
    sub = analysis_profile(profiles)
    assert (sub.token if sub else None) == analysed
