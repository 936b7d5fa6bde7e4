"""The JSON API of the audience: the suppression list and the replies.

The same use cases as ``dispatcher suppressions ...`` and ``dispatcher replies``
(:mod:`dispatcher.suppressions`, :mod:`dispatcher.replies`); every route needs the bearer token.
Imports are a multipart upload (``file``, as ``POST /campaigns``); exports are ``text/csv``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dispatcher import suppressions
from dispatcher.db import session_scope
from dispatcher.errors import InputError
from dispatcher.loader import parse_when
from dispatcher.phones import PhoneNormalizer
from dispatcher.replies import list_replies
from dispatcher.runtime import Runtime
from dispatcher.web.auth import require_token
from dispatcher.web.bodies import receive_upload
from dispatcher.web.openapi import API_ERRORS
from dispatcher.web.state import Clock, get_clock, get_runtime

__all__ = ["NewSuppression", "router"]

router = APIRouter(tags=["audience"], dependencies=[Depends(require_token)], responses=API_ERRORS)

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ClockDep = Annotated[Clock, Depends(get_clock)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
Scope = Annotated[str | None, Query(max_length=80)]


class NewSuppression(BaseModel):
    """``POST /suppressions``: a number to suppress (ops), for one scope (default every one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: Annotated[str, Field(min_length=1, max_length=40)]
    scope: Annotated[str, Field(min_length=1, max_length=80)] = suppressions.GLOBAL
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "added by ops"


def _e164(runtime: Runtime, raw: str) -> str:
    e164, reason = PhoneNormalizer(runtime.settings.default_region).normalize(raw)
    if e164 is None:
        raise InputError(f"{raw!r} is not a mobile number ({reason})", code="bad_number")
    return e164


@router.get("/suppressions")
def list_suppressions(
    runtime: RuntimeDep, scope: Scope = None, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Entries newest first: number, scope, source, reason, reply text, date."""
    with session_scope(runtime.sessions) as session:
        entries = suppressions.listing(session, scope=scope, limit=limit + offset)
    page = entries[offset:]
    return {"items": [e.to_json() for e in page], "limit": limit, "offset": offset}


@router.post("/suppressions", status_code=201)
def add_suppression(body: NewSuppression, runtime: RuntimeDep, clock: ClockDep) -> dict[str, Any]:
    """Suppress a number; its unsent messages in open campaigns end ``suppressed``."""
    phone = _e164(runtime, body.phone)
    with session_scope(runtime.sessions) as session:
        created = suppressions.add(
            session, phone, scope=body.scope, source="ops", reason=body.reason, now=clock()
        )
    return {"phone": phone, "scope": body.scope, "created": created}


@router.delete("/suppressions/{phone}")
def remove_suppression(phone: str, runtime: RuntimeDep, scope: Scope = None) -> dict[str, Any]:
    """Lift a number's suppressions (of one scope, or all)."""
    number = _e164(runtime, phone)
    with session_scope(runtime.sessions) as session:
        removed = suppressions.remove(session, number, scope=scope)
    return {"phone": number, "removed": removed}


@router.post("/suppressions/import")
async def import_suppressions(
    request: Request, runtime: RuntimeDep, clock: ClockDep, scope: Scope = None
) -> dict[str, Any]:
    """A CSV upload (``file``): every number suppressed (source ``import``)."""
    upload = await receive_upload(request, max_file_bytes=runtime.settings.max_upload_bytes)

    def run() -> tuple[int, list[str]]:
        with session_scope(runtime.sessions) as session:
            return suppressions.import_csv(
                session,
                upload.path,
                scope=scope or suppressions.GLOBAL,
                region=runtime.settings.default_region,
                reason="imported",
                now=clock(),
            )

    try:
        added, rejected = await run_in_threadpool(run)
    finally:
        await run_in_threadpool(shutil.rmtree, upload.path.parent, True)
    return {"added": added, "rejected": len(rejected)}


@router.get("/suppressions/export", response_class=Response)
def export_suppressions(runtime: RuntimeDep, scope: Scope = None) -> Response:
    """Every entry as CSV."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "suppressions.csv"
        with session_scope(runtime.sessions) as session:
            suppressions.export_csv(suppressions.listing(session, scope=scope), path)
        return Response(path.read_bytes(), media_type="text/csv; charset=utf-8")


@router.get("/replies")
def replies(
    runtime: RuntimeDep,
    campaign: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Incoming SMS newest first, with intent (opt_out, opt_in, reply) and what they answer."""
    when = parse_when(since, "since")
    with session_scope(runtime.sessions) as session:
        found = list_replies(session, campaign_id=campaign, since=when, limit=limit, offset=offset)
    return {"items": [r.to_json() for r in found], "limit": limit, "offset": offset}
