"""Operator commands on one campaign: start, pause, resume, cancel, retry, settle, watch, export."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.orm import Session

from dispatcher import campaigns, prestart, startup
from dispatcher.cli.session import open_session
from dispatcher.db import session_scope
from dispatcher.errors import InputError
from dispatcher.export import export_messages
from dispatcher.models import utcnow
from dispatcher.runtime import current
from dispatcher.states import FINAL_MESSAGE_STATES, CampaignState

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["OPS_COMMANDS"]


def _kick_feeder() -> None:
    """Ask the fleet to feed now rather than at the next beat tick (best effort: the change
    is committed already, and beat feeds the campaign anyway once the broker answers)."""
    from kombu.exceptions import OperationalError

    from tasks import tick

    try:
        tick.apply_async(expires=30)
    except OperationalError as exc:
        click.echo(f"warning: the feeder was not kicked ({exc}); beat will feed it", err=True)


def _simple(
    name: str, action: Callable[[Session, int], Any], describe: Callable[[Any], str]
) -> click.Command:
    @click.command(name=name)
    @click.argument("campaign_id", type=int)
    def command(campaign_id: int) -> None:
        with open_session() as session:
            result = action(session, campaign_id)
        click.echo(f"campaign {campaign_id}: {describe(result)}")
        if name in ("start", "resume", "retry-failed", "resolve-in-doubt"):
            _kick_feeder()

    return command


start = _simple(
    "start",
    lambda s, cid: prestart.start_checked(current(), s, cid, utcnow()),
    lambda state: f"now {state}",
)
start.help = "Start now, or at the campaign's --start-at (beat starts it then)."
pause = _simple("pause", lambda s, cid: campaigns.pause(s, cid, utcnow()), lambda _: "paused")
pause.help = "Stop feeding within a tick; queued work is released, nothing sent twice."
resume = _simple(
    "resume",
    lambda s, cid: prestart.resume_checked(current(), s, cid, utcnow()),
    lambda _: "running",
)
resume.help = "Continue a paused campaign from where it stopped."
cancel = _simple(
    "cancel",
    lambda s, cid: campaigns.cancel(s, cid, utcnow()),
    lambda n: f"cancelled, {n} unsent messages cancelled",
)
cancel.help = "Cancel the campaign and every message not yet sent."
retry_failed = _simple(
    "retry-failed",
    lambda s, cid: campaigns.retry_failed(s, cid, utcnow()),
    lambda n: f"{n} transient failures re-queued",
)
retry_failed.help = "Re-queue recipients that failed for transient reasons only."


@click.command(name="resolve-in-doubt")
@click.argument("campaign_id", type=int)
@click.option("--resend", "action", flag_value="resend", help="They did not go out: send again.")
@click.option("--mark-sent", "action", flag_value="mark_sent", help="They went out: close them.")
def resolve_in_doubt(campaign_id: int, action: str | None) -> None:
    """Settle sends whose outcome cannot be known (ByteHand has no reference to look them up)."""
    if action is None:
        raise InputError("say --resend or --mark-sent (see `campaign status` for the list)")
    with open_session() as session:
        count = campaigns.resolve_in_doubt(
            session, campaign_id, utcnow(), resend=action == "resend"
        )
    click.echo(f"campaign {campaign_id}: {count} in-doubt messages {action.replace('_', ' ')}")
    if action == "resend":
        _kick_feeder()


@click.command(name="status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(campaign_id: int, as_json: bool) -> None:
    """Progress (handed over, final), counts by state and by reason, parts and cost."""
    deadline = current().settings.dispatch.poll_deadline
    with open_session() as session:
        summary = campaigns.report(session, campaign_id)
        progress = campaigns.progress(session, campaign_id, utcnow(), deadline=deadline)
    summary["progress"] = progress.to_json()
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"campaign {summary['id']} {summary['name']!r} ({summary['provider']}): {summary['state']}"
    )
    click.echo(
        f"  {progress.summary} ({progress.handed_over_percent}% handed over, "
        f"{progress.final_percent}% final)"
    )
    if summary["pause_reason"] is not None:
        click.echo(f"  paused at {summary['paused_at']}: {summary['pause_reason']}")
    for state, count in sorted(summary["counts"].items()):
        click.echo(f"  {state:<14}{count:>10}")
    for reason, count in summary["reasons"].items():
        click.echo(f"  {count:>8}  {reason}")
    click.echo(f"  parts sent {summary['parts_sent']}, cost {summary['cost']}")
    if summary["pause_reason"]:
        click.echo(f"  paused: {summary['pause_reason']}")
    if summary["waiting_for_window"]:
        click.echo(
            f"  {summary['waiting_for_window']} waiting for their sending window, "
            f"next opens {summary['next_window_opens']}"
        )


PROGRESS_EVERY_S = 5.0
"""Without a terminal (a log, CI, ``make demo | tee``), a plain progress line this often."""


def _tally(counts: dict[str, int]) -> tuple[int, int, int]:
    """Recipients, those sent (no longer pending, queued or sending), those final."""
    total = sum(counts.values())
    unsent = sum(counts.get(s, 0) for s in ("pending", "queued", "sending"))
    done = sum(n for s, n in counts.items() if s in FINAL_MESSAGE_STATES)
    return total, total - unsent, done


def _progress_line(campaign_id: int, summary: dict[str, Any]) -> str:
    total, sent, done = _tally(summary["counts"])
    return (
        f"campaign {campaign_id} ({summary['provider']}, {summary['state']}): "
        f"{sent} of {total} sent, {done} final, {sent - done} awaiting a report"
    )


def watch_until_done(
    campaign_ids: list[int],
    *,
    interval: float = 0.5,
    timeout: float | None = None,
    console: Console | None = None,
) -> dict[int, dict[str, Any]]:
    """Progress until every campaign is completed or cancelled; their reports.

    Live bars on a terminal; elsewhere one plain line per campaign every few seconds, so a log
    shows the run moving instead of nothing until the end.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    runtime = current()
    console = console or Console()
    started = time.monotonic()
    last_line = started - PROGRESS_EVERY_S
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn())
    live = console.is_terminal
    with Progress(*columns, console=console, disable=not live) as progress:
        bars = {
            cid: (
                progress.add_task(f"campaign {cid} sent", total=None),
                progress.add_task(f"campaign {cid} final", total=None),
            )
            for cid in campaign_ids
        }
        while True:
            with session_scope(runtime.sessions) as session:
                reports = {cid: campaigns.report(session, cid) for cid in campaign_ids}
            for cid, summary in reports.items():
                total, sent, done = _tally(summary["counts"])
                progress.update(bars[cid][0], total=total, completed=sent)
                progress.update(bars[cid][1], total=total, completed=done)
            now = time.monotonic()
            if not live and now - last_line >= PROGRESS_EVERY_S:
                last_line = now
                for cid, summary in reports.items():
                    console.print(f"{now - started:5.0f} s  {_progress_line(cid, summary)}")
            finished = (CampaignState.COMPLETED, CampaignState.CANCELLED)
            if all(r["state"] in finished for r in reports.values()):
                return reports
            if timeout is not None and now - started > timeout:
                return reports
            time.sleep(interval)


@click.command(name="watch")
@click.argument("campaign_id", type=int)
def watch(campaign_id: int) -> None:
    """Live progress until the campaign is done."""
    with open_session() as session:
        campaigns.get_campaign(session, campaign_id)
    summary = watch_until_done([campaign_id])[campaign_id]
    click.echo(json.dumps(summary, indent=2))


@click.command(name="export")
@click.argument("campaign_id", type=int)
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="A .csv or .parquet file."
)
def export(campaign_id: int, out: Path) -> None:
    """Every recipient beside its file's columns: state, reason, provider id, times, reply."""
    with open_session() as session:
        campaigns.get_campaign(session, campaign_id)
    rows = export_messages(current().engine, campaign_id, out)
    click.echo(f"campaign {campaign_id}: {rows} recipients written to {out}")


@click.command(name="list")
@click.option(
    "--state", type=click.Choice([s.value for s in CampaignState]), help="Only this state."
)
@click.option("--provider", type=click.Choice(["bytehand", "timetochat"]), help="Only this one.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help="One JSON object, as GET /campaigns.")
def list_campaigns(
    state: str | None, provider: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """Campaigns, newest first, with their progress (what GET /campaigns answers)."""
    from dispatcher.web.queries import campaign_page

    with open_session() as session:
        items, total = campaign_page(
            session,
            state=CampaignState(state) if state else None,
            provider=provider,
            limit=limit,
            offset=offset,
        )
    if as_json:
        page = {"items": items, "total": total, "limit": limit, "offset": offset}
        click.echo(json.dumps(page, default=str))
        return
    for item in items:
        click.echo(
            f"{item['id']:>6}  {item['state']:<10} {item['provider']:<10} "
            f"{item['handed_over']:>8}/{item['total']:<8} handed over  "
            f"{item['final']:>8} final  {item['name']}"
        )
    click.echo(f"{len(items)} of {total} campaigns")


@click.command(name="delete")
@click.argument("campaign_id", type=int)
def delete(campaign_id: int) -> None:
    """Delete a draft campaign and its recipients (a started one is kept: it is history)."""
    from dispatcher.sources import forget_source

    with open_session() as session:
        source = campaigns.delete_draft(session, campaign_id)
    forget_source(current().settings.state_dir, source)
    click.echo(f"campaign {campaign_id}: deleted")


@click.command(name="test-send")
@click.argument("campaign_id", type=int)
@click.argument("phone")
def test_send(campaign_id: int, phone: str) -> None:
    """Send the campaign's message to PHONE now, as a one-recipient campaign of its own."""
    from dispatcher.testsend import send_test

    runtime = current()
    startup.prepare(runtime, "cli", quiet=True)
    summary = send_test(runtime, campaign_id, phone, utcnow())
    click.echo(f"campaign {campaign_id}: test sent as campaign {summary.id}")
    _kick_feeder()


OPS_COMMANDS = (
    start,
    pause,
    resume,
    cancel,
    retry_failed,
    resolve_in_doubt,
    status,
    watch,
    export,
    list_campaigns,
    delete,
    test_send,
)
