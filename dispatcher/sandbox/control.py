"""The ``/_control`` endpoints both simulators share (not rate-limited, not faulted).

``GET /_control/ledger`` → ``{"messages": [LedgerEntry.as_json()...]}``;
``GET /_control/stats`` → ``{"accounts": {account: AccountStats}, "callbacks": {...}}``;
``POST /_control/reset``; ``GET``/``POST /_control/faults`` (partial JSON of
:class:`~dispatcher.sandbox.config.Faults` fields) → the faults now in force.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dispatcher.errors import ConfigError
from dispatcher.sandbox.core import Sandbox

__all__ = ["control_router", "read_json_object"]


async def read_json_object(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object, or ``None`` if it is not one."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def control_router(sandbox: Sandbox) -> APIRouter:
    """Ledger, statistics, reset and fault switches of ``sandbox``."""
    router = APIRouter(prefix="/_control")

    @router.get("/ledger")
    def ledger() -> JSONResponse:
        return JSONResponse({"messages": [entry.as_json() for entry in sandbox.ledger]})

    @router.get("/stats")
    def stats() -> JSONResponse:
        return JSONResponse(sandbox.snapshot())

    @router.post("/reset")
    def reset() -> JSONResponse:
        sandbox.reset()
        return JSONResponse({"reset": True})

    @router.get("/faults")
    def get_faults() -> JSONResponse:
        return JSONResponse(dataclasses.asdict(sandbox.faults.current))

    @router.post("/faults")
    async def set_faults(request: Request) -> JSONResponse:
        changes = await read_json_object(request)
        if changes is None:
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        try:
            faults = sandbox.faults.update(changes)
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(dataclasses.asdict(faults))

    return router
