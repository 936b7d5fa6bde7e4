"""What happens to a message, decided by the last two digits of its recipient's number.

Deterministic so that tests and the demo can ask for any ending::

    ending   ByteHand                           TimeToChat
    00       refused at send: status 11         refused at send: 400 INVALID_RECIPIENT
    13       UNDELIVERABLE (error_code 12)      CRA_SMS_WRONGNUMBER (push ERROR)
    14       EXPIRED (error_code 13)            CRA_SMS_FALSENUMBER (push ERROR)
    15       REJECTED (error_code 5)            CRA_SMS_OPFULL (push ERROR; transient kind)
    22       refused at send: status 22         CRA_SMS_BLACKLIST (push ERROR): the recipient
             (receiver blacklisted)             is on the operator's blacklist
    99       ACCEPTED forever, never final      CRA_SMS_SENT forever, never final
    other    DELIVERED (error_code 0)           CRA_SMS_RECEIVED (push RECEIVED)
"""

from __future__ import annotations

import dataclasses

from dispatcher.sandbox import codes

__all__ = ["Outcome", "outcome_for"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The fate of one recipient; a ``None`` final state means the message never settles."""

    refused_at_send: bool
    bytehand_final: str | None
    bytehand_error_code: int
    timetochat_final: str | None
    bytehand_refusal: int | None = None
    """A ByteHand status refusing the send (TimeToChat accepts it), when not ``refused_at_send``."""


_DELIVERED = Outcome(False, "DELIVERED", 0, "CRA_SMS_RECEIVED")
_BY_ENDING = {
    "00": Outcome(True, None, codes.BH_INVALID_RECEIVER, None),
    "13": Outcome(False, "UNDELIVERABLE", codes.BH_NUMBER_NOT_EXIST, "CRA_SMS_WRONGNUMBER"),
    "14": Outcome(False, "EXPIRED", codes.BH_NUMBER_SWITCHED_OFF, "CRA_SMS_FALSENUMBER"),
    "15": Outcome(False, "REJECTED", 5, "CRA_SMS_OPFULL"),
    "22": Outcome(
        False, None, 0, "CRA_SMS_BLACKLIST", bytehand_refusal=codes.BH_RECEIVER_BLACKLISTED
    ),
    "99": Outcome(False, None, 0, None),
}


def outcome_for(number: str) -> Outcome:
    """The outcome for ``number`` (any formatting: only its digits count)."""
    digits = "".join(c for c in number if c.isdigit())
    return _BY_ENDING.get(digits[-2:], _DELIVERED)
