"""The pictures of docs/quality.md: for each problem, a correct picture beside a defective one.

Made from OpenCV's sample photographs (opencv-doc, Apache-2.0 AND BSD-3-Clause per
Debian's copyright file), the same way as the real-picture corpus makes its clips
(tests/support/real_corpus.py): the correct picture is a hard case that must not be
reported, the defective one the defect at clear strength.

    PYTHONPATH=. .venv/bin/python bench/quality_pictures.py [--out docs/quality]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from demo.scene import DEFECTS, SCENE_CHANGE_PAN, defect
from tests.support.real_corpus import PhotoSource, infrared_view, night_view
from tests.support.real_pictures import real_pictures

WIDTH, HEIGHT = 320, 180  # each half of a pair
STREET = "leuvenA.jpg"
COLOURFUL = "graf1.png"
Frame = np.ndarray


def pairs(street: PhotoSource, colourful: PhotoSource) -> dict[str, tuple[Frame, Frame, str, str]]:
    """problem -> (correct, defective, caption of each)."""
    rng = np.random.default_rng(7)
    view = street.view(0.0)

    def spoilt(name: str, variant: str | None = None, source: Frame = view) -> Frame:
        spoil: Callable[..., Frame] = defect(name, variant)
        return spoil(source, 1.0, rng)

    night = night_view(view, 3.0, 1, rng)
    return {
        "blurred": (view, spoilt("blurred"), "in focus", "defocused"),
        "too_dark": (night, spoilt("too_dark"), "night street, lamps", "underexposed"),
        "too_bright": (view, spoilt("too_bright"), "bright day", "overexposed"),
        "low_contrast": (night, spoilt("low_contrast"), "dim, but dark darks", "fog / dirty dome"),
        "covered": (night, spoilt("covered", "hand"), "dark street", "a hand over the lens"),
        "colour_cast": (
            colourful.view(0.0),
            spoilt("colour_cast", "magenta"),
            "colourful wall",
            "IR-cut filter stuck (magenta)",
        ),
        "noisy": (
            infrared_view(view),
            spoilt("noisy"),
            "infrared at night",
            "sensor gain too high",
        ),
        "scene_changed": (
            view,
            street.view(0.0, SCENE_CHANGE_PAN["clear"]),
            "reference view",
            "camera turned",
        ),
    }


def caption(picture: Frame, text: str) -> Frame:
    small = cv2.resize(picture, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    out = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    cv2.rectangle(out, (0, HEIGHT - 20), (WIDTH, HEIGHT), (0, 0, 0), -1)
    cv2.putText(out, text, (6, HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/quality"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    folder = real_pictures()
    street = PhotoSource(folder / STREET, 640, 360, 10)
    colourful = PhotoSource(folder / COLOURFUL, 640, 360, 10)
    assert set(pairs(street, colourful)) >= set(DEFECTS)
    for problem, (good, bad, good_text, bad_text) in pairs(street, colourful).items():
        row = np.hstack([caption(good, f"ok: {good_text}"), caption(bad, f"{problem}: {bad_text}")])
        path = args.out / f"{problem}.jpg"
        cv2.imwrite(str(path), row, [cv2.IMWRITE_JPEG_QUALITY, 80])
        print(path)


if __name__ == "__main__":
    main()
