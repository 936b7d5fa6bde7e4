"""Why a recipient did not get its SMS, in the provider's own code and in plain language.

A recipient's failure is stored as the state it ended in, our ``last_error`` (for a send the
provider refused: ``provider:code text``, see :attr:`dispatcher.errors.ProviderError.reason`)
and the provider's last state (``CRA_SMS_WRONGNUMBER``, ``UNDELIVERABLE``...). Marketers and
ops need both the code (to search the provider's documentation, to open a ticket) and what it
means. :func:`explain` is pure: state + stored fields in, :class:`Reason` out; the campaign
report groups recipients by it and the export writes it beside each one.

The labels of TimeToChat's delivery errors come from SFR's French documentation (the original
wins over our English restatement); ByteHand's from its error table
(:data:`dispatcher.providers.bytehand_errors.ERROR_CODES`), reworded for a marketer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dispatcher.states import MessageState

__all__ = ["BYTEHAND_LABELS", "SILENT", "TIMETOCHAT_LABELS", "Reason", "explain"]

M = MessageState

SILENT: Final = "silent past the polling deadline"

TIMETOCHAT_LABELS: Final[Mapping[str, str]] = {
    "CRA_SMS_ERROR": "an error occurred while sending the SMS",
    "CRA_SMS_OPINVALID": "the recipient's operator is invalid",
    "CRA_SMS_BLACKLIST": "the recipient is blacklisted on the platform",
    "CRA_SMS_OPBLACKLIST": "the recipient is blacklisted by the operator",
    "CRA_SMS_INVALIDFROM": "the sender (OADC) is invalid",
    "CRA_SMS_WRONGNUMBER": "the number's format is invalid",
    "CRA_SMS_FALSENUMBER": "subscriber absent or number not allocated",
    "CRA_SMS_OPERROR": "problem communicating with the operator",
    "CRA_SMS_OPFAILURE": "transmission to the operator failed",
    "CRA_SMS_OPFULL": "the operator's SMS centre is overloaded",
    "CRA_SMS_COUNTRY": "destination country not supported",
    "CRA_SMS_FULLSIM": "the recipient's SIM card is full",
    "CRA_SMS_LOTOFMSG": "too many messages sent to this number",
    "CRA_SMS_REJECTED": "rejected by the operator",
    "CRA_SMS_BLOCKED": "blocked by the operator",
    "INVALID_RECIPIENT": "the number was refused as malformed",
    "MISSING_PARAMETER": "the request lacked the number, text or sender",
    "INVALID_PARAMETER": "the request had an invalid field",
    "INVALID_VALIDITY_DATE": "the validity date was invalid or past",
    "TEXT_TOO_LONG": "the text is too long for TimeToChat",
    "INVALID_EXT_REF": "our reference was too long",
    "FORBIDDEN_SENDER": "the sender is not allowed on this account",
    "TEST_ACCOUNT_EXPIRED": "the test account has expired",
    "MONTHLY_LIMIT_REACHED": "the monthly quota is spent",
    "NOT_FOUND": "the provider does not know this message",
    "INTERNAL_ERROR": "the provider's API failed",
}

BYTEHAND_LABELS: Final[Mapping[str, str]] = {
    "-1": "unknown error at ByteHand",
    "1": "ByteHand's server failed",
    "2": "ByteHand refused our credentials",
    "3": "function not enabled on the account",
    "4": "forbidden for this account",
    "5": "no route to this destination",
    "6": "ByteHand found a parameter invalid",
    "7": "ByteHand timed out",
    "8": "unsupported encoding",
    "9": "unknown message or sender signature",
    "10": "the sender name is invalid",
    "11": "the recipient is invalid",
    "12": "the number does not exist",
    "13": "the phone is switched off or out of coverage",
    "14": "the number is blocked",
    "15": "operation not supported",
    "16": "result unknown",
    "17": "too many operations",
    "18": "flagged as potential spam",
    "19": "still being processed",
    "20": "the account has no notification URL",
    "21": "the text is on a black list",
    "22": "the recipient is on a black list",
    "DELETED": "deleted before delivery",
    "UNDELIVERABLE": "the operator could not deliver it",
    "REJECTED": "rejected by the operator",
    "EXPIRED": "not delivered before its validity ended",
}

_BY_PROVIDER: Final[Mapping[str, Mapping[str, str]]] = {
    "bytehand": BYTEHAND_LABELS,
    "timetochat": TIMETOCHAT_LABELS,
}

_PLAIN: Final[Mapping[str, str]] = {
    M.UNKNOWN: SILENT,
    M.EXPIRED: "validity passed before delivery",
    M.UNDELIVERABLE: "the operator could not deliver it",
    M.IN_DOUBT: "may or may not have reached the provider",
    M.CANCELLED: "cancelled before sending",
}


@dataclass(frozen=True)
class Reason:
    """``code`` is the provider's own (``bytehand:12``, ``CRA_SMS_WRONGNUMBER``) or ours."""

    state: str
    code: str
    label: str

    @property
    def text(self) -> str:
        """One line: the label, then the code when it adds something."""
        return (
            f"{self.label} ({self.code})" if self.code and self.code != self.label else self.label
        )


def _from_error(provider: str, last_error: str) -> tuple[str, str] | None:
    """``("bytehand:12", label)`` from ``bytehand:12 The phone number...``; None if not ours."""
    head, _, rest = last_error.partition(" ")
    name, colon, code = head.partition(":")
    if not colon or name not in _BY_PROVIDER:
        return None
    label = _BY_PROVIDER[name].get(code) or rest or code
    return head, label


def explain(
    state: str, provider: str, last_error: str | None, provider_state: str | None
) -> Reason:
    """Why a recipient ended in ``state``: the provider's code and what it means."""
    if last_error:
        parsed = _from_error(provider, last_error)
        if parsed is not None:
            return Reason(state, *parsed)
        if state == M.UNKNOWN and last_error == "marked sent by ops":
            return Reason(state, "", "marked sent by ops (no delivery report possible)")
        return Reason(state, "", last_error)
    labels = _BY_PROVIDER.get(provider, {})
    if provider_state and provider_state in labels and state != M.UNKNOWN:
        return Reason(state, provider_state, labels[provider_state])
    return Reason(state, provider_state or "", _PLAIN.get(state, state))
