"""``dispatcher suppressions ...`` and ``dispatcher replies``: the audience's own word."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click

from dispatcher.cli.session import open_session

__all__ = ["replies", "suppressions"]

_SCOPE_HELP = "*: every account (default); bytehand / timetochat; or <provider>:<account id>."


def _e164(raw: str) -> str:
    from dispatcher.config import load_settings
    from dispatcher.errors import InputError
    from dispatcher.phones import PhoneNormalizer

    e164, reason = PhoneNormalizer(load_settings().default_region).normalize(raw)
    if e164 is None:
        raise InputError(f"{raw!r} is not a mobile number ({reason})", code="bad_number")
    return e164


@click.group()
def suppressions() -> None:
    """Numbers that must not receive campaigns (opt-outs, blacklists, ops)."""


@suppressions.command()
@click.argument("phone")
@click.option("--scope", default="*", show_default=True, help=_SCOPE_HELP)
@click.option("--reason", default="added by ops", show_default=True)
def add(phone: str, scope: str, reason: str) -> None:
    """Suppress PHONE; its unsent messages in open campaigns end `suppressed`."""
    from dispatcher import suppressions as store
    from dispatcher.models import utcnow

    number = _e164(phone)
    with open_session() as session:
        new = store.add(session, number, scope=scope, source="ops", reason=reason, now=utcnow())
    click.echo(f"{number} {'suppressed' if new else 'was already suppressed'} for {scope}")


@suppressions.command()
@click.argument("phone")
@click.option("--scope", default=None, help="Only this scope (default: every scope).")
def remove(phone: str, scope: str | None) -> None:
    """Lift PHONE's suppressions (later campaigns include it again)."""
    from dispatcher import suppressions as store

    number = _e164(phone)
    with open_session() as session:
        count = store.remove(session, number, scope=scope)
    click.echo(f"{number}: {count} suppression(s) removed")


@suppressions.command(name="list")
@click.option("--scope", default=None, help="Only this scope.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_entries(scope: str | None, limit: int, as_json: bool) -> None:
    """Entries newest first: number, scope, source, reason, date, reply text."""
    from dispatcher import suppressions as store

    with open_session() as session:
        entries = store.listing(session, scope=scope, limit=limit)
    for entry in entries:
        if as_json:
            click.echo(json.dumps(entry.to_json(), ensure_ascii=False))
        else:
            reply = f"  {entry.reply_text!r}" if entry.reply_text else ""
            click.echo(
                f"{entry.phone:<16} {entry.scope:<24} {entry.source:<8} "
                f"{entry.created_at:%Y-%m-%d %H:%M} {entry.reason}{reply}"
            )


@suppressions.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scope", default="*", show_default=True, help=_SCOPE_HELP)
@click.option("--reason", default="imported", show_default=True)
def import_file(file: Path, scope: str, reason: str) -> None:
    """Suppress every number of a CSV (a `phone` column, else the first; optional `scope`
    and `reason` columns)."""
    from dispatcher import suppressions as store
    from dispatcher.config import load_settings
    from dispatcher.models import utcnow

    region = load_settings().default_region
    with open_session() as session:
        added, rejected = store.import_csv(
            session, file, scope=scope, region=region, reason=reason, now=utcnow()
        )
    click.echo(f"{added} numbers suppressed, {len(rejected)} cells not a mobile number")


@suppressions.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scope", default=None, help="Only this scope.")
def export_file(file: Path, scope: str | None) -> None:
    """Write every entry to a CSV (phone, scope, source, reason, reply_text, created_at)."""
    from dispatcher import suppressions as store

    with open_session() as session:
        count = store.export_csv(store.listing(session, scope=scope), file)
    click.echo(f"{count} suppressions written to {file}")


@click.command()
@click.option("--campaign", "campaign_id", type=int, default=None, help="Replies to one campaign.")
@click.option("--since", default=None, help="ISO date-time with zone, or hours back (e.g. 24h).")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def replies(campaign_id: int | None, since: str | None, limit: int, as_json: bool) -> None:
    """Incoming SMS, newest first, with what they meant and the campaign they answer."""
    from dispatcher.loader import parse_when
    from dispatcher.models import utcnow
    from dispatcher.replies import list_replies

    when = None
    if since is not None and since.endswith("h") and since[:-1].isdigit():
        when = utcnow() - timedelta(hours=int(since[:-1]))
    elif since is not None:
        when = parse_when(since, "--since")
    with open_session() as session:
        found = list_replies(session, campaign_id=campaign_id, since=when, limit=limit)
    for reply in found:
        if as_json:
            click.echo(json.dumps(reply.to_json(), ensure_ascii=False))
        else:
            where = f"campaign {reply.campaign_id}" if reply.campaign_id else "no campaign"
            click.echo(
                f"{reply.received_at:%Y-%m-%d %H:%M} {reply.from_number:<16} {reply.intent:<8} "
                f"{where:<14} {reply.text!r}"
            )
