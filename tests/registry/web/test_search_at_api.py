"""The police search at a moment, over a range and along a route, through the HTTP API,
on health reports stored by the ingest store (SQLite and PostgreSQL); and the attacks on
its new parameters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from contract.timestamps import rfc3339_epoch
from registry.db.schema import camera_intervals
from registry.ingest.intervals import KIND_GAP
from registry.ingest.pipeline import ingest_one
from registry.ingest.store import IngestStore
from registry.ingest.validate import Accepted, MessageValidator
from registry.police.search import destination
from registry.web import auth
from registry.web.auth import Role
from tests.registry.ingest.test_ingest_store import birth, health, topic
from tests.support.registry_web import RegistryWeb, registry_web, server_config

CAMERA = (52.9925, 6.5649)  # looking south (180°), 90° wide, range 80 m here
REPORT_EVERY_S = 30.0


@dataclass(frozen=True)
class Story:
    """The camera's story, in seconds before the test's start: ok, covered, ok, a recording
    gap, ok, reporting every 30 s until 10 s ago."""

    now: float

    @property
    def covered(self) -> tuple[float, float]:
        return (self.now - 900, self.now - 600)

    @property
    def gap_reported(self) -> float:  # the report after the gap says one more gap
        return self.now - 300


def iso(epoch: float) -> str:
    text = rfc3339_epoch(epoch, "milliseconds")
    assert text is not None
    return text


def _store_story(web: RegistryWeb, story: Story) -> None:
    validator, store = MessageValidator("camreg/v1"), IngestStore(web.engine)
    born = birth()
    born["cameras"][0]["location"]["range_m"] = 80
    ingest_one(validator, store, topic("shop-1", "state"), json.dumps(born).encode())
    t, seq, gaps, newest = story.now - 1500, 0, 0, story.now - 1500
    while t <= story.now - 10:
        seq += 1
        covered = story.covered[0] <= t < story.covered[1]
        payload = health(seq=seq, status="failed" if covered else "ok")
        payload["problems"] = ["covered"] if covered else []
        if abs(t - story.gap_reported) < REPORT_EVERY_S / 2:
            gaps += 1
        # Footage of 60 s segments: the newest closed one ends up to a minute back.
        newest = t - (t % 60)
        payload["ts"] = iso(t)
        payload["footage"].update(
            oldest=iso(story.now - 86400),
            newest=iso(newest),
            gaps={"count": gaps, "seconds": 20.0 * gaps},
        )
        stored = ingest_one(
            validator, store, topic("shop-1", "cameras/front/health"), json.dumps(payload).encode()
        )
        assert isinstance(stored, Accepted), stored
        t += REPORT_EVERY_S


@pytest.fixture
def story() -> Story:
    return Story(time.time())


@pytest.fixture
def web(tmp_path: Path, db_url: str, story: Story) -> Iterator[RegistryWeb]:
    with registry_web(server_config(tmp_path), database_url=db_url) as web:
        web.add_user("piet", Role.POLICE)
        _store_story(web, story)
        yield web


def _police(web: RegistryWeb) -> dict[str, str]:
    return {"Authorization": "Bearer " + auth.add_api_token(web.engine, "piet", "test")}


def _south(meters: float) -> tuple[float, float]:
    return destination(*CAMERA, 180.0, meters)


def search(web: RegistryWeb, **body: Any) -> requests.Response:
    point = _south(10)
    full = {"lat": point[0], "lon": point[1], "reason": "case 2026-7", **body}
    return requests.post(web.url + "/api/v1/search", json=full, headers=_police(web), timeout=10)


def _found(answer: requests.Response) -> dict[str, Any]:
    """The camera, from `cameras` or `excluded`, with which list it is in."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    listed = [("cameras", c) for c in body["cameras"]] + [("excluded", c) for c in body["excluded"]]
    [(where, camera)] = listed
    return {**camera, "listed": where}


def test_a_camera_covered_between_t1_and_t2_is_unusable_inside_and_usable_outside(
    web: RegistryWeb, story: Story
) -> None:
    inside = _found(search(web, at=iso((story.covered[0] + story.covered[1]) / 2)))
    assert inside["listed"] == "excluded"
    assert (inside["state"], inside["problems"]) == ("failed", ["covered"])
    before = _found(search(web, at=iso(story.covered[0] - 120)))
    after = _found(search(web, at=iso(story.covered[1] + 60)))
    for outside in (before, after):
        assert outside["listed"] == "cameras"
        assert outside["state"] == "usable" and outside["footage_held"] is True
    # today the camera is fine: its status now does not make it look usable then
    assert inside["status"] == "ok"


def test_a_recording_gap_at_t_excludes_the_camera(web: RegistryWeb, story: Story) -> None:
    with web.engine.connect() as db:
        [(start, end)] = db.execute(
            select(camera_intervals.c.start_ts, camera_intervals.c.end_ts).where(
                camera_intervals.c.kind == KIND_GAP
            )
        ).all()
    # 20 s, from where the footage of the report before ended
    assert end - start == pytest.approx(20.0)
    assert story.gap_reported - 60 - REPORT_EVERY_S <= start <= story.gap_reported
    in_gap = _found(search(web, at=iso((start + end) / 2)))
    assert in_gap["listed"] == "excluded"
    assert (in_gap["state"], in_gap["footage"]) == ("gap", "gap")
    well_after = _found(search(web, at=iso(story.gap_reported + 120)))
    assert well_after["listed"] == "cameras" and well_after["footage"] == "recorded"


def test_a_search_for_30_s_ago_counts_the_live_recording(web: RegistryWeb) -> None:
    recent = _found(search(web, at=iso(time.time() - 30)))
    assert recent["listed"] == "cameras"
    # the newest report's footage ends up to a minute back: this moment is being recorded
    assert recent["footage"] in ("live", "recorded") and recent["state"] == "usable"
    with web.engine.connect() as db:
        newest = db.exec_driver_sql("SELECT footage_newest FROM cameras").scalar()
    assert newest is not None
    if newest < time.time() - 30:
        assert recent["footage"] == "live"


@pytest.mark.parametrize(
    ("meters", "level"),
    [(4, "identify"), (10, "recognise"), (20, "observe"), (40, "detect"), (70, None)],
)
def test_the_dori_level_at_the_point(
    web: RegistryWeb, meters: float, level: str | None, story: Story
) -> None:
    # birth(): identify 6 m, recognise 12 m, observe 24 m, detect 60 m
    point = _south(meters)
    camera = _found(search(web, lat=point[0], lon=point[1], at=iso(story.covered[1] + 60)))
    assert camera["dori_level"] == level
    assert camera["distance_m"] == pytest.approx(meters, abs=0.2)


def test_ranking_puts_the_closer_identifying_camera_first_for_the_same_state(
    web: RegistryWeb, story: Story
) -> None:
    near = _south(4)
    scores = [
        _found(search(web, lat=p[0], lon=p[1], at=iso(story.covered[1] + 60)))["score"]
        for p in (near, _south(10), _south(20), _south(40))
    ]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]


def test_a_time_range_over_the_cover_shows_its_timeline(web: RegistryWeb, story: Story) -> None:
    camera = _found(search(web, at=iso(story.covered[0] - 120), until=iso(story.covered[1] + 60)))
    assert camera["listed"] == "cameras" and camera["state"] == "usable"
    states = [piece["state"] for piece in camera["timeline"]]
    assert states == ["usable", "failed", "usable"]
    assert 0.2 < camera["usefulness"] < 0.7
    # entirely inside the cover: nothing to ask for
    inside = _found(search(web, at=iso(story.covered[0] + 60), until=iso(story.covered[1] - 60)))
    assert inside["listed"] == "excluded" and inside["usefulness"] == 0


def test_a_route_is_searched_in_one_call(web: RegistryWeb, story: Story) -> None:
    route = [
        {"lat": _south(4)[0], "lon": _south(4)[1], "at": iso(story.covered[0] - 120)},
        {
            "lat": _south(10)[0],
            "lon": _south(10)[1],
            "at": iso((story.covered[0] + story.covered[1]) / 2),
        },
        {"lat": CAMERA[0] + 0.001, "lon": CAMERA[1], "at": iso(story.covered[1] + 60)},  # behind it
    ]
    answer = requests.post(
        web.url + "/api/v1/search/route",
        json={"route": route, "reason": "case 2026-7"},
        headers=_police(web),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    stops = answer.json()["route"]
    assert [len(s["cameras"]) for s in stops] == [1, 0, 0]
    assert stops[0]["cameras"][0]["dori_level"] == "identify"
    assert stops[1]["excluded"][0]["state"] == "failed"
    assert stops[2]["excluded"] == []


# --- attacks on the new parameters -----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"at": "2026-11-27T12:00:00"}, "time zone"),
        ({"at": "yesterday"}, "RFC 3339"),
        ({"at": 1700000000}, "RFC 3339"),
        ({"at": "0001-01-01T00:00:00+01:00"}, "out of range"),
        ({"at": "9999-12-31T23:59:59Z"}, "future"),
        ({"at": "1969-12-31T23:59:59Z"}, "before 2000"),
        ({"at": "2026-11-27T12:00:00Z", "until": "2026-11-27T11:00:00Z"}, "before"),
        ({"at": "2026-11-01T00:00:00Z", "until": "2026-11-27T00:00:00Z"}, "longer than 24"),
        ({"at": "2026-11-27T12:00:00Z", "until": ["x"]}, "until"),
    ],
)
def test_search_refuses_bad_times_naming_them(
    web: RegistryWeb, body: dict[str, Any], words: str
) -> None:
    answer = search(web, **body)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]


def _route(web: RegistryWeb, route: object) -> requests.Response:
    return requests.post(
        web.url + "/api/v1/search/route",
        json={"route": route, "reason": "case 2026-7"},
        headers=_police(web),
        timeout=10,
    )


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ([], "route: required"),
        ("52.9,6.5", "route: required"),
        ([{"lat": 52.99, "lon": 6.56, "at": "2026-11-27T12:00:00Z"}] * 101, "at most 100"),
        (["52.9,6.5"], "route[0]: must be an object"),
        (
            [{"lat": 52.99, "lon": 6.56, "at": "2026-11-27T12:00:00Z"}, {"lat": 91, "lon": 6.5}],
            "route[1].lat",
        ),
        ([{"lat": 52.99, "lon": 6.56, "at": "noon"}], "route[0].at"),
    ],
)
def test_route_refuses_bad_routes_naming_the_point(
    web: RegistryWeb, route: object, words: str
) -> None:
    answer = _route(web, route)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]


def test_a_huge_route_body_is_refused_before_it_is_read(web: RegistryWeb) -> None:
    point = {"lat": 52.99, "lon": 6.56, "at": "2026-11-27T12:00:00Z"}
    answer = _route(web, [point] * 5000)
    assert answer.status_code == 413


def test_a_deeply_nested_route_is_refused_as_bad_json(web: RegistryWeb) -> None:
    body = '{"reason": "x", "route": ' + "[" * 30_000 + "]" * 30_000 + "}"
    answer = requests.post(
        web.url + "/api/v1/search/route",
        data=body,
        headers={**_police(web), "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    assert "not valid JSON" in answer.json()["error"]
