"""Every error the web app answers is JSON ``{"error": {"code", "message"}}``.

Clients (scripts, the lead's dashboard, the providers' retry logic) branch on the status and on
``code``; they must never have to parse an HTML error page or a traceback. The mapping is made
here once, from our exception tree to HTTP::

    InputError               400  (404 when code == "not_found", 409 when code == "conflict"
                                  or a refused pre-start check: sender_not_approved,
                                  balance_too_low, sender_not_of_service)
    ProviderError            502  a provider call made for the request failed (a pre-start
                                  check could not be made)
    RequestValidationError   422  FastAPI's own validation, reduced to ``loc: msg`` lines
    HTTPException            its status (404 route, 405 method, ...)
    ApiError                 its status (401 token, 413 too large, 503 API disabled, ...)
    anything else            500  "internal error": logged with its traceback, never shown

The provider callbacks never reach these handlers: :class:`dispatcher.web.webhooks.WebhookEdge`
answers them in front of the app, with the same shape (403 credentials, 400 unreadable).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatcher.errors import InputError, ProviderError
from dispatcher.logs import redact

__all__ = ["ApiError", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

_INPUT_STATUS: Mapping[str, int] = {
    "not_found": 404,
    "conflict": 409,
    # A refused pre-start check (dispatcher.prestart): the campaign's state forbids the start.
    "sender_not_approved": 409,
    "balance_too_low": 409,
    "sender_not_of_service": 409,
}

_HTTP_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the web layer itself decides on (auth, size limits), with its HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one error shape of the app."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _validation_message(errors: Sequence[Any]) -> str:
    """``loc: msg`` per problem; input values are left out (they may be large or secret)."""
    lines = []
    for error in errors[:10]:
        if isinstance(error, Mapping):
            loc = ".".join(str(part) for part in error.get("loc", ()))
            lines.append(f"{loc}: {error.get('msg', 'invalid')}")
    return "; ".join(lines) or "invalid request"


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


async def _on_input_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    return error_response(_INPUT_STATUS.get(exc.code, 400), exc.code, str(exc))


async def _on_provider(request: Request, exc: Exception) -> JSONResponse:
    return error_response(502, "provider_error", f"the provider could not be asked: {exc}")


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", _validation_message(exc.errors()))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, redact(request.url.path), exc_info=exc)
    return error_response(500, "internal", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping of the module docstring on ``app``."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(InputError, _on_input_error)
    app.add_exception_handler(ProviderError, _on_provider)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
