"""The police search at a moment, over a time range, or along a route: each camera that
could have seen the point, with its state then, the DORI level it reaches at the point's
distance, whether its footage is still held now, ranked by how useful it is likely to be.

Which cameras could see the point is search.py's geometry (the same view cone and
prefilter as the search "now"); what each was like then is history.py's judgement of its
intervals. Two queries per point: the cameras near it (the (lat, lon) index), then the
intervals of the few that see it reaching into the searched time (the (agent, camera,
end_ts) index).

Ranking: usefulness of the state over the time (history.USEFULNESS, weighted by how long
each state lasted) x the weight of its DORI level at that distance x a discount when its
footage is no longer held. A camera with no usable footage in the whole time (failed,
offline, a recording gap, not recording) is not a candidate: it is listed apart as
`excluded`, with its state, so the officer knows why not to ask its owner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, tuple_

from registry.db.schema import camera_intervals, cameras
from registry.ingest.intervals import KIND_GAP, KIND_RUN, KIND_STATE
from registry.judgement import judged
from registry.police import search
from registry.police.history import CameraHistory, Piece, judge_range

__all__ = [
    "DORI_WEIGHT",
    "MAX_RANGE_S",
    "MAX_ROUTE_POINTS",
    "RankedMatch",
    "RouteStop",
    "SearchResult",
    "search_at",
    "search_route",
]

# Weight of what the camera can make of a person at the point (IEC 62676-4 levels): to
# identify is what a detective needs most; beyond "detect" it may still show a car or a
# direction. A camera that reported no DORI distances is weighed as "detect".
DORI_WEIGHT = {"identify": 1.0, "recognise": 0.7, "observe": 0.45, "detect": 0.25, None: 0.1}
UNKNOWN_DORI_WEIGHT = 0.25
# Footage no longer held can only be asked for if the owner kept a copy.
NOT_HELD_FACTOR = 0.1
# A search covers at most a day ("between 02:00 and 04:00" is the usual question): longer
# ranges belong to a different tool than a search that answers in milliseconds.
MAX_RANGE_S = 24 * 3600.0
# A route (a suspect's path) of more points is several searches.
MAX_ROUTE_POINTS = 100
# At most this many pieces of a camera's timeline are returned (the rest merged away).
MAX_TIMELINE = 50


@dataclass(frozen=True)
class RankedMatch:
    """A camera that could have seen the point, with its state over the searched time."""

    camera: search.CameraMatch
    state: str  # the most useful state within the time (history.USEFULNESS keys)
    problems: tuple[str, ...]
    footage: str  # recorded | live | gap | none | unknown, with `state`
    dori_level: str | None  # at the point's distance
    footage_held: bool  # some of the searched time is still within the footage held now
    usefulness: float  # 0..1, share of the time with usable footage (weighted)
    score: float
    timeline: tuple[Piece, ...]


@dataclass(frozen=True)
class SearchResult:
    cameras: list[RankedMatch]
    excluded: list[RankedMatch]


@dataclass(frozen=True)
class RouteStop:
    lat: float
    lon: float
    start: float
    end: float


def _check_times(start: float, end: float, now: float) -> None:
    for name, value in (("start", start), ("end", end)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite time")
    if end < start:
        raise ValueError("the time range ends before it starts")
    if end - start > MAX_RANGE_S:
        raise ValueError(f"the time range is longer than {MAX_RANGE_S / 3600:.0f} hours")


_COLUMNS = (
    *search.MATCH_COLUMNS,
    cameras.c.report_ts,
    cameras.c.state_start,
    cameras.c.state_code,
    cameras.c.state_problems,
    cameras.c.run_start,
)


def _seeing(
    connection: Connection, lat: float, lon: float, radius: float
) -> list[tuple[search.CameraMatch, Any]]:
    rows = connection.execute(select(*_COLUMNS).where(search.near_clause(lat, lon, radius))).all()
    found = []
    for row in rows:
        if row.lat is None or row.lon is None:
            continue
        view = search.CameraView(row.lat, row.lon, row.bearing_deg, row.fov_deg, row.range_m)
        if not search.sees(view, lat, lon, radius_m=radius):
            continue
        match = search.CameraMatch(
            agent_id=row.agent_id,
            camera_id=row.camera_id,
            name=row.name,
            lat=row.lat,
            lon=row.lon,
            distance_m=search.distance_m(row.lat, row.lon, lat, lon),
            bearing_to_point=search.initial_bearing_deg(row.lat, row.lon, lat, lon),
            status=judged(row.status, row.health_json).status,
            footage_oldest=row.footage_oldest,
            footage_newest=row.footage_newest,
            dori=search.parse_dori(row.dori_json),
            bearing_deg=row.bearing_deg,
            fov_deg=row.fov_deg,
            range_m=row.range_m,
            view_known=view.direction_known,
            footage_known=row.footage_oldest is not None and row.footage_newest is not None,
        )
        found.append((match, row))
    return found


def _histories(
    connection: Connection, rows: Sequence[Any], start: float, end: float
) -> dict[tuple[str, str], CameraHistory]:
    histories = {
        (row.agent_id, row.camera_id): CameraHistory(
            state_start=row.state_start,
            # The open intervals end at the newest report and its newest footage.
            state_end=row.report_ts if row.state_start is not None else None,
            state_code=row.state_code,
            state_problems=row.state_problems,
            run_start=row.run_start,
            run_end=row.footage_newest if row.run_start is not None else None,
            footage_oldest=row.footage_oldest,
            footage_newest=row.footage_newest,
        )
        for row in rows
    }
    if not histories:
        return histories
    i = camera_intervals.c
    query = select(
        i.agent_id, i.camera_id, i.kind, i.start_ts, i.end_ts, i.status, i.problems
    ).where(
        tuple_(i.agent_id, i.camera_id).in_(sorted(histories)),
        i.end_ts >= start,
        i.start_ts <= end,
    )
    for r in connection.execute(query):
        h = histories[(r.agent_id, r.camera_id)]
        if r.kind == KIND_STATE:
            h.states.append((r.start_ts, r.end_ts, r.status, r.problems or 0))
        elif r.kind == KIND_RUN:
            h.runs.append((r.start_ts, r.end_ts))
        elif r.kind == KIND_GAP:
            h.gaps.append((r.start_ts, r.end_ts))
    return histories


def _held(match: search.CameraMatch, pieces: Sequence[Piece]) -> bool:
    """Whether footage of the searched time that was recorded is still held now."""
    oldest, newest = match.footage_oldest, match.footage_newest
    if oldest is None:
        return False
    for piece in pieces:
        if piece.verdict.usefulness == 0:
            continue
        if piece.end >= oldest and (
            piece.verdict.footage == "live" or newest is None or piece.start <= newest
        ):
            return True
    return False


def _rank(match: search.CameraMatch, pieces: list[Piece], start: float, end: float) -> RankedMatch:
    length = end - start
    if length <= 0:
        usefulness = pieces[0].verdict.usefulness
    else:
        usefulness = sum(p.verdict.usefulness * (p.end - p.start) for p in pieces) / length
    best = max(pieces, key=lambda p: (p.verdict.usefulness, p.end - p.start))
    level = search.dori_level(match.dori, match.distance_m)
    weight = DORI_WEIGHT[level] if match.dori else UNKNOWN_DORI_WEIGHT
    held = _held(match, pieces)
    score = usefulness * weight * (1.0 if held else NOT_HELD_FACTOR)
    return RankedMatch(
        camera=match,
        state=best.verdict.state,
        problems=best.verdict.problems,
        footage=best.verdict.footage,
        dori_level=level,
        footage_held=held,
        usefulness=round(usefulness, 4),
        score=round(score, 4),
        timeline=tuple(pieces[:MAX_TIMELINE]),
    )


def _search(
    connection: Connection,
    lat: float,
    lon: float,
    start: float,
    end: float,
    radius: float,
    now: float,
) -> SearchResult:
    seeing = _seeing(connection, lat, lon, radius)
    histories = _histories(connection, [row for _, row in seeing], start, end)
    ranked: list[RankedMatch] = []
    excluded: list[RankedMatch] = []
    for match, row in seeing:
        pieces = judge_range(histories[(row.agent_id, row.camera_id)], start, end, now)
        result = _rank(match, pieces, start, end)
        (ranked if result.usefulness > 0 else excluded).append(result)
    ranked.sort(
        key=lambda m: (-m.score, m.camera.distance_m, m.camera.agent_id, m.camera.camera_id)
    )
    excluded.sort(key=lambda m: (m.camera.distance_m, m.camera.agent_id, m.camera.camera_id))
    return SearchResult(ranked, excluded)


def search_at(
    engine: Engine,
    lat: object,
    lon: object,
    start: float,
    end: float | None = None,
    *,
    now: float,
    radius_m: float = search.DEFAULT_RADIUS_M,
) -> SearchResult:
    """The cameras that could have seen (lat, lon) at `start` (or from `start` to `end`),
    epoch seconds; ValueError naming a bad coordinate, radius or time range."""
    point_lat, point_lon = search.check_point(lat, lon)
    radius = search.check_radius(radius_m)
    end = start if end is None else end
    _check_times(start, end, now)
    with engine.connect() as connection:
        return _search(connection, point_lat, point_lon, start, end, radius, now)


def search_route(
    engine: Engine,
    stops: Sequence[RouteStop],
    *,
    now: float,
    radius_m: float = search.DEFAULT_RADIUS_M,
) -> list[SearchResult]:
    """One search per stop of a route, on one connection; ValueError naming the stop."""
    if not stops:
        raise ValueError("route: at least one point")
    if len(stops) > MAX_ROUTE_POINTS:
        raise ValueError(f"route: at most {MAX_ROUTE_POINTS} points, not {len(stops)}")
    radius = search.check_radius(radius_m)
    checked = []
    for n, stop in enumerate(stops):
        try:
            lat, lon = search.check_point(stop.lat, stop.lon)
            _check_times(stop.start, stop.end, now)
        except ValueError as exc:
            raise ValueError(f"route[{n}]: {exc}") from None
        checked.append(RouteStop(lat, lon, stop.start, stop.end))
    with engine.connect() as connection:
        return [_search(connection, s.lat, s.lon, s.start, s.end, radius, now) for s in checked]
