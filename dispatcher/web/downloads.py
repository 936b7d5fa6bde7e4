"""Files the web app hands out: campaign exports, written to a temporary file and streamed.

The export is written by :func:`dispatcher.export.export_messages` (the same as the CLI's) to a
fresh temporary directory, served, and removed once the response is sent.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from dispatcher import campaigns
from dispatcher.db import session_scope
from dispatcher.export import export_messages
from dispatcher.runtime import Runtime

__all__ = ["MEDIA_TYPES", "export_response"]

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


async def export_response(runtime: Runtime, campaign_id: int, format: str) -> FileResponse:
    """The campaign's export as an attachment (404 for an unknown campaign)."""
    with session_scope(runtime.sessions) as session:
        campaigns.get_campaign(session, campaign_id)
    directory = Path(tempfile.mkdtemp(prefix="dispatcher-export-"))
    out = directory / f"campaign-{campaign_id}.{format}"
    try:
        await run_in_threadpool(export_messages, runtime.engine, campaign_id, out)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return FileResponse(
        out,
        media_type=MEDIA_TYPES[format],
        filename=out.name,
        background=BackgroundTask(shutil.rmtree, directory, True),
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
