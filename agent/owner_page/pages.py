"""The owner page's pages and the forms on them: cameras with their snapshots and the
problems the owner accepts, requests to decide, and the audit log."""

from __future__ import annotations

import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agent.owner_page import words
from agent.owner_page.auth import Session
from agent.owner_page.context import (
    OwnerPage,
    owner_page_of,
    refuse,
    remote_of,
    render,
    require,
    translation,
)
from agent.owner_page.receipt import NothingSent, receipt, receipt_bytes
from agent.owner_page.snapshot import jpeg_of
from agent.police_requests.store import RequestStoreError
from agent.quality.accepted import AcceptanceRefused
from contract.request_states import RequestState

log = logging.getLogger(__name__)

# After a decision the page waits this long for the request desk to act on it, so the
# owner sees the new state rather than the old one.
DECISION_SETTLE_S = 3.0
# While a request is being worked on the requests page reloads itself this often.
REFRESH_S = 5
BUSY_STATES = frozenset(
    {
        RequestState.RECEIVED,
        RequestState.WAITING_CLOCK,
        RequestState.APPROVED,
        RequestState.EXPORTING,
        RequestState.UPLOADING,
    }
)


async def cameras(request: Request) -> Response:
    session = await require(request)
    rows = await run_in_threadpool(owner_page_of(request).sources.camera_rows)
    return render(
        request,
        "cameras.html",
        session,
        cameras=rows,
        words=words,
        local_time=words.local_time,
        stamp=int(time.time()),
    )


async def snapshot(request: Request) -> Response:
    await require(request)
    camera_id = request.path_params["camera"]
    planes = owner_page_of(request).sources.picture(camera_id)
    if planes is None:
        raise HTTPException(404, "no picture of this camera yet")
    data = await run_in_threadpool(jpeg_of, planes)
    return Response(data, media_type="image/jpeg")


async def requests_page(request: Request) -> Response:
    session = await require(request)
    return await _requests(request, session)


async def _requests(
    request: Request, session: Session, status: int = 200, error: str | None = None
) -> Response:
    found = await run_in_threadpool(owner_page_of(request).sources.requests)
    busy = any(r.state in BUSY_STATES for r in found)
    return render(
        request,
        "requests.html",
        session,
        status,
        requests=found,
        words=words,
        local_time=words.local_time,
        refresh=REFRESH_S if busy else None,
        error=error,
    )


async def decision(request: Request) -> Response:
    session = await require(request)
    _ = translation(request)[1]
    request_id = request.path_params["request_id"]
    form = await request.form()
    choice = form.get("decision")
    if choice not in ("approve", "decline"):
        raise refuse(request, 400, f"no decision ({choice!r})", "choose approve or decline")
    page = owner_page_of(request)
    try:
        await run_in_threadpool(page.sources.decide, request_id, choice == "approve")
    except (RequestStoreError, ValueError) as exc:
        log.warning("owner page: %s of request %s refused: %s", choice, request_id, exc)
        error = _("This request cannot be decided (any more): it was decided or has ended.")
        return await _requests(request, session, 409, error)
    log.info(
        "owner page: request %s: %s by the owner from %s", request_id, choice, remote_of(request)
    )
    await run_in_threadpool(_settle, page, request_id)
    return RedirectResponse(f"/requests#request-{request_id}", 303)


def _settle(page: OwnerPage, request_id: str) -> None:
    deadline = time.monotonic() + DECISION_SETTLE_S
    while time.monotonic() < deadline:
        try:
            if page.sources.store.get(request_id).state != RequestState.AWAITING_OWNER:
                return
        except RequestStoreError:
            return
        time.sleep(0.1)


async def accepted_change(request: Request) -> Response:
    """The button beside a raised problem ("this is normal for this camera") and its undo,
    through the same door as `camera-agent problems accept | unaccept`."""
    session = await require(request)
    camera = request.path_params["camera"]
    form = await request.form()
    problem, choice = form.get("problem"), form.get("accept")
    if not isinstance(problem, str) or choice not in ("yes", "no"):
        raise refuse(request, 400, f"no problem or choice ({choice!r})", "choose a problem")
    acceptance = owner_page_of(request).sources.acceptance
    if acceptance is None:
        raise HTTPException(404, "not available")
    try:
        await run_in_threadpool(acceptance.change, camera, problem, choice == "yes", "owner_page")
    except AcceptanceRefused as exc:
        log.warning("owner page: %s of %s for camera %s refused: %s", choice, problem, camera, exc)
        return render(request, "error.html", session, 409, message=str(exc))
    log.info(
        "owner page: camera %s: %s %s by the owner from %s",
        camera,
        problem,
        "accepted" if choice == "yes" else "no longer accepted",
        remote_of(request),
    )
    return RedirectResponse(f"/#camera-{camera}", 303)


async def audit_page(request: Request) -> Response:
    session = await require(request)
    locale, _ = translation(request)
    entries = await run_in_threadpool(owner_page_of(request).sources.audit)
    rows = [
        {
            "time": words.local_time(entry.time),
            "request": entry.request_id or "",
            "title": words.audit_title(entry, _),
            "details": words.audit_details(entry, locale, _),
            "seq": entry.seq,
        }
        for entry in entries
    ]
    return render(request, "audit.html", session, entries=rows)


async def receipt_download(request: Request) -> Response:
    """The owner's receipt of what left the device for one request (receipt.py)."""
    await require(request)
    request_id = request.path_params["request_id"]
    sources = owner_page_of(request).sources
    try:
        stored = await run_in_threadpool(sources.store.get, request_id)
    except RequestStoreError:
        raise HTTPException(404, "no such request") from None
    entries = await run_in_threadpool(sources.audit_of, request_id)
    try:
        document = receipt(sources.agent_id, stored, entries)
    except NothingSent as exc:
        raise HTTPException(404, str(exc)) from None
    log.info("owner page: receipt of request %s downloaded from %s", request_id, remote_of(request))
    return Response(
        receipt_bytes(document),
        media_type="application/json",
        headers={
            # The id is one of the contract's ids (checked when the token was accepted).
            "Content-Disposition": f'attachment; filename="receipt-{stored.id}.json"'
        },
    )
