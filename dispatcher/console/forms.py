"""The console's campaign form: HTML fields in, the API's forms out.

A browser's ``datetime-local`` field has no zone; ``console.js`` adds the reader's zone
(``timezone``, an IANA name such as ``Europe/Paris``) and the time is read there, never guessed
as UTC (without scripts the field says it is UTC). A ticked checkbox sends ``on``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi.exceptions import RequestValidationError

from dispatcher import loader
from dispatcher.errors import InputError
from dispatcher.loader import CampaignSummary
from dispatcher.runtime import Runtime
from dispatcher.web.api import CampaignForm, creation_options
from dispatcher.web.bodies import Upload

__all__ = [
    "campaign_fields",
    "create_from",
    "estimate_fields",
    "local_time",
    "message_of",
    "shown_values",
]

_TIMES = ("start_at", "send_after", "validity")
_CHECKBOXES = ("smart_encoding", "any_time")
_SHOWN = (
    "provider", "text", "sender", "name", "priority", "phone_column", "send_window", "send_days",
    *_CHECKBOXES, *_TIMES,
)  # fmt: skip
_CAMPAIGN = (
    "provider", "sender", "text", "name", "priority", "phone_column", "region", "send_window",
    "send_days",
)  # fmt: skip


def local_time(value: str, zone: str) -> str:
    """``2026-12-01T09:00`` read in ``zone`` as ISO 8601 with its offset; text with an offset
    already, or that is no date, is passed on for the loader to judge."""
    value = value.strip()
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        return value
    try:
        where = ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {zone!r}", code="bad_schedule") from None
    return parsed.replace(tzinfo=where).isoformat()


def _checkbox(fields: dict[str, str], names: tuple[str, ...] = _CHECKBOXES) -> dict[str, str]:
    return {name: "true" for name in names if fields.get(name) in ("on", "true", "1")}


def estimate_fields(fields: dict[str, str]) -> dict[str, str]:
    """The fields :class:`~dispatcher.web.estimates.EstimateForm` reads."""
    names = ("provider", "text", "phone_column", "region")
    kept: dict[str, str] = {k: fields[k] for k in names if k in fields}
    return {**kept, **_checkbox(fields, ("smart_encoding",))}


def campaign_fields(fields: dict[str, str]) -> dict[str, str]:
    """The fields of :class:`~dispatcher.web.api.CampaignForm`, times given their zone."""
    kept = {k: fields[k] for k in _CAMPAIGN if fields.get(k)}
    zone = fields.get("timezone", "UTC")
    times = {k: local_time(fields[k], zone) for k in _TIMES if fields.get(k)}
    return {**kept, **times, **_checkbox(fields)}


def shown_values(fields: dict[str, str]) -> dict[str, str]:
    """What to put back in the form when it is shown again."""
    return {k: fields[k] for k in _SHOWN if k in fields}


def message_of(exc: Exception, upload: Upload | None = None) -> str:
    """One line for the marketer: the loader's message, or the invalid fields."""
    if isinstance(exc, RequestValidationError):
        names = sorted({str(e.get("loc", ("?",))[-1]) for e in exc.errors()})
        return "please check: " + ", ".join(names)
    message = str(exc).replace("name it with --phone-column", "name it in Phone column")
    if upload is not None:
        message = message.replace(str(upload.path), upload.filename)
    return message


def create_from(runtime: Runtime, upload: Upload, form: CampaignForm) -> CampaignSummary:
    """Store the draft (blocking: run it in a thread)."""
    options = creation_options(runtime.settings, form)
    options["name"] = form.name or upload.filename.rsplit(".", 1)[0]
    return loader.create_campaign(runtime.engine, runtime.settings, upload.path, **options)
