"""TimeToChat HTTP answers mapped to the dispatcher's exception tree.

Error bodies are JSON ``{"code": "..."}``. The spec names only ``AUTHENTICATION_FAILED``; the
other code strings are our reading of its prose (unspecified), and the simulator answers with
exactly these constants. The class depends on the HTTP status; the code tells cases apart::

    HTTP  code                    class                why
    400   MISSING_PARAMETER       ProviderRejected     the same request fails the same way
    400   INVALID_VALIDITY_DATE   ProviderRejected     its own code: the validity was wrong/past
    400   INVALID_PARAMETER, INVALID_RECIPIENT, TEXT_TOO_LONG, INVALID_EXT_REF, any other:
                                  ProviderRejected
    401   TOKEN_EXPIRED, INVALID_TOKEN, AUTHENTICATION_FAILED, any:
                                  CredentialsExpired   after one refresh-and-retry by the client
    401   on the token request    AccountBlocked       the password or service is wrong: pause
    403   TEST_ACCOUNT_EXPIRED    AccountBlocked
    403   MONTHLY_LIMIT_REACHED   AccountBlocked
    403   FORBIDDEN_SENDER        AccountBlocked       the sender is configuration, not a property
                                                       of the recipient: failing recipients one by
                                                       one would burn the list on one refusal
    404   NOT_FOUND               ProviderRejected     status of an id the provider does not know
    404   on a token or send      AccountBlocked       no such service (its id missing or wrong):
                                                       pause, never fail recipients
    429   TOO_MANY_REQUESTS       ProviderThrottled    ``retry_after`` from Retry-After (seconds)
    5xx   INTERNAL_ERROR (any JSON ``code``)
                                  ProviderUnavailable  the API itself refused: nothing accepted
    5xx   anything else           SendInDoubt (send) / ProviderUnavailable (read)
    other 4xx                     ProviderUnavailable  not accepted; retries are bounded

A ``message`` string in the body, when present, is kept in the exception's text.
"""

from __future__ import annotations

from typing import Final

from dispatcher.constants import TIMETOCHAT
from dispatcher.errors import (
    AccountBlocked,
    CredentialsExpired,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    SendInDoubt,
)
from dispatcher.providers.base import decode_json

__all__ = [
    "AUTHENTICATION_FAILED",
    "FORBIDDEN_SENDER",
    "INTERNAL_ERROR",
    "INVALID_EXT_REF",
    "INVALID_PARAMETER",
    "INVALID_RECIPIENT",
    "INVALID_TOKEN",
    "INVALID_VALIDITY_DATE",
    "MISSING_PARAMETER",
    "MONTHLY_LIMIT_REACHED",
    "NOT_FOUND",
    "TEST_ACCOUNT_EXPIRED",
    "TEXT_TOO_LONG",
    "TOKEN_EXPIRED",
    "TOO_MANY_REQUESTS",
    "check_response",
    "error_code",
    "parse_retry_after",
    "unreadable",
]

AUTHENTICATION_FAILED: Final = "AUTHENTICATION_FAILED"  # 401: wrong password (token request)
TOKEN_EXPIRED: Final = "TOKEN_EXPIRED"  # 401: the Bearer token's lifetime is over
INVALID_TOKEN: Final = "INVALID_TOKEN"  # 401: no Bearer token, an unknown or foreign one
MISSING_PARAMETER: Final = "MISSING_PARAMETER"  # 400: to, text or from absent or empty
INVALID_PARAMETER: Final = "INVALID_PARAMETER"  # 400: a field of the wrong type, bad JSON
INVALID_RECIPIENT: Final = "INVALID_RECIPIENT"  # 400: `to` malformed
INVALID_VALIDITY_DATE: Final = "INVALID_VALIDITY_DATE"  # 400: validityDate malformed or past
TEXT_TOO_LONG: Final = "TEXT_TOO_LONG"  # 400: over 1224 GSM-7 / 528 UCS-2 characters
INVALID_EXT_REF: Final = "INVALID_EXT_REF"  # 400: extRef over 150 characters
FORBIDDEN_SENDER: Final = "FORBIDDEN_SENDER"  # 403: `from` not authorised for the service
TEST_ACCOUNT_EXPIRED: Final = "TEST_ACCOUNT_EXPIRED"  # 403: the test period is over
MONTHLY_LIMIT_REACHED: Final = "MONTHLY_LIMIT_REACHED"  # 403: the monthly quota is spent
NOT_FOUND: Final = "NOT_FOUND"  # 404: GET of a message id unknown to the service
TOO_MANY_REQUESTS: Final = "TOO_MANY_REQUESTS"  # 429: over 20 calls/s
INTERNAL_ERROR: Final = "INTERNAL_ERROR"  # 500: the API failed before accepting anything


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; an HTTP-date or garbage gives ``None``."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def error_code(data: object) -> str | None:
    """The ``code`` of a TimeToChat error body, if it has one."""
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) and code else None


def _message(data: object) -> str | None:
    """The provider's human-readable ``message``, bounded so a huge body cannot flood logs."""
    message = data.get("message") if isinstance(data, dict) else None
    return message[:200] if isinstance(message, str) and message else None


def unreadable(what: str, *, send: bool) -> ProviderError:
    """An answer we cannot read: the provider may have acted on a send, so that is in doubt."""
    if send:
        return SendInDoubt(f"unreadable answer to a send: {what}", provider=TIMETOCHAT)
    return ProviderUnavailable(f"unreadable answer: {what}", provider=TIMETOCHAT)


def check_response(
    status_code: int, body: bytes, *, send: bool, retry_after: str | None = None
) -> object:
    """The JSON of a 2xx answer; raise the mapped error otherwise (table above)."""
    data = decode_json(body)
    if 200 <= status_code < 300:
        if data is None:
            raise unreadable(f"HTTP {status_code} without JSON", send=send)
        return data
    code = error_code(data)
    message = _message(data)
    what = f"HTTP {status_code}: {message}" if message else f"HTTP {status_code}"
    if status_code == 400:
        raise ProviderRejected(what, provider=TIMETOCHAT, code=code or "http_400")
    if status_code == 401:
        raise CredentialsExpired(what, provider=TIMETOCHAT, code=code or TOKEN_EXPIRED)
    if status_code == 403:
        raise AccountBlocked(what, provider=TIMETOCHAT, code=code or "http_403")
    if status_code == 404:
        raise ProviderRejected(what, provider=TIMETOCHAT, code=code or NOT_FOUND)
    if status_code == 429:
        raise ProviderThrottled(
            what,
            provider=TIMETOCHAT,
            code=code or TOO_MANY_REQUESTS,
            retry_after=parse_retry_after(retry_after),
        )
    if status_code >= 500 and code is None:
        raise unreadable(what, send=send)
    raise ProviderUnavailable(what, provider=TIMETOCHAT, code=code or f"http_{status_code}")
