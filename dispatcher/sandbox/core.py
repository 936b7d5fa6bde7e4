"""The machinery both simulators share: rate limit, faults, ledger, lifecycle, callbacks.

A provider app calls :meth:`Sandbox.enter` first thing for every API call (the rate check at
arrival, then latency, then the 500 fault), :meth:`Sandbox.accept` for each message it takes,
and :meth:`Sandbox.respond` on the answer to an accepted send (the stall fault).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dispatcher.sandbox.callbacks import CallbackSender
from dispatcher.sandbox.config import CallbackPolicy, Faults
from dispatcher.sandbox.faults import FaultSwitch
from dispatcher.sandbox.ledger import Ledger, LedgerEntry
from dispatcher.sandbox.lifecycle import Step
from dispatcher.sandbox.ratewindow import SlidingWindowLimiter
from dispatcher.sandbox.scheduler import Scheduler
from dispatcher.sandbox.stats import AccountStats, CallRecorder

__all__ = ["Sandbox", "Verdict", "utcnow"]

_STALL_POLL_S = 0.05


def utcnow() -> datetime:
    """The wall clock in UTC (message dates; intervals use the monotonic clock)."""
    return datetime.now(UTC)


class Verdict(enum.Enum):
    """What :meth:`Sandbox.enter` decided for a call."""

    SERVE = "serve"
    THROTTLED = "throttled"
    FAILED = "failed"


class _DroppedResponse(Response):
    """Headers promising a body that never comes: the server cuts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )


class Sandbox:
    """One simulator's state; exposed as ``app.state.sandbox`` for in-process tests."""

    def __init__(
        self,
        provider: str,
        *,
        rate_limit: int,
        window_s: float,
        faults: Faults,
        callbacks: CallbackPolicy,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.limiter = SlidingWindowLimiter(rate_limit, window_s, clock)
        self.recorder = CallRecorder(window_s)
        self.ledger = Ledger()
        self.faults = FaultSwitch(faults, seed)
        self.scheduler = Scheduler(f"sandbox-{provider}")
        self.callbacks = CallbackSender(callbacks, self.faults, self.scheduler)
        self._reset_hooks: list[Callable[[], None]] = []

    def start(self) -> None:
        """Start the scheduler and callback threads (the app's lifespan does it)."""
        self.scheduler.start()
        self.callbacks.start()

    def stop(self) -> None:
        """Stop them; pending lifecycle steps and callbacks are dropped."""
        self.scheduler.stop()
        self.callbacks.stop()

    @asynccontextmanager
    async def lifespan(self, _: object) -> AsyncIterator[None]:
        """The app's lifespan: threads run while the app is served."""
        self.start()
        try:
            yield
        finally:
            await asyncio.to_thread(self.stop)

    async def enter(self, account: str) -> Verdict:
        """Admit one API call of ``account``: rate check at arrival, latency, then 500 fault."""
        arrived = self.limiter.admit(account)
        if arrived is None:
            self.recorder.count(account, "rate_limited")
            return Verdict.THROTTLED
        self.recorder.served(account, arrived)
        faults = self.faults.current
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if self.faults.roll(faults.fail_rate):
            self.recorder.count(account, "faults_failed")
            return Verdict.FAILED
        return Verdict.SERVE

    async def respond(self, account: str, request: Request, response: Response) -> Response:
        """The answer to a send that accepted something, unless the stall fault strikes.

        A delayed answer stops waiting once the client hangs up (its timeout fired), so a
        stalled request never outlives its client by more than a poll interval.
        """
        faults = self.faults.current
        if not self.faults.roll(faults.stall_rate):
            return response
        self.recorder.count(account, "faults_stalled")
        if faults.stall_mode == "drop":
            return _DroppedResponse()
        deadline = time.monotonic() + faults.stall_s
        while time.monotonic() < deadline and not await request.is_disconnected():
            await asyncio.sleep(min(_STALL_POLL_S, max(deadline - time.monotonic(), 0.0)))
        return response

    def accept(
        self, entry: LedgerEntry, steps: Sequence[Step], notify: Callable[[LedgerEntry], None]
    ) -> None:
        """Record ``entry`` and schedule its ``steps``; ``notify`` sees every new state."""
        self.ledger.add(entry)
        for step in steps:
            self.scheduler.call_later(
                step.after_s, functools.partial(self._advance, entry.id, step.state, notify)
            )

    def _advance(self, message_id: str, state: str, notify: Callable[[LedgerEntry], None]) -> None:
        entry = self.ledger.advance(message_id, state, utcnow())
        if entry is not None:
            notify(entry)

    def stats(self) -> dict[str, AccountStats]:
        """Statistics of every account that made a call or had a message accepted."""
        accounts = self.recorder.accounts() | {e.account for e in self.ledger}
        return {
            account: self.recorder.stats(
                account, self.ledger.accepted(account), self.ledger.duplicates(account)
            )
            for account in sorted(accounts)
        }

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Also run ``hook`` on :meth:`reset` (the provider's own state: balances, quotas)."""
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Forget messages, counters, windows, pending steps and callbacks; restore faults."""
        self.scheduler.clear()
        self.ledger.reset()
        self.recorder.reset()
        self.limiter.reset()
        self.faults.reset()
        self.callbacks.reset()
        for hook in self._reset_hooks:
            hook()

    def snapshot(self) -> dict[str, Any]:
        """``GET /_control/stats``: per-account statistics and callback counters."""
        return {
            "accounts": {name: vars(s) for name, s in self.stats().items()},
            "callbacks": self.callbacks.counts(),
        }
