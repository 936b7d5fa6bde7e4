"""The console's sign-in session: a signed cookie that is not the API token, and CSRF tokens.

Signing in posts the API token in a form body (never a URL). The browser then holds
``dispatcher_session``: ``<payload>.<signature>``, where the payload (base64 JSON) carries the
time of sign-in and a random CSRF token, and the signature is an HMAC-SHA256 under a key
derived from the API token. So the cookie reveals nothing of the token, cannot be forged
without it, expires after :data:`MAX_AGE_S`, and every session ends when the token is changed.
The cookie is ``HttpOnly``, ``SameSite=Strict``, and ``Secure`` when the request came over
HTTPS (directly or through a proxy saying so in ``X-Forwarded-Proto``).

Every form that changes something carries the session's CSRF token in a hidden ``csrf`` field,
compared in constant time (:func:`check_csrf`); ``SameSite=Strict`` already keeps the cookie
off cross-site requests, the token also covers a same-site attacker. The sign-in form itself has
none: there is a single account (the token), so a forged sign-in could only sign the victim in
as the one user who already holds the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response

from dispatcher.runtime import Runtime

__all__ = [
    "COOKIE",
    "MAX_AGE_S",
    "ConsoleSession",
    "check_csrf",
    "clear_session",
    "new_session",
    "read_session",
]

COOKIE = "dispatcher_session"
MAX_AGE_S = 12 * 3600
_CONTEXT = b"dispatcher console session v1"


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: when it signed in, and the token its forms must carry."""

    issued_at: int
    csrf: str


def _key(runtime: Runtime) -> bytes | None:
    token = runtime.settings.api_token.reveal()
    if not token:
        return None
    return hmac.new(token.encode(), _CONTEXT, hashlib.sha256).digest()


def _sign(key: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()).decode()


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def new_session(runtime: Runtime, request: Request, response: Response, now: float) -> None:
    """Set a fresh session cookie on ``response`` (after the token was checked)."""
    key = _key(runtime)
    if key is None:
        raise RuntimeError("no API token: the console cannot sign anyone in")
    body = json.dumps({"iat": int(now), "csrf": secrets.token_urlsafe(24)}).encode()
    payload = base64.urlsafe_b64encode(body).decode()
    response.set_cookie(
        COOKIE,
        f"{payload}.{_sign(key, payload.encode())}",
        max_age=MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session(request: Request, response: Response) -> None:
    """Remove the cookie (sign out)."""
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def read_session(
    runtime: Runtime, request: Request, now: float | None = None
) -> ConsoleSession | None:
    """The request's valid session, or None (absent, forged, expired, or no token set)."""
    key = _key(runtime)
    raw = request.cookies.get(COOKIE, "")
    if key is None or raw.count(".") != 1:
        return None
    payload, signature = raw.split(".")
    if not hmac.compare_digest(signature.encode(), _sign(key, payload.encode()).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        issued, csrf = int(data["iat"]), str(data["csrf"])
    except (ValueError, KeyError, TypeError):
        return None
    current = time.time() if now is None else now
    if not 0 <= current - issued <= MAX_AGE_S:
        return None
    return ConsoleSession(issued, csrf)


def check_csrf(session: ConsoleSession, given: str | None) -> bool:
    """Whether a form's ``csrf`` field is this session's token."""
    return bool(given) and hmac.compare_digest(str(given).encode(), session.csrf.encode())
