"""What every process does before its first piece of work: web app, workers, beat and CLI.

The schema is brought to head (:func:`dispatcher.db.migrate`, safe when the whole fleet starts
at once), so a fresh database needs no command run first; and the process says, one line per
provider, whether that provider is configured, naming the missing settings (never a value), so
a fleet started without credentials says so at once rather than when a campaign runs.
"""

from __future__ import annotations

import logging

from dispatcher.config import Settings
from dispatcher.constants import BYTEHAND, TIMETOCHAT
from dispatcher.db import migrate
from dispatcher.runtime import Runtime

__all__ = ["prepare", "provider_lines"]

log = logging.getLogger(__name__)


def _line(provider: str, account: str, unset: list[str], note: str = "") -> tuple[int, str]:
    if unset:
        return logging.WARNING, f"{provider}: not configured ({', '.join(unset)} unset)"
    if note:
        return logging.WARNING, f"{provider}: configured, {account}; {note}"
    return logging.INFO, f"{provider}: configured, {account}"


def provider_lines(settings: Settings) -> list[tuple[int, str]]:
    """One (level, line) per provider: configured, or which settings are unset (WARNING)."""
    bytehand, timetochat = settings.bytehand, settings.timetochat
    bytehand_unset = {
        "DISPATCHER_BYTEHAND_ID": bytehand.client_id,
        "DISPATCHER_BYTEHAND_KEY": bytehand.key,
    }
    timetochat_unset = {
        "DISPATCHER_TIMETOCHAT_SERVICE_ID": timetochat.service_id,
        "DISPATCHER_TIMETOCHAT_PASSWORD": timetochat.password,
    }
    reports_refused = (
        ""
        if timetochat.webhook_secret
        else "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET unset: its delivery reports are refused "
        "and messages settle by polling only"
    )
    return [
        _line(
            BYTEHAND,
            f"account {bytehand.client_id} at {bytehand.url}",
            [name for name, value in bytehand_unset.items() if not value],
        ),
        _line(
            TIMETOCHAT,
            f"service {timetochat.service_id} at {timetochat.url}",
            [name for name, value in timetochat_unset.items() if not value],
            reports_refused,
        ),
    ]


def prepare(runtime: Runtime, process: str, *, quiet: bool = False) -> None:
    """Migrate, then log the providers' lines; ``quiet`` (the CLI) logs them all at INFO."""
    migrate(runtime.engine)
    for level, line in provider_lines(runtime.settings):
        log.log(logging.INFO if quiet else level, "%s: %s", process, line)
