"""Who may call what.

* **JSON API**: ``Authorization: Bearer <DISPATCHER_API_TOKEN>``, compared in constant time.
  A missing or wrong token is 401. With no token configured the API answers 503
  ``api_disabled``: an unset secret must close the API, never open it.
* **Console**: the same token, posted once in the sign-in form; the browser then holds a
  signed session cookie that is not the token (:mod:`dispatcher.console.session`). The API
  never accepts that cookie.
* **Webhooks** prove themselves with the provider's credentials (see
  :mod:`dispatcher.web.webhooks`), never with the API token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dispatcher.providers.base import secrets_match
from dispatcher.runtime import Runtime
from dispatcher.web.errors import ApiError
from dispatcher.web.state import get_runtime

__all__ = ["require_token", "token_matches"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dispatcher"'}

_BEARER = HTTPBearer(auto_error=False, description="DISPATCHER_API_TOKEN")
"""Parses the header, never answers (``auto_error=False``: the 401s are ours), and declares
the scheme in the OpenAPI document."""


def token_matches(runtime: Runtime, given: str) -> bool:
    """Whether ``given`` is the API token; 503 when none is configured."""
    expected = runtime.settings.api_token.reveal()
    if not expected:
        raise ApiError(
            503,
            "api_disabled",
            "the API is disabled: set DISPATCHER_API_TOKEN to enable it",
        )
    return secrets_match(given, expected)


def require_token(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> None:
    """FastAPI dependency of every API route."""
    if not token_matches(runtime, bearer.credentials if bearer is not None else ""):
        header = request.headers.get("authorization")
        message = "wrong bearer token" if header else "missing bearer token"
        raise ApiError(401, "unauthorized", message, headers=_CHALLENGE)
