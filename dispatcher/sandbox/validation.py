"""Request checks without I/O: number formats, dates and text limits, ``now`` passed in."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dispatcher.sandbox import codes
from dispatcher.sandbox.parts import GSM7_BASIC, GSM7_EXTENSION, units

__all__ = [
    "BYTEHAND_MAX_TEXT",
    "TTC_MAX_EXT_REF",
    "TTC_MAX_GSM_UNITS",
    "TTC_MAX_UCS2_UNITS",
    "bytehand_receiver",
    "parse_send_after",
    "parse_validity_date",
    "timetochat_recipient",
    "timetochat_text_problem",
]

BYTEHAND_MAX_TEXT = 800
TTC_MAX_GSM_UNITS = 1224
TTC_MAX_UCS2_UNITS = 528
TTC_MAX_EXT_REF = 150

_SEND_AFTER_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_VALIDITY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_FORMATTING = str.maketrans("", "", " ()-.")
_LATIN1_ONLY = frozenset(chr(i) for i in range(0xA0, 0x100))


def bytehand_receiver(raw: str) -> str | None:
    """The number ByteHand would send to, or ``None`` if it is not a valid receiver.

    With ``+`` the digits are taken as they are; without, the number is "auto-corrected" the
    way the original describes (``8 (495) 123-45-67`` becomes ``+74951234567``).
    """
    if raw.startswith("+"):
        digits = raw[1:]
        return raw if digits.isdigit() and 10 <= len(digits) <= 15 else None
    digits = raw.translate(_FORMATTING)
    if not digits.isdigit():
        return None
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return "+" + digits if 10 <= len(digits) <= 15 else None


def timetochat_recipient(raw: str) -> str | None:
    """``to`` in international form (``06…`` → ``+336…``), or ``None`` if malformed."""
    if re.fullmatch(r"0[67]\d{8}", raw):
        return "+33" + raw[1:]
    if re.fullmatch(r"\+\d{8,15}", raw):
        return raw
    return None


def parse_send_after(raw: str) -> datetime:
    """ByteHand's ``send_after`` (``yyyy-MM-dd HH:mm:ss``, GMT); ValueError if malformed."""
    if not _SEND_AFTER_RE.match(raw):
        raise ValueError(f"send_after {raw!r} is not yyyy-MM-dd HH:mm:ss")
    return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def parse_validity_date(raw: str, now: datetime) -> datetime:
    """TimeToChat's ``validityDate`` (``2019-07-01T08:00:00.123Z``); ValueError if malformed
    or not in the future."""
    if not _VALIDITY_RE.match(raw):
        raise ValueError(f"validityDate {raw!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    when = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    if when <= now:
        raise ValueError(f"validityDate {raw} is in the past")
    return when


def timetochat_text_problem(text: str, unicode: bool) -> str | None:
    """The error code for a text TimeToChat would refuse, or ``None``.

    Without ``unicode`` the text goes out in GSM-7 / ISO-8859-1: Latin-1 letters missing from
    GSM-7 (``ê``) are accepted as one septet, anything else (Cyrillic, emoji) is refused as
    INVALID_PARAMETER rather than silently garbled.
    """
    if unicode:
        return codes.TTC_TEXT_TOO_LONG if units(text, gsm=False) > TTC_MAX_UCS2_UNITS else None
    if any(c not in GSM7_BASIC and c not in GSM7_EXTENSION and c not in _LATIN1_ONLY for c in text):
        return codes.TTC_INVALID_PARAMETER
    return codes.TTC_TEXT_TOO_LONG if units(text, gsm=True) > TTC_MAX_GSM_UNITS else None
