"""``dispatcher sandbox``: serve both provider simulators on loopback until interrupted."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
from pathlib import Path

import click

from dispatcher.errors import ConfigError

__all__ = ["sandbox"]


@click.command()
@click.option("--bytehand-port", default=3800, show_default=True, help="ByteHand's port.")
@click.option("--timetochat-port", default=3900, show_default=True, help="TimeToChat's port.")
@click.option("--callback-url-bytehand", help="Handler URL for ByteHand status/MO callbacks.")
@click.option("--callback-url-timetochat", help="Push_CRA URL for TimeToChat reports.")
@click.option(
    "--accounts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON file {"bytehand": [...], "timetochat": [...]} replacing the default accounts.',
)
@click.option("--fail-rate", default=0.0, show_default=True, help="Share of calls answered 500.")
@click.option("--stall-rate", default=0.0, show_default=True, help="Share of sends stalled.")
@click.option("--stall-s", default=30.0, show_default=True, help="How long a stall lasts.")
@click.option("--latency-ms", default=0.0, show_default=True, help="Latency added to calls.")
@click.option("--sent-after-s", default=0.5, show_default=True, help="Delay to ACCEPTED/SENT.")
@click.option("--final-after-s", default=1.5, show_default=True, help="Then to a final state.")
@click.option("--seed", type=int, help="Seed of the fault dice, for repeatable runs.")
@click.option(
    "--only",
    type=click.Choice(["bytehand", "timetochat"]),
    help="Serve one simulator only (one process per provider, as real providers are).",
)
@click.option(
    "--token-lifetime-s", default=1800.0, show_default=True, help="TimeToChat token lifetime."
)
def sandbox(
    *,
    bytehand_port: int,
    timetochat_port: int,
    callback_url_bytehand: str | None,
    callback_url_timetochat: str | None,
    accounts: Path | None,
    fail_rate: float,
    stall_rate: float,
    stall_s: float,
    latency_ms: float,
    sent_after_s: float,
    final_after_s: float,
    seed: int | None,
    token_lifetime_s: float,
    only: str | None,
) -> None:
    """Serve the ByteHand and TimeToChat simulators (see ``dispatcher.sandbox``)."""
    from dispatcher.sandbox import (
        ByteHandConfig,
        Faults,
        Lifecycle,
        TimeToChatConfig,
        accounts_from_json,
        create_bytehand_app,
        create_timetochat_app,
        serve_in_thread,
    )

    bytehand_accounts, timetochat_accounts = ByteHandConfig().accounts, TimeToChatConfig().accounts
    if accounts is not None:
        try:
            data = json.loads(accounts.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"--accounts {accounts}: not JSON ({exc})") from exc
        bytehand_accounts, timetochat_accounts = accounts_from_json(data)
    if callback_url_bytehand:
        bytehand_accounts = tuple(
            dataclasses.replace(a, callback_url=callback_url_bytehand) for a in bytehand_accounts
        )
    if callback_url_timetochat:
        timetochat_accounts = tuple(
            dataclasses.replace(a, push_url=callback_url_timetochat) for a in timetochat_accounts
        )
    faults = Faults(
        fail_rate=fail_rate, stall_rate=stall_rate, stall_s=stall_s, latency_ms=latency_ms
    )
    lifecycle = Lifecycle(sent_after_s=sent_after_s, final_after_s=final_after_s)
    bytehand = create_bytehand_app(
        ByteHandConfig(accounts=bytehand_accounts, lifecycle=lifecycle, faults=faults, seed=seed)
    )
    timetochat = create_timetochat_app(
        TimeToChatConfig(
            accounts=timetochat_accounts,
            lifecycle=lifecycle,
            faults=faults,
            seed=seed,
            token_lifetime_s=token_lifetime_s,
        )
    )
    with contextlib.ExitStack() as servers:
        if only in (None, "bytehand"):
            bh_server = servers.enter_context(serve_in_thread(bytehand, port=bytehand_port))
            click.echo(f"ByteHand simulator:   {bh_server.url}")
        if only in (None, "timetochat"):
            ttc_server = servers.enter_context(serve_in_thread(timetochat, port=timetochat_port))
            click.echo(f"TimeToChat simulator: {ttc_server.url}/mug/api/V1")
        click.echo("Press Ctrl-C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a process manager's stop
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        click.echo("stopping")
