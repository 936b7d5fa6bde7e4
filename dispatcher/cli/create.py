"""``dispatcher campaign create FILE``: store a draft campaign from a recipient file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dispatcher.cli.estimate import (
    audience_options,
    encoding_option,
    progress_bar,
    render_estimate,
)
from dispatcher.sms import EncodingPolicy

__all__ = ["create"]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--provider", required=True, type=click.Choice(["bytehand", "timetochat"]))
@click.option("--sender", required=True, help="Sender name (ByteHand) or 09 3X number (TTC).")
@click.option("--text", "template", required=True, help="Message, e.g. 'Bonjour {first_name}'.")
@click.option("--name", default=None, help="Campaign name (default: the file name).")
@click.option("--start-at", default=None, help="ISO date-time with zone: start then.")
@click.option("--send-after", default=None, help="ISO date-time with zone: not sent before.")
@click.option("--validity", default=None, help="ISO date-time with zone: undelivered after.")
@click.option(
    "--priority",
    type=click.Choice(["high", "normal", "low"]),
    default="normal",
    show_default=True,
    help="Share of the account's budget beside its other campaigns (high 4 : normal 2 : low 1).",
)
@click.option("--phone-column", default=None, help="Column of the numbers (default: guessed).")
@click.option("--region", default=None, help="Region of numbers without +country (e.g. FR).")
@click.option("--smart-encoding", is_flag=True, help="Replace typographic quotes etc. by GSM-7.")
@encoding_option
@click.option("--rejects", type=click.Path(path_type=Path), help="Write rejected rows here (CSV).")
@audience_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def create(
    *,
    file: Path,
    provider: str,
    sender: str,
    template: str,
    name: str | None,
    start_at: str | None,
    send_after: str | None,
    validity: str | None,
    priority: str,
    phone_column: str | None,
    region: str | None,
    smart_encoding: bool,
    encoding: EncodingPolicy,
    rejects: Path | None,
    as_json: bool,
    send_window: str | None,
    send_days: str | None,
    timezone: str | None,
    any_time: bool,
    append_optout: bool | None,
) -> None:
    """Store FILE's valid recipients as a draft campaign and print its id."""
    from dispatcher.config import load_settings
    from dispatcher.db import make_engine, migrate
    from dispatcher.loader import create_campaign, default_send_rules

    settings = load_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    with progress_bar(file, enabled=not as_json) as progress:
        summary = create_campaign(
            engine,
            settings,
            file,
            provider=provider,
            sender=sender,
            template=template,
            name=name,
            start_at=start_at,
            send_after=send_after,
            validity=validity,
            priority=priority,
            phone_column=phone_column,
            region=region,
            smart_encoding=smart_encoding,
            encoding=encoding,
            rejects_path=rejects,
            progress=progress,
            send_rules=default_send_rules(
                settings, any_time=any_time, window=send_window, days=send_days, timezone=timezone
            ),
            append_optout=(
                settings.audience.append_optout_mention if append_optout is None else append_optout
            ),
        )
    engine.dispose()
    for warning in summary.estimate.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
    else:
        render_estimate(summary.to_json(), f"campaign {summary.id} ({summary.name})")
        click.echo(summary.id)
