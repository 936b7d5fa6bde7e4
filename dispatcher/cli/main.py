"""The root ``dispatcher`` command group: every sub-command registers itself here.

A :class:`~dispatcher.errors.DispatcherError` escaping a command becomes one line on stderr and
exit status 2, never a traceback: marketers read these messages. ``DISPATCHER_LOG_LEVEL``, when
set, overrides ``-v``, and log records are redacted (:mod:`dispatcher.logs`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import click

from dispatcher.errors import DispatcherError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DispatcherError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Bulk SMS campaigns through ByteHand and SFR TimeToChat."""
    from dispatcher.config import load_settings
    from dispatcher.logs import configure_logging

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_logging(load_settings().log_level)


from dispatcher.cli.campaign import campaign  # noqa: E402  (sub-commands register on `main`)

main.add_command(campaign)


from dispatcher.cli.sandbox import sandbox  # noqa: E402  (registered last: no import cycle)

main.add_command(sandbox)


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the demo keeps its state (default: .state/demo-<time>).",
)
@click.option("--recipients", default=5000, show_default=True)
def demo(directory: Path | None, recipients: int) -> None:
    """Run a ByteHand and a TimeToChat campaign end to end on the embedded default."""
    from dispatcher.demo import run_demo

    directory = directory or Path(".state") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    if not run_demo(directory.resolve(), recipients=recipients):
        raise SystemExit(1)


@main.command()
def stop() -> None:
    """Stop what the project started in the background under the state directory: the
    embedded Redis, and the processes of a local stack (demo) whose own process was killed."""
    from dispatcher.config import load_settings
    from dispatcher.embedded import stop_embedded_redis
    from dispatcher.pidfiles import stop_recorded

    state_dir = load_settings().state_dir
    processes = stop_recorded(state_dir)  # first: they use the Redis
    servers = stop_embedded_redis(state_dir)
    if not processes and not servers:
        click.echo(f"nothing to stop under {state_dir}")
    for pid in processes:
        click.echo(f"stopped process {pid}")
    for pid in servers:
        click.echo(f"stopped the embedded Redis (pid {pid})")


from dispatcher.cli.estimate import estimate  # noqa: E402

main.add_command(estimate)

from dispatcher.cli.web import web  # noqa: E402

main.add_command(web)

from dispatcher.cli.smpp import smpp_gateway  # noqa: E402

main.add_command(smpp_gateway)
from dispatcher.cli.audience import replies, suppressions  # noqa: E402

main.add_command(suppressions)
main.add_command(replies)
