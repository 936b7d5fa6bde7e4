"""ByteHand error codes and HTTP answers, mapped to the dispatcher's exception tree.

Error codes (``{"status": <code>, "description": ...}``, normally with HTTP 400)::

    code  meaning                          class                  why
    -1    unknown error                    ProviderUnavailable    an answer, so not accepted;
                                                                  bounded retries are safe
    1     unexpected server condition      ProviderUnavailable
    2     authorization failed             AccountBlocked         no call can succeed: pause
    3     function not supported           AccountBlocked         account setting, not recipient
    4     forbidden                        AccountBlocked
    5     routing not allowed              ProviderRejected       destination, permanent
    6     invalid parameters               ProviderRejected
    7     timeout / server not responding  SendInDoubt (send)     the provider may have acted
                                           ProviderUnavailable    on it: as 16; a read retries
    8     unsupported encoding             ProviderRejected
    9     object not found                 ProviderRejected       unknown message or signature
    10    invalid sender                   AccountBlocked         the campaign's sender, not
                                                                  the recipient: pause, keep
                                                                  recipients retryable
    11    invalid receiver                 ProviderRejected
    12    number does not exist            ProviderRejected
    13    switched off / out of coverage   ProviderRejected       not worth chasing within our
                                                                  retry window; reported as is
    14    number blocked                   ProviderRejected
    15    operation not supported          ProviderRejected
    16    result unknown                   SendInDoubt (send)     the message may be out;
                                           ProviderUnavailable    harmless for a read
    17    too many operations              ProviderThrottled
    18    potential spam                   ProviderRejected
    19    still being processed            SendInDoubt (send)     as 16
                                           ProviderUnavailable
    20    notification URL not set         AccountBlocked         account setting
    21    text blacklisted                 ProviderRejected
    22    receiver blacklisted             ProviderRejected
    other (HTTP < 500)                     ProviderUnavailable    refused, nothing accepted

HTTP 5xx: an error object with a code of this table maps by code; any other body means the
request may have been acted on: SendInDoubt for a send, ProviderUnavailable for a read. A 2xx
body we cannot read is the same doubt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from dispatcher.constants import BYTEHAND
from dispatcher.errors import (
    AccountBlocked,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    SendInDoubt,
)
from dispatcher.providers.base import decode_json

__all__ = [
    "ERROR_CODES",
    "check_response",
    "error_for_code",
    "error_object",
    "result_status",
    "unreadable",
]

ERROR_CODES: Final[Mapping[int, tuple[type[ProviderError], str]]] = {
    -1: (ProviderUnavailable, "Unknown error."),
    1: (ProviderUnavailable, "The server encountered an unexpected condition."),
    2: (AccountBlocked, "Authorization failed."),
    3: (AccountBlocked, "The server does not support the function required."),
    4: (AccountBlocked, "The request is for something forbidden."),
    5: (ProviderRejected, "Routing is not allowed."),
    6: (ProviderRejected, "Some of parameters are invalid."),
    7: (ProviderUnavailable, "The timeout period elapsed or the server is not responding."),
    8: (ProviderRejected, "Unable to decode, an unsupported encoding was used."),
    9: (ProviderRejected, "The requested object was not found."),
    10: (AccountBlocked, "Invalid message sender."),
    11: (ProviderRejected, "Invalid message receiver."),
    12: (ProviderRejected, "The phone number does not exist."),
    13: (ProviderRejected, "The phone number is switched off or out of the coverage."),
    14: (ProviderRejected, "The phone number is blocked."),
    15: (ProviderRejected, "The operation is not supported."),
    16: (ProviderUnavailable, "Operation result is unknown."),
    17: (ProviderThrottled, "Too many operations."),
    18: (ProviderRejected, "Potential spam message."),
    19: (ProviderUnavailable, "The operation is still being processed."),
    20: (AccountBlocked, "The notification URL is not set."),
    21: (ProviderRejected, "Text blocked by black list."),
    22: (ProviderRejected, "Receiver blocked by black list."),
}
"""ByteHand's error codes: the class a read raises, and the provider's own description."""

_IN_DOUBT_WHEN_SENDING: Final = frozenset({7, 16, 19})


def error_for_code(code: int, description: str, *, send: bool) -> ProviderError:
    """The exception for a ByteHand error code (table in the module docstring)."""
    cls, default = ERROR_CODES.get(code, (ProviderUnavailable, "Unrecognised error code."))
    if send and code in _IN_DOUBT_WHEN_SENDING:
        cls = SendInDoubt
    return cls(description or default, provider=BYTEHAND, code=str(code))


def result_status(value: object) -> int | None:
    """``status`` comes as ``"0"`` or ``0`` depending on the call."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def error_object(data: object) -> tuple[int, str] | None:
    """``(code, description)`` when ``data`` is a ByteHand error object."""
    if not isinstance(data, dict):
        return None
    code = result_status(data.get("status"))
    if code is None or code == 0:
        return None
    description = data.get("description")
    return code, description if isinstance(description, str) else ""


def unreadable(what: str, *, send: bool) -> ProviderError:
    """An answer we cannot read: the provider may have acted on a send, so that is in doubt."""
    if send:
        return SendInDoubt(f"unreadable answer to a send: {what}", provider=BYTEHAND)
    return ProviderUnavailable(f"unreadable answer: {what}", provider=BYTEHAND)


def check_response(status_code: int, body: bytes, *, send: bool) -> object:
    """The JSON of a successful answer; raise the mapped error otherwise."""
    data = decode_json(body)
    error = error_object(data)
    if error is not None and (status_code < 500 or error[0] in ERROR_CODES):
        raise error_for_code(*error, send=send)
    if error is None and data is not None and 200 <= status_code < 300:
        return data
    if status_code >= 500 or 200 <= status_code < 300:
        raise unreadable(f"HTTP {status_code}", send=send)
    if status_code == 429:
        raise ProviderThrottled("HTTP 429", provider=BYTEHAND, code="http_429")
    raise ProviderUnavailable(
        f"unexpected HTTP {status_code}", provider=BYTEHAND, code=f"http_{status_code}"
    )
