"""Which registered cameras could have seen a point at a moment: the police search.

A camera could have seen the point when
- the point lies within its view: distance at most `range_m` and the bearing from the
  camera to the point within `bearing_deg` ± `fov_deg`/2 (wrapping at north). What the
  camera did not report is assumed: an unknown range counts as the search radius, an
  unknown bearing or field of view as "all around"; and
- its footage covers the moment (`footage_oldest` <= T <= `footage_newest` from its newest
  health report). A camera with no footage information is left out unless asked for
  (`include_unknown_footage`), then marked `footage_known=False`: the officer may still
  ask its owner, but should not expect footage.
The camera's current status is reported, not used: a camera that failed today may hold
yesterday's footage.

The database does the prefilter: a bounding box on the (lat, lon) index, as large as the
largest reach (SEARCH_CAP_M), then each row's own reach box and the footage times, so only
the few rows that may match come back; the exact geometry runs here on those.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, case, or_, select

from registry.db.schema import cameras
from registry.judgement import judged

__all__ = [
    "DEFAULT_RADIUS_M",
    "MATCH_COLUMNS",
    "SEARCH_CAP_M",
    "CameraMatch",
    "CameraView",
    "check_point",
    "check_radius",
    "distance_m",
    "dori_level",
    "find_cameras",
    "initial_bearing_deg",
    "near_clause",
    "parse_dori",
    "sees",
    "view_polygon",
]

# Mean Earth radius (IUGG); the spherical error is a few metres per kilometre at most.
EARTH_RADIUS_M = 6_371_008.8
# No camera is believed to see further than this (DORI "detect" for long lenses is a few
# hundred metres); larger reported ranges are clamped to it. It bounds the prefilter box.
SEARCH_CAP_M = 1000.0
# registry/config.py `search_radius_m` default: how far a camera with unknown view sees.
DEFAULT_RADIUS_M = 30.0
# Below any location's precision the direction to the point is meaningless: seen.
AT_CAMERA_M = 1.0
# The prefilter box is widened this much so rounding never drops a camera on its edge.
BOX_MARGIN = 1.01
# About 0.4 mm at a kilometre: far below any location's precision.
EDGE_TOLERANCE_DEG = 1e-6
DORI_LEVELS = ("detect", "observe", "recognise", "identify")
# Spacing of the arc points of a view cone on the map.
ARC_STEP_DEG = 5.0


# --- input ------------------------------------------------------------------------------


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return number


def check_point(lat: object, lon: object) -> tuple[float, float]:
    """The point as floats; ValueError naming the coordinate that is not one."""
    lat_f, lon_f = _finite("lat", lat), _finite("lon", lon)
    if not -90.0 <= lat_f <= 90.0:
        raise ValueError(f"lat must be between -90 and 90, not {lat_f}")
    if not -180.0 <= lon_f <= 180.0:
        raise ValueError(f"lon must be between -180 and 180, not {lon_f}")
    return lat_f, lon_f


def check_radius(radius_m: object) -> float:
    radius = _finite("radius_m", radius_m)
    if not 0 < radius <= SEARCH_CAP_M:
        raise ValueError(f"radius_m must be more than 0 and at most {SEARCH_CAP_M:.0f} m")
    return radius


def _epoch(at: datetime | float) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("the moment needs a time zone (UTC)")
        return at.timestamp()
    return _finite("time", at)


# --- geometry ---------------------------------------------------------------------------


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def initial_bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Compass bearing from the first point towards the second, [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def angle_between_deg(a: float, b: float) -> float:
    """The smaller angle between two bearings, [0, 180]: 350 and 10 are 20 apart."""
    difference = abs(a - b) % 360.0
    return 360.0 - difference if difference > 180.0 else difference


def destination(lat: float, lon: float, bearing_deg: float, meters: float) -> tuple[float, float]:
    """The point `meters` away along `bearing_deg`, longitude in [-180, 180)."""
    p1, l1 = math.radians(lat), math.radians(lon)
    theta, delta = math.radians(bearing_deg), meters / EARTH_RADIUS_M
    p2 = math.asin(
        math.sin(p1) * math.cos(delta) + math.cos(p1) * math.sin(delta) * math.cos(theta)
    )
    l2 = l1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(p1),
        math.cos(delta) - math.sin(p1) * math.sin(p2),
    )
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


@dataclass(frozen=True)
class CameraView:
    """Where a camera is and looks, as reported; None where the agent did not say."""

    lat: float
    lon: float
    bearing_deg: float | None = None
    fov_deg: float | None = None
    range_m: float | None = None

    @property
    def direction_known(self) -> bool:
        return _usable(self.bearing_deg) and _usable(self.fov_deg) and (self.fov_deg or 0.0) > 0

    def reach_m(self, radius_m: float) -> float:
        """How far it is taken to see: its range, clamped to the cap, or else the radius."""
        if _usable(self.range_m) and (self.range_m or 0.0) > 0:
            return min(float(self.range_m or 0.0), SEARCH_CAP_M)
        return radius_m


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def sees(view: CameraView, lat: float, lon: float, *, radius_m: float = DEFAULT_RADIUS_M) -> bool:
    """Whether the point lies within the camera's view (or its assumed circle)."""
    distance = distance_m(view.lat, view.lon, lat, lon)
    return _sees(view, distance, lat, lon, radius_m)


def _sees(view: CameraView, distance: float, lat: float, lon: float, radius_m: float) -> bool:
    if distance > view.reach_m(radius_m):
        return False
    if distance <= AT_CAMERA_M or not view.direction_known:
        return True
    assert view.bearing_deg is not None and view.fov_deg is not None
    if view.fov_deg >= 360.0:
        return True
    toward = initial_bearing_deg(view.lat, view.lon, lat, lon)
    # A point on the cone's edge counts as seen, whatever the rounding of the bearing.
    return angle_between_deg(toward, view.bearing_deg) <= view.fov_deg / 2 + EDGE_TOLERANCE_DEG


def view_polygon(
    view: CameraView, *, radius_m: float = DEFAULT_RADIUS_M, step_deg: float = ARC_STEP_DEG
) -> list[tuple[float, float]]:
    """The area `sees` accepts, as (lat, lon) points for the map: the camera, then the arc of
    its view cone; a circle around the camera when its direction is unknown."""
    reach = view.reach_m(radius_m)
    if not view.direction_known or (view.fov_deg or 0.0) >= 360.0:
        steps = max(8, math.ceil(360.0 / step_deg))
        return [destination(view.lat, view.lon, 360.0 * i / steps, reach) for i in range(steps)]
    assert view.bearing_deg is not None and view.fov_deg is not None
    steps = max(1, math.ceil(view.fov_deg / step_deg))
    first = view.bearing_deg - view.fov_deg / 2
    arc = [
        destination(view.lat, view.lon, (first + view.fov_deg * i / steps) % 360.0, reach)
        for i in range(steps + 1)
    ]
    return [(view.lat, view.lon), *arc]


# --- the database search -----------------------------------------------------------------


@dataclass(frozen=True)
class CameraMatch:
    """A camera that could have seen the point, with what the map and the officer need."""

    agent_id: str
    camera_id: str
    name: str | None
    lat: float
    lon: float
    distance_m: float
    bearing_to_point: float  # from the camera towards the point, degrees from north
    # now, not at the moment searched; `pending` for an ok camera whose picture is not
    # judged yet (registry/judgement.py)
    status: str | None
    footage_oldest: float | None  # epoch seconds
    footage_newest: float | None
    dori: dict[str, float] | None  # detect/observe/recognise/identify distances, metres
    bearing_deg: float | None
    fov_deg: float | None
    range_m: float | None
    view_known: bool  # False: no direction reported, so taken to see all around
    footage_known: bool  # False only with include_unknown_footage

    @property
    def view(self) -> CameraView:
        return CameraView(self.lat, self.lon, self.bearing_deg, self.fov_deg, self.range_m)


def parse_dori(text: str | None) -> dict[str, float] | None:
    """The DORI distances as the agent reported them; None when absent or unreadable."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    levels = {
        level: float(value[level])
        for level in DORI_LEVELS
        if isinstance(value.get(level), int | float) and not isinstance(value.get(level), bool)
    }
    return levels or None


def dori_level(dori: dict[str, float] | None, distance: float) -> str | None:
    """The best DORI level the camera reaches at `distance` metres (identify, recognise,
    observe, detect), from its reported DORI distances (the same the map's rings are
    drawn from); None when it reaches none there or reported none."""
    if not dori:
        return None
    for level in reversed(DORI_LEVELS):  # identify first
        reach = dori.get(level)
        if reach is not None and distance <= reach:
            return level
    return None


def _reach_expression(radius_m: float) -> Any:
    """SQL for how far each camera is taken to see, as CameraView.reach_m (NaN aside, which
    only makes it larger: the exact check in Python still decides)."""
    return case(
        (or_(cameras.c.range_m.is_(None), cameras.c.range_m <= 0), radius_m),
        (cameras.c.range_m > SEARCH_CAP_M, SEARCH_CAP_M),
        else_=cameras.c.range_m,
    )


def near_clause(lat: float, lon: float, radius_m: float) -> Any:
    """A WHERE clause for the rows that may see the point: within the box of the largest
    reach around it (a latitude band and a longitude band, split at the antimeridian; the
    (lat, lon) index serves it), and within each row's own reach box (checked on the few
    rows the index found, so only those come back to Python)."""
    reach = max(SEARCH_CAP_M, radius_m)
    lat_per_m = math.degrees(1 / EARTH_RADIUS_M) * BOX_MARGIN
    dlat = reach * lat_per_m
    lat_low, lat_high = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    own = _reach_expression(radius_m)
    clauses = [
        cameras.c.lat >= lat_low,
        cameras.c.lat <= lat_high,
        cameras.c.lat >= lat - own * lat_per_m,
        cameras.c.lat <= lat + own * lat_per_m,
    ]
    # The longitude band is widest at the box's edge nearest the pole.
    nearest_pole = max(abs(lat_low), abs(lat_high))
    if nearest_pole >= 89.9:
        return and_(*clauses)
    lon_per_m = lat_per_m / math.cos(math.radians(nearest_pole))
    dlon = reach * lon_per_m
    if dlon >= 180.0:
        return and_(*clauses)
    low, high = lon - dlon, lon + dlon
    if low < -180.0:
        clauses.append(or_(cameras.c.lon >= low + 360.0, cameras.c.lon <= high))
    elif high > 180.0:
        clauses.append(or_(cameras.c.lon >= low, cameras.c.lon <= high - 360.0))
    else:
        clauses += [
            cameras.c.lon >= low,
            cameras.c.lon <= high,
            cameras.c.lon >= lon - own * lon_per_m,
            cameras.c.lon <= lon + own * lon_per_m,
        ]
    return and_(*clauses)


def _footage(moment: float, include_unknown: bool) -> Any:
    covers = and_(cameras.c.footage_oldest <= moment, cameras.c.footage_newest >= moment)
    if not include_unknown:
        return covers
    return or_(covers, cameras.c.footage_oldest.is_(None), cameras.c.footage_newest.is_(None))


# What a match is made of; search_at.py reads these and the open intervals.
MATCH_COLUMNS = (
    cameras.c.agent_id,
    cameras.c.camera_id,
    cameras.c.name,
    cameras.c.lat,
    cameras.c.lon,
    cameras.c.bearing_deg,
    cameras.c.fov_deg,
    cameras.c.range_m,
    cameras.c.dori_json,
    cameras.c.status,
    cameras.c.health_json,
    cameras.c.footage_oldest,
    cameras.c.footage_newest,
)


def find_cameras(
    engine: Engine,
    lat: object,
    lon: object,
    at: datetime | float,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    include_unknown_footage: bool = False,
) -> list[CameraMatch]:
    """The cameras that could have seen (lat, lon) at `at` (aware datetime or epoch
    seconds), nearest first; ValueError for coordinates or a radius that are not valid."""
    point_lat, point_lon = check_point(lat, lon)
    radius = check_radius(radius_m)
    moment = _epoch(at)
    query = select(*MATCH_COLUMNS).where(
        near_clause(point_lat, point_lon, radius), _footage(moment, include_unknown_footage)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    matches: list[CameraMatch] = []
    for row in rows:
        if row.lat is None or row.lon is None:
            continue
        oldest, newest = row.footage_oldest, row.footage_newest
        footage_known = oldest is not None and newest is not None
        if footage_known and not oldest <= moment <= newest:
            continue
        if not footage_known and not include_unknown_footage:
            continue
        view = CameraView(row.lat, row.lon, row.bearing_deg, row.fov_deg, row.range_m)
        distance = distance_m(row.lat, row.lon, point_lat, point_lon)
        if not _sees(view, distance, point_lat, point_lon, radius):
            continue
        matches.append(
            CameraMatch(
                agent_id=row.agent_id,
                camera_id=row.camera_id,
                name=row.name,
                lat=row.lat,
                lon=row.lon,
                distance_m=distance,
                bearing_to_point=initial_bearing_deg(row.lat, row.lon, point_lat, point_lon),
                status=judged(row.status, row.health_json).status,
                footage_oldest=oldest,
                footage_newest=newest,
                dori=parse_dori(row.dori_json),
                bearing_deg=row.bearing_deg,
                fov_deg=row.fov_deg,
                range_m=row.range_m,
                view_known=view.direction_known,
                footage_known=footage_known,
            )
        )
    matches.sort(key=lambda match: (match.distance_m, match.agent_id, match.camera_id))
    return matches
