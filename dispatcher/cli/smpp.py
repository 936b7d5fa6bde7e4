"""``dispatcher smpp-gateway``: the TimeToChat SMPP bind of this account (Procfile ``smpp``)."""

from __future__ import annotations

import signal
import threading

import click

__all__ = ["smpp_gateway"]


@click.command("smpp-gateway")
def smpp_gateway() -> None:
    """Bind to TimeToChat's SMPP connector and send the account's queued messages.

    Start one per machine if you like: a Redis lease lets one bind per account, the others
    stand by and take over within ``smpp_lease_s``. SIGTERM unbinds gracefully.
    """
    from dispatcher import runtime
    from dispatcher.smpp.gateway import Gateway

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    current = runtime.current()
    try:
        Gateway(current, stop).run()
    finally:
        current.close()
