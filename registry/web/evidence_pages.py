"""Evidence for police: per case, what arrived from which agent, whether it verified, and
the files to download (each download in the audit trail)."""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contract.timestamps import rfc3339_epoch
from registry.db.schema import requests
from registry.evidence.intake import EvidenceIntake
from registry.evidence.records import PackageRecord, packages_for_case
from registry.web import user_audit
from registry.web.access import require, state_of
from registry.web.app import page
from registry.web.auth import Role


def all_packages(engine: Engine, evidence_dir: Path | None = None) -> list[PackageRecord]:
    with engine.connect() as db:
        cases = db.execute(select(requests.c.case_ref).distinct().order_by(requests.c.case_ref))
        names = [row.case_ref for row in cases]
    return [record for case in names for record in packages_for_case(engine, case, evidence_dir)]


def _json(record: PackageRecord) -> dict[str, Any]:
    data = asdict(record)
    data["checked_at"] = rfc3339_epoch(record.checked_at, "seconds")
    data["files"] = [
        {
            **asdict(f),
            "complete": f.complete,
            "completed_at": rfc3339_epoch(f.completed_at, "seconds"),
        }
        for f in record.files
    ]
    return data


def routes(intake: EvidenceIntake) -> list[BaseRoute]:
    async def evidence_page(request: Request) -> Response:
        caller = await require(request, Role.POLICE)
        packages = await run_in_threadpool(
            all_packages, state_of(request).engine, intake.evidence_dir
        )
        return page(
            request,
            "evidence.html",
            caller,
            packages=packages,
            when=functools.partial(rfc3339_epoch, precision="seconds"),
        )

    async def evidence_api(request: Request) -> Response:
        await require(request, Role.POLICE)
        packages = await run_in_threadpool(
            all_packages, state_of(request).engine, intake.evidence_dir
        )
        return JSONResponse({"packages": [_json(p) for p in packages]})

    async def download(request: Request) -> Response:
        caller = await require(request, Role.POLICE)
        request_id, name = request.path_params["request_id"], request.path_params["filename"]
        path = intake.file_path(request_id, name)
        if path is None:
            raise HTTPException(404, f"no file {name!r} for request {request_id!r}")
        await run_in_threadpool(
            functools.partial(
                user_audit.record,
                state_of(request).engine,
                caller.user.name,
                "evidence_download",
                caller.remote,
                request_id=request_id,
                file=name,
            )
        )
        return FileResponse(path, filename=name, media_type="application/octet-stream")

    return [
        Route("/evidence", evidence_page),
        Route("/api/v1/evidence", evidence_api),
        Route("/evidence/{request_id}/{filename}", download),
    ]
