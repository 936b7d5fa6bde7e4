"""The providers' callbacks as they arrive, typed for the OpenAPI document only.

The webhooks read their raw input and judge it themselves, credentials first
(:mod:`dispatcher.web.webhooks`); these types only tell the document, and so the schema fuzz
tests, what a well-formed callback looks like: field names as on the wire (``from`` is not a
Python name, hence the functional ``TypedDict`` syntax), the values we know, and the lengths
beyond which the route answers 400. Nothing validates a request against them.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field, WithJsonSchema
from typing_extensions import TypedDict

from dispatcher.providers.bytehand import STATE_MAP
from dispatcher.providers.timetochat_webhooks import PushStatus

__all__ = ["ByteHandCallback", "PushCra"]

_BYTEHAND_TIME = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) "
    r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?$"
)
"""ByteHand's ``yyyy-MM-dd HH:mm:ss[.f]``, in GMT."""

_Number = Annotated[str, Field(min_length=1, max_length=32)]

ByteHandCallback = TypedDict(
    "ByteHandCallback",
    {
        "id": Annotated[str, Field(description="our ByteHand client id")],
        "key": Annotated[str, Field(description="the last eight characters of our ByteHand key")],
        "action": Annotated[
            Literal["outgoingStatus", "incomingSms", "ussd", "ussdStatus"],
            Field(description="a status of a message we sent, an SMS to us, or USSD (ignored)"),
        ],
        "message": NotRequired[
            Annotated[str, Field(min_length=1, max_length=64, description="ByteHand's id")]
        ],
        "description": NotRequired[
            Annotated[
                str,
                Field(
                    min_length=1,
                    max_length=40,
                    examples=sorted(STATE_MAP),
                    description="outgoingStatus: ByteHand's state of the message",
                ),
            ]
        ],
        "error_code": NotRequired[Annotated[str, Field(pattern=r"^-?[0-9]{1,9}$")]],
        "updated_at": NotRequired[Annotated[str, Field(pattern=_BYTEHAND_TIME)]],
        "to": NotRequired[_Number],
        "from": NotRequired[_Number],
        "text": NotRequired[Annotated[str, Field(description="incomingSms: the SMS")]],
        "posted_at": NotRequired[Annotated[str, Field(pattern=_BYTEHAND_TIME)]],
    },
)
"""``GET /webhooks/bytehand``: ``outgoingStatus`` carries message, description, error_code
and updated_at; ``incomingSms`` message, to, from, text and posted_at."""


class PushStatusEntry(TypedDict):
    """One step of a message's history; ``info`` of the event's type is its text."""

    type: NotRequired[PushStatus]
    info: NotRequired[str]


PushItem = TypedDict(
    "PushItem",
    {
        "call_id": NotRequired[
            Annotated[str, Field(max_length=64, description="TimeToChat's id (none for an MO)")]
        ],
        "ref_externe": NotRequired[
            Annotated[str, Field(max_length=150, description="the extRef we sent")]
        ],
        "to": _Number,
        "from": _Number,
        "date": Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})],
        "status": PushStatus,
        "status_list": NotRequired[list[PushStatusEntry]],
        "info": NotRequired[Annotated[str, Field(description="the text of an MO or a reply")]],
    },
)


class StatusReport(TypedDict):
    """The envelope: ``username`` proves the sender (with the path secret)."""

    username: Annotated[str, Field(description="our TimeToChat service id")]
    sms: list[PushItem]


class PushCra(TypedDict):
    """``POST /webhooks/timetochat/{secret}``: one Push_CRA, one ``sms`` item per event."""

    status_report: StatusReport
