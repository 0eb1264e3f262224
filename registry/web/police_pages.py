"""The police pages: search on the map, prepare and follow requests, received evidence."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from registry.web.access import require
from registry.web.app import page
from registry.web.auth import Role


async def search_page(request: Request) -> Response:
    caller = await require(request, Role.POLICE)
    return page(request, "search.html", caller)


async def requests_page(request: Request) -> Response:
    caller = await require(request, Role.POLICE)
    return page(request, "requests.html", caller)


def routes() -> list[BaseRoute]:
    return [Route("/search", search_page), Route("/requests", requests_page)]
