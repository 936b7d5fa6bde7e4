"""``POST /estimates``: what a recipient file would give, with nothing stored.

The same figures as ``dispatcher estimate`` (:func:`dispatcher.loader.estimate`), plus the
first rejected rows with their line numbers, so a marketer sees what to fix before anything
exists: no draft is left behind. The upload and the reject report live in a temporary
directory removed before the answer leaves. The console calls :func:`estimate_upload` too.
"""

from __future__ import annotations

import csv
import functools
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dispatcher import loader
from dispatcher.errors import InputError
from dispatcher.reading import open_table
from dispatcher.runtime import Runtime
from dispatcher.spreadsheet import undo_defuse
from dispatcher.web.api import NoNul, validate_form
from dispatcher.web.auth import require_token
from dispatcher.web.bodies import Upload, receive_upload
from dispatcher.web.openapi import API_ERRORS, request_body
from dispatcher.web.state import get_runtime

__all__ = ["FIRST_REJECTS", "EstimateForm", "estimate_upload", "router"]

FIRST_REJECTS = 20
"""Rejected rows shown with the estimate; the reject report holds them all."""

router = APIRouter(
    prefix="/estimates",
    tags=["estimates"],
    dependencies=[Depends(require_token)],
    responses=API_ERRORS,
)


class EstimateForm(BaseModel):
    """The form fields of ``POST /estimates`` (those of ``POST /campaigns`` that matter)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    provider: Literal["bytehand", "timetochat"]
    text: Annotated[str, Field(min_length=1, max_length=10_000), NoNul]
    phone_column: Annotated[str, Field(max_length=200), NoNul] | None = None
    region: Annotated[str, Field(max_length=8), NoNul] | None = None
    smart_encoding: bool = False


def first_rejects(path: Path, limit: int = FIRST_REJECTS) -> list[dict[str, Any]]:
    """The first ``limit`` rows of a reject report, as ``{line, phone, reason}``."""
    shown: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if len(shown) == limit:
                break
            phone = undo_defuse(row["phone"])
            shown.append({"line": int(row["line"]), "phone": phone, "reason": row["reason"]})
    return shown


def estimate_upload(runtime: Runtime, upload: Upload, form: EstimateForm) -> dict[str, Any]:
    """The estimate of an upload (blocking: run it in a thread); its reject report is left at
    ``upload.path.parent / "rejects.csv"`` for the caller, who removes the directory."""
    rejects = upload.path.parent / "rejects.csv"
    try:
        figures = loader.estimate(
            runtime.settings,
            upload.path,
            provider=form.provider,
            template=form.text,
            phone_column=form.phone_column,
            region=form.region,
            smart_encoding=form.smart_encoding,
            rejects_path=rejects,
            engine=runtime.engine,
        )
    except InputError as exc:
        # Messages may name the file: show the client its own name, not our temp path.
        message = str(exc).replace(str(upload.path), upload.filename)
        raise InputError(message, code=exc.code) from exc
    return {
        **figures.to_json(),
        "file": upload.filename,
        "columns": list(open_table(upload.path).columns),
        "first_rejects": first_rejects(rejects),
        "stored": False,
    }


@router.post("", openapi_extra=request_body(EstimateForm, "multipart/form-data", files=("file",)))
async def estimate(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> dict[str, Any]:
    """Upload a recipient file (``file``) with the message: its figures; nothing is stored."""
    upload = await receive_upload(request, max_file_bytes=runtime.settings.max_upload_bytes)
    try:
        form = validate_form(EstimateForm, upload.fields)
        return await run_in_threadpool(functools.partial(estimate_upload, runtime, upload, form))
    finally:
        await run_in_threadpool(shutil.rmtree, upload.path.parent, True)
