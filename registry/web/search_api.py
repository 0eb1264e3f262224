"""The police search as JSON API: the cameras that could have seen a point at a moment or
over a time range (`POST /api/v1/search`), or at each point of a route
(`POST /api/v1/search/route`), ranked, with each camera's state then
(registry/police/search_at.py). Every search lands in the registry's audit trail with
who, when, where and why."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contract.timestamps import rfc3339_epoch
from registry.police import search, search_at
from registry.police.claims import parse_time
from registry.police.history import CLOCK_SKEW_S
from registry.web import user_audit
from registry.web.access import require, state_of
from registry.web.auth import Role
from registry.web.json_body import json_body, required_text

__all__ = ["routes"]

# A moment a little ahead of the server's clock is the officer's clock running fast; more
# is a mistake, said as one. The same allowance as the history's live state.
FUTURE_SKEW_S = CLOCK_SKEW_S
# No registry holds anything older (and the arithmetic of earlier years is a trap).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()


def _moment(value: object, what: str, now: float) -> float:
    """An RFC 3339 time as epoch seconds; HTTPException 400 naming what is wrong."""
    try:
        moment = parse_time(value, what).timestamp()
    except (ValueError, OverflowError) as exc:
        raise HTTPException(
            400, str(exc) if isinstance(exc, ValueError) else f"{what}: out of range"
        ) from None
    if moment > now + FUTURE_SKEW_S:
        raise HTTPException(400, f"{what} is in the future")
    if moment < EARLIEST:
        raise HTTPException(400, f"{what} is before 2000: no registry holds anything that old")
    return moment


def _times(body: dict[str, Any], now: float, where: str = "") -> tuple[float, float]:
    start = _moment(body.get("at"), where + "at", now)
    if body.get("until") is None:
        return start, start
    end = _moment(body.get("until"), where + "until", now)
    if end < start:
        raise HTTPException(400, f"{where}until is before {where}at")
    if end - start > search_at.MAX_RANGE_S:
        raise HTTPException(
            400, f"{where}until: the range is longer than {search_at.MAX_RANGE_S / 3600:.0f} hours"
        )
    return start, end


def _time(value: float) -> str | None:
    return rfc3339_epoch(value, "seconds")


def _match_json(ranked: search_at.RankedMatch, radius_m: float) -> dict[str, Any]:
    match = ranked.camera
    return {
        "agent": match.agent_id,
        "camera": match.camera_id,
        "name": match.name,
        "lat": match.lat,
        "lon": match.lon,
        "distance_m": round(match.distance_m, 1),
        "bearing_to_point": round(match.bearing_to_point, 1),
        "status": match.status,  # now
        "footage_oldest": _time(match.footage_oldest) if match.footage_oldest else None,
        "footage_newest": _time(match.footage_newest) if match.footage_newest else None,
        "dori_m": match.dori,
        "bearing_deg": match.bearing_deg,
        "fov_deg": match.fov_deg,
        "range_m": match.range_m,
        "view_known": match.view_known,
        "cone": search.view_polygon(match.view, radius_m=radius_m),
        # then: at the moment (or the best of the range) searched
        "state": ranked.state,
        "problems": list(ranked.problems),
        "footage": ranked.footage,
        "dori_level": ranked.dori_level,
        "footage_held": ranked.footage_held,
        "usefulness": ranked.usefulness,
        "score": ranked.score,
        "timeline": [
            {
                "start": _time(piece.start),
                "end": _time(piece.end),
                "state": piece.verdict.state,
                "problems": list(piece.verdict.problems),
                "footage": piece.verdict.footage,
            }
            for piece in ranked.timeline
        ],
    }


def _result_json(result: search_at.SearchResult, radius_m: float) -> dict[str, Any]:
    return {
        "cameras": [_match_json(m, radius_m) for m in result.cameras],
        "excluded": [_match_json(m, radius_m) for m in result.excluded],
    }


def _point(body: dict[str, Any], where: str = "") -> tuple[float, float]:
    try:
        return search.check_point(body.get("lat"), body.get("lon"))
    except ValueError as exc:
        raise HTTPException(400, where + str(exc)) from None


async def search_api(request: Request) -> Response:
    caller = await require(request, Role.POLICE)
    state = state_of(request)
    body = await json_body(request)
    reason = required_text(body, "reason")
    now = time.time()
    lat, lon = _point(body)
    start, end = _times(body, now)
    radius = state.config.search_radius_m
    result = await run_in_threadpool(
        functools.partial(
            search_at.search_at, state.engine, lat, lon, start, end, now=now, radius_m=radius
        )
    )
    await run_in_threadpool(
        functools.partial(
            user_audit.record,
            state.engine,
            caller.user.name,
            "search",
            caller.remote,
            lat=lat,
            lon=lon,
            at=datetime.fromtimestamp(start, UTC).isoformat(),
            until=datetime.fromtimestamp(end, UTC).isoformat() if end != start else None,
            reason=reason,
            found=len(result.cameras),
        )
    )
    return JSONResponse(
        {
            "lat": lat,
            "lon": lon,
            "at": datetime.fromtimestamp(start, UTC).isoformat(),
            "until": _time(end),
            "radius_m": radius,
            **_result_json(result, radius),
        }
    )


async def route_api(request: Request) -> Response:
    caller = await require(request, Role.POLICE)
    state = state_of(request)
    body = await json_body(request)
    reason = required_text(body, "reason")
    route = body.get("route")
    if not isinstance(route, list) or not route:
        raise HTTPException(400, "route: required (a list of {lat, lon, at[, until]})")
    if len(route) > search_at.MAX_ROUTE_POINTS:
        raise HTTPException(
            400, f"route: at most {search_at.MAX_ROUTE_POINTS} points, not {len(route)}"
        )
    now = time.time()
    stops = []
    for n, point in enumerate(route):
        where = f"route[{n}]."
        if not isinstance(point, dict):
            raise HTTPException(400, f"route[{n}]: must be an object {{lat, lon, at[, until]}}")
        lat, lon = _point(point, where)
        start, end = _times(point, now, where)
        stops.append(search_at.RouteStop(lat, lon, start, end))
    radius = state.config.search_radius_m
    results = await run_in_threadpool(
        functools.partial(search_at.search_route, state.engine, stops, now=now, radius_m=radius)
    )
    await run_in_threadpool(
        functools.partial(
            user_audit.record,
            state.engine,
            caller.user.name,
            "search_route",
            caller.remote,
            route=[
                {"lat": s.lat, "lon": s.lon, "at": _time(s.start), "until": _time(s.end)}
                for s in stops
            ],
            reason=reason,
            found=sum(len(r.cameras) for r in results),
        )
    )
    return JSONResponse(
        {
            "radius_m": radius,
            "route": [
                {
                    "lat": stop.lat,
                    "lon": stop.lon,
                    "at": _time(stop.start),
                    "until": _time(stop.end),
                    **_result_json(result, radius),
                }
                for stop, result in zip(stops, results, strict=True)
            ],
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/search", search_api, methods=["POST"]),
        Route("/api/v1/search/route", route_api, methods=["POST"]),
    ]
