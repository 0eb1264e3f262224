"""What one file of the owner's recorder says about its footage: when it starts (its name read
against `recording.pattern`), how long it lasts (its container's duration), and where the
holes between such files are. Pure reading: the folder scan is directory.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av

from agent.errors import AgentError
from agent.recording.plain_file import open_plain

# File names have whole seconds and a container's duration ends with its last frame, so
# back-to-back files of an unbroken recording sit up to about a second apart.
GAP_TOLERANCE_S = 2.0
# A file starts before it is last written: of the two readings of a local-time name in
# the hour a daylight-saving change repeats, the later one that is not past the mtime
# (give or take this much clock jitter between recorder and disk) is the true one.
_NAME_AFTER_MTIME_SLACK = timedelta(minutes=1)
# A name outside these years says nothing true about a recording (a recorder whose clock
# was reset names files in 1970, inside), and near datetime's own limits (years 1 and
# 9999) the conversion to UTC and the file's end would overflow: such a file is timed by
# its mtime, like one whose name does not match.
_NAMED_YEARS = range(1900, 9000)


class NotAVideo(AgentError):
    """A file in the recorder's folder that PyAV cannot read as video."""


def gaps_between(
    spans: Sequence[tuple[datetime, datetime]], tolerance_s: float = GAP_TOLERANCE_S
) -> list[tuple[datetime, datetime]]:
    """The holes longer than `tolerance_s` between time spans (in any order, may overlap)."""
    holes: list[tuple[datetime, datetime]] = []
    reach: datetime | None = None
    for start, end in sorted(spans):
        if reach is not None and (start - reach).total_seconds() > tolerance_s:
            holes.append((reach, start))
        reach = end if reach is None else max(reach, end)
    return holes


def container_seconds(path: Path) -> float | None:
    """The duration a video file's container declares (header only), or None if it does
    not say; raises NotAVideo when PyAV cannot open it or it has no video stream."""
    try:
        with open_plain(path) as fh, av.open(fh, "r") as container:
            if not container.streams.video:
                raise NotAVideo("it has no video stream")
            duration = container.duration
    except (av.FFmpegError, OSError) as exc:
        raise NotAVideo(f"not a video PyAV can read: {exc.strerror or exc}") from exc
    if duration is None or duration <= 0:
        return None
    return duration / av.time_base


def start_from_name(relative: str, pattern: str, mtime: datetime) -> datetime | None:
    """The UTC start a file's path (relative to the folder, '/'-separated) names, or None
    when it does not match the pattern. Names without %z are the machine's local time; in
    the hour a daylight-saving change repeats, the reading that fits the mtime wins."""
    try:
        named = datetime.strptime(relative, pattern)
    except ValueError:
        return None
    if named.year not in _NAMED_YEARS:
        return None
    if named.tzinfo is not None:
        return named.astimezone(UTC)
    readings = sorted({named.replace(fold=fold).astimezone(UTC) for fold in (0, 1)})
    fitting = [r for r in readings if r <= mtime + _NAME_AFTER_MTIME_SLACK]
    return fitting[-1] if fitting else readings[0]


def _suffix(pattern: str) -> str:
    """The file-name suffix a pattern fixes ('.mp4'), or '' when it ends in a field."""
    suffix = Path(pattern.rsplit("/", 1)[-1]).suffix
    return "" if "%" in suffix else suffix.lower()
