"""``dispatcher estimate FILE``: what a recipient file would give, without storing anything."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from dispatcher.sms import ENCODING_POLICIES, EncodingPolicy

if TYPE_CHECKING:  # pandas behind it: `dispatcher --help` must not pay for it
    from dispatcher.ingest import Estimate, Progress

__all__ = ["audience_options", "encoding_option", "estimate", "progress_bar", "render_estimate"]

_BAR_FROM_BYTES = 5 * 1024 * 1024

encoding_option = click.option(
    "--encoding",
    type=click.Choice(ENCODING_POLICIES),
    default="auto",
    show_default=True,
    help="TimeToChat: auto (UCS-2 for any character outside GSM-7), unicode (always), or "
    "latin1 (GSM-7 rates when every character is ISO-8859-1; some may show differently).",
)


F = TypeVar("F", bound=Callable[..., Any])


def audience_options(command: F) -> F:
    """Quiet hours and the opt-out mention, shared by ``estimate`` and ``campaign create``."""
    options = (
        click.option("--send-window", default=None, help="HH:MM-HH:MM in the recipient's zone."),
        click.option("--send-days", default=None, help="e.g. mon-sat, or mon,wed,fri."),
        click.option("--timezone", default=None, help="IANA zone when the number gives none."),
        click.option("--any-time", is_flag=True, help="No quiet hours (transactional)."),
        click.option(
            "--append-optout/--no-append-optout",
            default=None,
            help="Append [audience] optout_mention (default: append_optout_mention).",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


@contextlib.contextmanager
def progress_bar(path: Path, *, enabled: bool) -> Iterator[Progress | None]:
    """A rich bar on a terminal's stderr for files worth waiting for (> 5 MB); else nothing.

    Not on a pipe or a log file: there the "transient" bar still leaves a blank line, and an
    error must be the only line on stderr.
    """
    from rich.console import Console

    console = Console(stderr=True)
    small = not path.is_file() or path.stat().st_size < _BAR_FROM_BYTES
    if not enabled or not console.is_terminal or small:
        yield None
        return
    from rich.markup import escape
    from rich.progress import Progress as Bar

    with Bar(console=console, transient=True) as bar:
        task = bar.add_task(f"reading {escape(path.name)}", total=None)

        def update(done: int, expected: int) -> None:
            bar.update(task, completed=done, total=max(expected, done))

        yield update


def render_estimate(figures: dict[str, Any], title: str) -> None:
    """The figures as a readable table on stdout.

    ``title`` holds a file or campaign name, which rich would read as markup: ``[red]`` would
    vanish and ``[/x]`` crash the command after the campaign was stored. It is escaped.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    keys = ("id", "rows", "valid", "duplicates", "suppressed", "outside_window", "parts", "cost")
    for key in keys:
        if figures.get(key) is not None:
            table.add_row(key, str(figures[key]))
    for reason, count in figures["invalid"].items():
        table.add_row(f"rejected: {reason}", str(count))
    for encoding, count in figures["encodings"].items():
        table.add_row(f"encoding {encoding}", str(count))
    for parts, count in figures["parts_histogram"].items():
        table.add_row(f"messages of {parts} part(s)", str(count))
    for ch, info in figures["ucs2_forcing"].items():
        table.add_row(f"UCS-2 forced by {ch!r} ({info['name']})", str(info["messages"]))
    for ch, info in figures.get("renders_differently", {}).items():
        name = f"{ch!r} ({info['name']})"
        table.add_row(f"sent in GSM-7, may show differently: {name}", str(info["messages"]))
    if figures.get("parts_saved") is not None:
        table.add_row("parts saved by smart encoding", str(figures["parts_saved"]))
    Console().print(table)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--text", "template", required=True, help="Message, e.g. 'Bonjour {first_name}'.")
@click.option("--provider", required=True, type=click.Choice(["bytehand", "timetochat"]))
@click.option("--phone-column", default=None, help="Column of the numbers (default: guessed).")
@click.option("--region", default=None, help="Region of numbers without +country (e.g. FR).")
@click.option("--rejects", type=click.Path(path_type=Path), help="Write rejected rows here (CSV).")
@click.option("--smart-encoding", is_flag=True, help="Replace typographic quotes etc. by GSM-7.")
@encoding_option
@audience_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def estimate(
    *,
    file: Path,
    template: str,
    provider: str,
    phone_column: str | None,
    region: str | None,
    rejects: Path | None,
    smart_encoding: bool,
    encoding: EncodingPolicy,
    as_json: bool,
    send_window: str | None,
    send_days: str | None,
    timezone: str | None,
    any_time: bool,
    append_optout: bool | None,
) -> None:
    """Count valid, duplicate and opted-out recipients, SMS parts and cost of FILE."""
    from dispatcher import loader
    from dispatcher.config import load_settings
    from dispatcher.db import make_engine, migrate

    settings = load_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    with progress_bar(file, enabled=not as_json) as progress:
        figures: Estimate = loader.estimate(
            settings,
            file,
            provider=provider,
            template=template,
            phone_column=phone_column,
            region=region,
            smart_encoding=smart_encoding,
            encoding=encoding,
            rejects_path=rejects,
            engine=engine,
            progress=progress,
            send_rules=loader.default_send_rules(
                settings, any_time=any_time, window=send_window, days=send_days, timezone=timezone
            ),
            append_optout=(
                settings.audience.append_optout_mention if append_optout is None else append_optout
            ),
        )
    engine.dispose()
    for warning in figures.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(figures.to_json(), ensure_ascii=False))
    else:
        render_estimate(figures.to_json(), f"{file.name} via {provider}")
