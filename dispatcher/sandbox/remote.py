"""The simulators seen from another process, through their control endpoints.

The local stack runs the simulators as their own process (as real providers are), so that the
orchestrating process's work cannot stall their event loop and bunch the arrival times their
rate limit judges; tests and benchmarks read the ledger and statistics through this client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from dispatcher.sandbox.ledger import LedgerEntry
from dispatcher.sandbox.stats import AccountStats

__all__ = ["RemoteSandbox"]


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        provider=item["provider"],
        account=item["account"],
        id=item["id"],
        to=item["to"],
        sender=item["from"],
        text=item["text"],
        ext_ref=item["ext_ref"],
        accepted_at=datetime.fromisoformat(item["accepted_at"]),
        parts=item["parts"],
        history=tuple(
            (datetime.fromisoformat(step["date"]), step["state"]) for step in item["history"]
        ),
    )


class RemoteSandbox:
    """``ledger``, ``stats()``, fault switches and simulated MOs of a simulator at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=30.0)

    @property
    def ledger(self) -> list[LedgerEntry]:
        response = self.http.get(f"{self.url}/_control/ledger")
        response.raise_for_status()
        return [_entry(item) for item in response.json()["messages"]]

    def stats(self) -> dict[str, AccountStats]:
        response = self.http.get(f"{self.url}/_control/stats")
        response.raise_for_status()
        return {name: AccountStats(**s) for name, s in response.json()["accounts"].items()}

    def throughput(self) -> dict[str, Any]:
        """Sustained calls/s (the busiest ten seconds), messages/s over the span of accepted
        messages, and the figures that judge a run: most calls in any second, rate-limit
        refusals, duplicates."""
        stats = next(iter(self.stats().values()))
        times = [entry.accepted_at for entry in self.ledger]
        span = max((max(times) - min(times)).total_seconds(), 1e-3) if len(times) > 1 else 1e-3
        return {
            "calls": stats.calls_served,
            "accepted": stats.accepted,
            "seconds": round(span, 2),
            "sustained_calls_per_s": stats.max_calls_in_10s / 10,
            "ratio_to_20": round(stats.max_calls_in_10s / 10 / 20, 3),
            "messages_per_s": round(stats.accepted / span, 1),
            "max_calls_in_1s": stats.max_calls_in_window,
            "rejections": stats.rate_limited,
            "duplicates": stats.duplicates,
        }

    def set_faults(self, **changes: float | str) -> None:
        self.http.post(f"{self.url}/_control/faults", json=changes).raise_for_status()

    def incoming(self, **body: str) -> None:
        """Simulate an MO (see ``POST /_control/incoming``)."""
        self.http.post(f"{self.url}/_control/incoming", json=body).raise_for_status()

    def close(self) -> None:
        self.http.close()
