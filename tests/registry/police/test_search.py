"""The police search: which cameras could have seen a point at a moment."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from registry.db.schema import cameras
from registry.police.search import (
    SEARCH_CAP_M,
    CameraView,
    angle_between_deg,
    check_point,
    destination,
    distance_m,
    find_cameras,
    initial_bearing_deg,
    sees,
    view_polygon,
)

# Utrecht, Neude: the point an incident happened at.
POINT = (52.0930, 5.1190)
ONE_DEGREE_M = 6_371_008.8 * math.pi / 180
T = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()


def camera_at(bearing_from_point: float, meters: float, **view: Any) -> CameraView:
    """A camera `meters` from POINT; `bearing_from_point` is where it stands seen from POINT."""
    lat, lon = destination(*POINT, bearing_from_point, meters)
    return CameraView(lat, lon, **view)


# --- geometry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((52.0, 5.0), (53.0, 5.0), ONE_DEGREE_M),
        ((0.0, 0.0), (0.0, 1.0), ONE_DEGREE_M),
        ((0.0, 179.5), (0.0, -179.5), ONE_DEGREE_M),  # across the antimeridian
        ((52.0, 5.0), (52.0, 5.0), 0.0),
        ((90.0, 0.0), (-90.0, 0.0), math.pi * 6_371_008.8),
    ],
)
def test_distance(a: tuple[float, float], b: tuple[float, float], expected: float) -> None:
    assert distance_m(*a, *b) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("to", "expected"),
    [((1.0, 0.0), 0.0), ((0.0, 1.0), 90.0), ((-1.0, 0.0), 180.0), ((0.0, -1.0), 270.0)],
)
def test_initial_bearing_at_the_equator(to: tuple[float, float], expected: float) -> None:
    assert initial_bearing_deg(0.0, 0.0, *to) == pytest.approx(expected)


def test_initial_bearing_of_a_destination_round_trips() -> None:
    for bearing in (0.0, 1.0, 89.0, 181.0, 359.5):
        there = destination(*POINT, bearing, 500.0)
        assert initial_bearing_deg(*POINT, *there) == pytest.approx(bearing, abs=1e-6)
        assert distance_m(*POINT, *there) == pytest.approx(500.0, abs=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(350, 10, 20), (10, 350, 20), (0, 180, 180), (90, 90, 0), (359, 1, 2), (720, 0, 0)],
)
def test_angle_between_wraps_at_north(a: float, b: float, expected: float) -> None:
    assert angle_between_deg(a, b) == pytest.approx(expected)


def looking(
    camera_bearing: float, fov: float, rng: float | None, at: float, meters: float
) -> tuple[CameraView, tuple[float, float]]:
    """A camera at POINT looking along `camera_bearing`, and a point `meters` away along `at`."""
    view = CameraView(*POINT, bearing_deg=camera_bearing, fov_deg=fov, range_m=rng)
    return view, destination(*POINT, at, meters)


@pytest.mark.parametrize(
    ("camera_bearing", "fov", "rng", "at", "meters", "seen"),
    [
        # Wrap-around at north: looking 350 with 40 degrees covers 330..10.
        (350, 40, 50, 5, 20, True),
        (350, 40, 50, 355, 20, True),
        (350, 40, 50, 9.9, 20, True),
        (350, 40, 50, 10.5, 20, False),
        (350, 40, 50, 329, 20, False),
        (10, 40, 50, 355, 20, True),  # 350..30, point just west of north
        (10, 40, 50, 345, 20, False),
        (0, 90, 50, 315.5, 20, True),
        # Looking away: the point is behind the camera.
        (180, 90, 50, 0, 20, False),
        (90, 60, 50, 270, 5, False),
        # Out of range, even dead ahead.
        (90, 60, 25, 90, 24, True),
        (90, 60, 25, 90, 26, False),
        # A fisheye sees all around, within its range.
        (0, 360, 25, 180, 20, True),
        (0, 360, 25, 180, 30, False),
        # A reported range beyond the cap is clamped to it.
        (0, 60, 5000, 0, SEARCH_CAP_M - 10, True),
        (0, 60, 5000, 0, SEARCH_CAP_M + 10, False),
        # At the camera itself the direction does not matter.
        (180, 10, 50, 0, 0.0, True),
    ],
)
def test_cone(
    camera_bearing: float, fov: float, rng: float, at: float, meters: float, seen: bool
) -> None:
    view, point = looking(camera_bearing, fov, rng, at, meters)
    assert sees(view, *point, radius_m=30) is seen


@pytest.mark.parametrize(
    ("view", "meters", "radius", "seen"),
    [
        # No direction, no range: a circle of the search radius.
        ({}, 25, 30, True),
        ({}, 35, 30, False),
        ({"bearing_deg": 90.0}, 25, 30, True),  # a bearing without a field of view
        ({"fov_deg": 90.0}, 25, 30, True),
        # No direction, a known range: a circle of the range.
        ({"range_m": 50.0}, 45, 30, True),
        ({"range_m": 50.0}, 55, 30, False),
        # Direction known, range unknown: the cone, as far as the radius.
        ({"bearing_deg": 0.0, "fov_deg": 90.0}, 28, 30, True),
        ({"bearing_deg": 0.0, "fov_deg": 90.0}, 32, 30, False),
        # A zero field of view is not a direction; a zero range is not a range.
        ({"bearing_deg": 180.0, "fov_deg": 0.0}, 20, 30, True),
        ({"range_m": 0.0}, 20, 30, True),
        ({"bearing_deg": math.nan, "fov_deg": 90.0}, 20, 30, True),
    ],
)
def test_unknown_view_falls_back_to_the_radius(
    view: dict[str, float], meters: float, radius: float, seen: bool
) -> None:
    camera = CameraView(*POINT, **view)
    assert sees(camera, *destination(*POINT, 0.0, meters), radius_m=radius) is seen


def test_view_polygon_of_a_cone() -> None:
    camera = camera_at(200.0, 15.0, bearing_deg=350.0, fov_deg=40.0, range_m=25.0)
    polygon = view_polygon(camera)
    assert polygon[0] == (camera.lat, camera.lon)
    arc = polygon[1:]
    assert len(arc) >= 9  # 40 degrees in steps of at most 5
    bearings = [initial_bearing_deg(camera.lat, camera.lon, *p) for p in arc]
    assert bearings[0] == pytest.approx(330.0)
    assert bearings[-1] == pytest.approx(10.0)
    for point, bearing in zip(arc, bearings, strict=True):
        assert distance_m(camera.lat, camera.lon, *point) == pytest.approx(25.0)
        assert angle_between_deg(bearing, 350.0) <= 20.0 + 1e-6
        # Just inside the edge is seen, just outside is not.
        inside = destination(camera.lat, camera.lon, bearing, 24.9)
        assert sees(camera, *inside)


def test_view_polygon_is_a_circle_when_the_direction_is_unknown() -> None:
    camera = CameraView(*POINT, range_m=None)
    polygon = view_polygon(camera, radius_m=40.0)
    assert len(polygon) >= 36
    assert (camera.lat, camera.lon) not in polygon
    for point in polygon:
        assert distance_m(*POINT, *point) == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("lat", "lon", "words"),
    [
        (91, 0, "lat must be between -90 and 90"),
        (-90.0001, 0, "lat must be between -90 and 90"),
        (0, 180.5, "lon must be between -180 and 180"),
        (0, -181, "lon must be between -180 and 180"),
        (math.nan, 0, "lat must be a finite number"),
        (0, math.inf, "lon must be a finite number"),
        (True, 0, "lat must be a number"),
        ("52.1", 5, "lat must be a number"),
        (52, None, "lon must be a number"),
    ],
)
def test_bad_coordinates_are_named(lat: object, lon: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_point(lat, lon)


def test_edge_coordinates_are_valid() -> None:
    assert check_point(-90, 180) == (-90.0, 180.0)
    assert check_point(90.0, -180.0) == (90.0, -180.0)


# --- the database search ----------------------------------------------------------------


DORI = {"detect": 60.0, "observe": 24.0, "recognise": 12.0, "identify": 6.0}


def row(camera_id: str, at_bearing: float, meters: float, **values: Any) -> dict[str, Any]:
    """A cameras row for agent shop-42 standing `meters` from POINT along `at_bearing`,
    with footage around T unless told otherwise."""
    lat, lon = destination(*POINT, at_bearing, meters)
    base: dict[str, Any] = {
        "agent_id": "shop-42",
        "camera_id": camera_id,
        "name": camera_id.title(),
        "lat": lat,
        "lon": lon,
        "status": "ok",
        "footage_oldest": T - 7 * 86400,
        "footage_newest": T + 3600,
    }
    base.update(values)
    return base


def insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    # Every row names every column, so one executemany covers them all.
    columns = {key for r in rows for key in r}
    full = [{column: r.get(column) for column in columns} for r in rows]
    with engine.begin() as connection:
        connection.execute(cameras.insert(), full)


def scene(engine: Engine) -> None:
    insert(
        engine,
        [
            # 20 m south of the point, looking north at it.
            row(
                "front",
                180,
                20,
                bearing_deg=0.0,
                fov_deg=90.0,
                range_m=40.0,
                dori_json=json.dumps(DORI),
            ),
            # 10 m south, looking south: the point is behind it.
            row("away", 180, 10, bearing_deg=180.0, fov_deg=90.0, range_m=40.0),
            # 900 m west, a long lens looking east: far, but it sees the point.
            row("tower", 270, 900, bearing_deg=90.0, fov_deg=20.0, range_m=1000.0),
            # 1200 m east, claims 5 km: clamped to the search cap, so not a match.
            row("boast", 90, 1200, bearing_deg=270.0, fov_deg=20.0, range_m=5000.0),
            # 25 m east, nothing known about its view: the search radius decides.
            row("plain", 90, 25, bearing_deg=None, fov_deg=None, range_m=None),
            # In view, but its footage ends before the moment searched.
            row("old", 0, 15, bearing_deg=180.0, fov_deg=90.0, range_m=40.0, footage_newest=T - 60),
            # In view, but its footage starts after the moment (retention pruned it).
            row(
                "pruned", 0, 16, bearing_deg=180.0, fov_deg=90.0, range_m=40.0, footage_oldest=T + 1
            ),
            # In view, footage not reported yet.
            row(
                "fresh",
                0,
                30,
                bearing_deg=180.0,
                fov_deg=90.0,
                range_m=40.0,
                footage_oldest=None,
                footage_newest=None,
                status=None,
            ),
            # Failed now; its footage from the moment is still there.
            row("broken", 45, 12, bearing_deg=225.0, fov_deg=60.0, range_m=30.0, status="failed"),
            # No location reported.
            {
                "agent_id": "shop-7",
                "camera_id": "nowhere",
                "status": "ok",
                "footage_oldest": T - 60,
                "footage_newest": T + 60,
            },
        ],
    )


def test_search_finds_the_cameras_that_could_have_seen_the_point(engine: Engine) -> None:
    scene(engine)
    found = find_cameras(engine, *POINT, datetime.fromtimestamp(T, UTC), radius_m=30.0)
    assert [m.camera_id for m in found] == ["broken", "front", "plain", "tower"]
    assert [m.distance_m for m in found] == sorted(m.distance_m for m in found)
    by_id = {m.camera_id: m for m in found}
    front = by_id["front"]
    assert front.agent_id == "shop-42"
    assert front.name == "Front"
    assert front.distance_m == pytest.approx(20.0, abs=1e-3)
    assert angle_between_deg(front.bearing_to_point, 0.0) == pytest.approx(0.0, abs=1e-3)
    assert front.dori == DORI
    assert (front.bearing_deg, front.fov_deg, front.range_m) == (0.0, 90.0, 40.0)
    assert front.view_known and front.footage_known
    assert front.footage_oldest == T - 7 * 86400
    assert by_id["plain"].view_known is False
    assert by_id["plain"].dori is None
    assert by_id["broken"].status == "failed"
    assert by_id["tower"].distance_m == pytest.approx(900.0, abs=0.01)


def test_search_radius_and_unknown_footage(engine: Engine) -> None:
    scene(engine)
    narrow = find_cameras(engine, *POINT, T, radius_m=20.0)
    assert "plain" not in [m.camera_id for m in narrow]
    everything = find_cameras(engine, *POINT, T, radius_m=30.0, include_unknown_footage=True)
    fresh = [m for m in everything if m.camera_id == "fresh"]
    assert len(fresh) == 1
    assert fresh[0].footage_known is False
    assert fresh[0].status is None
    assert {m.camera_id for m in everything} == {"broken", "front", "plain", "tower", "fresh"}


def test_search_moment_outside_every_camera_footage(engine: Engine) -> None:
    scene(engine)
    assert find_cameras(engine, *POINT, T - 30 * 86400) == []
    assert find_cameras(engine, *POINT, T + 7200) == []


def test_search_across_the_antimeridian(engine: Engine) -> None:
    insert(
        engine,
        [
            {
                "agent_id": "island",
                "camera_id": "east",
                "lat": 0.0,
                "lon": 179.9999,
                "bearing_deg": 90.0,
                "fov_deg": 60.0,
                "range_m": 100.0,
                "footage_oldest": T - 60,
                "footage_newest": T + 60,
            },
            {
                "agent_id": "island",
                "camera_id": "west",
                "lat": 0.0,
                "lon": -179.9998,
                "bearing_deg": 270.0,
                "fov_deg": 60.0,
                "range_m": 100.0,
                "footage_oldest": T - 60,
                "footage_newest": T + 60,
            },
        ],
    )
    found = find_cameras(engine, 0.0, -179.9999, T)
    assert [m.camera_id for m in found] == ["west", "east"]
    assert found[1].distance_m == pytest.approx(22.3, abs=0.1)


def test_search_near_a_pole(engine: Engine) -> None:
    insert(
        engine,
        [
            {
                "agent_id": "station",
                "camera_id": "mast",
                "lat": 89.9999,
                "lon": 120.0,
                "range_m": 50.0,
                "footage_oldest": T - 60,
                "footage_newest": T + 60,
            }
        ],
    )
    assert [m.camera_id for m in find_cameras(engine, 90.0, -60.0, T)] == ["mast"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((91.0, 5.0, T), "lat must be between -90 and 90"),
        ((52.0, 200.0, T), "lon must be between -180 and 180"),
        ((math.nan, 5.0, T), "lat must be a finite number"),
        ((52.0, 5.0, datetime(2026, 11, 27, 12)), "needs a time zone"),
        ((52.0, 5.0, math.inf), "time must be a finite number"),
    ],
)
def test_search_rejects_bad_input(engine: Engine, args: tuple[Any, ...], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        find_cameras(engine, *args)


@pytest.mark.parametrize("radius", [0.0, -5.0, SEARCH_CAP_M + 1, math.nan])
def test_search_rejects_a_bad_radius(engine: Engine, radius: float) -> None:
    with pytest.raises(ValueError, match="radius_m"):
        find_cameras(engine, 52.0, 5.0, T, radius_m=radius)


@pytest.mark.parametrize("side", [0.0, 90.0, 180.0, 270.0, 45.0])
def test_search_keeps_a_camera_at_the_edge_of_its_reach(engine: Engine, side: float) -> None:
    # The database prefilters on each camera's own reach; it must not drop the edge.
    insert(
        engine,
        [
            row(
                "edge", side, 39.99, bearing_deg=(side + 180.0) % 360.0, fov_deg=10.0, range_m=40.0
            ),
            row(
                "short",
                side,
                40.01,
                bearing_deg=(side + 180.0) % 360.0,
                fov_deg=10.0,
                range_m=40.0,
                agent_id="shop-7",
            ),
            row("round", side, 29.99, range_m=None, agent_id="shop-8"),
        ],
    )
    assert [m.camera_id for m in find_cameras(engine, *POINT, T)] == ["round", "edge"]
