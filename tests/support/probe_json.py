"""`camera-agent probe --json` on a labelled clip, the daemon's way, as the corpus tests run it."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

from agent.cli import main
from tests.support.corpus import Clip
from tests.support.schemas import assert_valid


def probe(clip: Clip) -> dict[str, Any]:
    """The health object probe prints for `clip`: one keyframe a second, against the
    clip's reference view; checked against the health schema."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            [
                "probe",
                str(clip.path),
                "--json",
                "--interval",
                "1",
                "--reference",
                str(clip.reference),
            ]
        )
    assert code == 0
    health: dict[str, Any] = json.loads(out.getvalue())
    assert_valid("health", health)
    return health
