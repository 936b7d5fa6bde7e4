"""Every code, state and description string the simulators answer with, in one place.

The provider clients (``dispatcher/providers``) match on these same strings, so a change here is
a change of the simulated provider's contract.

ByteHand errors are HTTP 400 ``{"status": <int code>, "description": BYTEHAND_DESCRIPTIONS[code]}``
(HTTP 500 for an injected fault). TimeToChat errors are ``{"code": <string>, "message": <text>}``
with the HTTP status given next to each constant below.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BH_AUTH_FAILED",
    "BH_FINAL_STATES",
    "BH_FORBIDDEN",
    "BH_INVALID_PARAMETERS",
    "BH_INVALID_RECEIVER",
    "BH_INVALID_SENDER",
    "BH_NOT_FOUND",
    "BH_NUMBER_NOT_EXIST",
    "BH_NUMBER_SWITCHED_OFF",
    "BH_OK",
    "BH_RECEIVER_BLACKLISTED",
    "BH_TOO_MANY_OPERATIONS",
    "BH_UNEXPECTED",
    "BYTEHAND_DESCRIPTIONS",
    "BYTEHAND_STATES",
    "TTC_AUTHENTICATION_FAILED",
    "TTC_CRA_ERRORS",
    "TTC_FINAL_STATES",
    "TTC_FORBIDDEN_SENDER",
    "TTC_INTERNAL_ERROR",
    "TTC_INVALID_EXT_REF",
    "TTC_INVALID_PARAMETER",
    "TTC_INVALID_RECIPIENT",
    "TTC_INVALID_TOKEN",
    "TTC_INVALID_VALIDITY_DATE",
    "TTC_MESSAGES",
    "TTC_MISSING_PARAMETER",
    "TTC_MONTHLY_LIMIT_REACHED",
    "TTC_NOT_FOUND",
    "TTC_TEST_ACCOUNT_EXPIRED",
    "TTC_TEXT_TOO_LONG",
    "TTC_TOKEN_EXPIRED",
    "TTC_TOO_MANY_REQUESTS",
]

# --- ByteHand: numeric status codes (the original's table) -------------------------------------

BH_OK: Final = 0
BH_UNEXPECTED: Final = 1  # HTTP 500 fault injection: nothing was accepted
BH_AUTH_FAILED: Final = 2  # id/key wrong or missing
BH_FORBIDDEN: Final = 4  # balance too low for the message's parts
BH_INVALID_PARAMETERS: Final = 6  # missing to/from/text, text over 800 chars, bad send_after
BH_NOT_FOUND: Final = 9  # unknown message or signature id
BH_INVALID_SENDER: Final = 10  # from is not an ACCEPTED signature of the account
BH_INVALID_RECEIVER: Final = 11  # malformed number, or a number ending in 00
BH_NUMBER_NOT_EXIST: Final = 12  # error_code of an UNDELIVERABLE callback
BH_NUMBER_SWITCHED_OFF: Final = 13  # error_code of an EXPIRED callback
BH_TOO_MANY_OPERATIONS: Final = 17  # over 20 calls in a one-second window
BH_RECEIVER_BLACKLISTED: Final = 22  # a number ending in 22

BYTEHAND_DESCRIPTIONS: Final[dict[int, str]] = {
    -1: "Unknown error.",
    1: "The server encountered an unexpected condition.",
    2: "Authorization failed.",
    3: "The server does not support the function required.",
    4: "The request is for something forbidden.",
    5: "Routing is not allowed.",
    6: "Some of parameters are invalid.",
    7: "The timeout period elapsed prior to completion of the operation or the server is not "
    "responding.",
    8: "Unable to decode, an unsupported encoding was used.",
    9: "The requested object was not found.",
    10: "Invalid message sender.",
    11: "Invalid message receiver.",
    12: "The phone number does not exist.",
    13: "The phone number is switched off or out of the coverage.",
    14: "The phone number is blocked.",
    15: "The operation is not supported.",
    16: "Operation result is unknown.",
    17: "Too many operations.",
    18: "Potential spam message.",
    19: "The operation is still being processed.",
    20: "The notification URL is not set.",
    21: "Text blocked by black list.",
    22: "Receiver blocked by black list.",
}

BYTEHAND_STATES: Final = (
    "NEW",
    "DELIVERED",
    "EXPIRED",
    "DELETED",
    "UNDELIVERABLE",
    "ACCEPTED",
    "UNKNOWN",
    "REJECTED",
)
BH_FINAL_STATES: Final = frozenset({"DELIVERED", "EXPIRED", "DELETED", "UNDELIVERABLE", "REJECTED"})

# --- TimeToChat: string codes, with their HTTP status ------------------------------------------

TTC_AUTHENTICATION_FAILED: Final = "AUTHENTICATION_FAILED"  # 401: wrong service id or password
TTC_TOKEN_EXPIRED: Final = "TOKEN_EXPIRED"  # 401: the token's lifetime is over
TTC_INVALID_TOKEN: Final = "INVALID_TOKEN"  # 401: no bearer token, unknown, or another service's
TTC_MISSING_PARAMETER: Final = "MISSING_PARAMETER"  # 400: to, text or from absent or empty
TTC_INVALID_PARAMETER: Final = "INVALID_PARAMETER"  # 400: a field of the wrong type, bad JSON,
#                                                     text not encodable without ``unicode``
TTC_INVALID_RECIPIENT: Final = "INVALID_RECIPIENT"  # 400: to malformed, or ending in 00
TTC_INVALID_VALIDITY_DATE: Final = "INVALID_VALIDITY_DATE"  # 400: malformed or in the past
TTC_TEXT_TOO_LONG: Final = "TEXT_TOO_LONG"  # 400: over 1224 GSM-7 septets / 528 UCS-2 units
TTC_INVALID_EXT_REF: Final = "INVALID_EXT_REF"  # 400: extRef over 150 characters
TTC_FORBIDDEN_SENDER: Final = "FORBIDDEN_SENDER"  # 403: from not authorised for the service
TTC_TEST_ACCOUNT_EXPIRED: Final = "TEST_ACCOUNT_EXPIRED"  # 403
TTC_MONTHLY_LIMIT_REACHED: Final = "MONTHLY_LIMIT_REACHED"  # 403
TTC_NOT_FOUND: Final = "NOT_FOUND"  # 404: unknown message id for this service
TTC_TOO_MANY_REQUESTS: Final = "TOO_MANY_REQUESTS"  # 429: over 20 calls in a one-second window
TTC_INTERNAL_ERROR: Final = "INTERNAL_ERROR"  # 500 fault injection: nothing was accepted

TTC_MESSAGES: Final[dict[str, str]] = {
    TTC_AUTHENTICATION_FAILED: "Authentication failed",
    TTC_TOKEN_EXPIRED: "Token expired",
    TTC_INVALID_TOKEN: "Invalid token",
    TTC_MISSING_PARAMETER: "Missing parameter",
    TTC_INVALID_PARAMETER: "Invalid parameter",
    TTC_INVALID_RECIPIENT: "Invalid recipient",
    TTC_INVALID_VALIDITY_DATE: "Invalid validity date",
    TTC_TEXT_TOO_LONG: "Text too long",
    TTC_INVALID_EXT_REF: "Invalid external reference",
    TTC_FORBIDDEN_SENDER: "Forbidden sender",
    TTC_TEST_ACCOUNT_EXPIRED: "Test account expired",
    TTC_MONTHLY_LIMIT_REACHED: "Monthly limit reached",
    TTC_NOT_FOUND: "Message not found",
    TTC_TOO_MANY_REQUESTS: "Too many request",
    TTC_INTERNAL_ERROR: "Internal error",
}

TTC_CRA_ERRORS: Final = frozenset(
    {
        "CRA_SMS_ERROR",
        "CRA_SMS_OPINVALID",
        "CRA_SMS_BLACKLIST",
        "CRA_SMS_OPBLACKLIST",
        "CRA_SMS_INVALIDFROM",
        "CRA_SMS_WRONGNUMBER",
        "CRA_SMS_FALSENUMBER",
        "CRA_SMS_OPERROR",
        "CRA_SMS_OPFAILURE",
        "CRA_SMS_OPFULL",
        "CRA_SMS_COUNTRY",
        "CRA_SMS_FULLSIM",
        "CRA_SMS_LOTOFMSG",
        "CRA_SMS_REJECTED",
        "CRA_SMS_BLOCKED",
    }
)
TTC_FINAL_STATES: Final = frozenset({"CRA_SMS_RECEIVED", *TTC_CRA_ERRORS})
