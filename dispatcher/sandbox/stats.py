"""Per-account call statistics, exact: every served call's arrival time is kept."""

from __future__ import annotations

import dataclasses
import threading

from dispatcher.sandbox.ratewindow import max_in_window

__all__ = ["AccountStats", "CallRecorder"]


@dataclasses.dataclass(frozen=True)
class AccountStats:
    """What ``GET /_control/stats`` reports for one account.

    ``max_calls_in_window``: the most served calls in any sliding window of the rate limit's
    width, computed from the served timestamps; it must never exceed the limit.
    ``max_calls_in_10s``: the same over ten seconds, a client's sustained rate (÷ 10).
    """

    calls_served: int
    rate_limited: int
    max_calls_in_window: int
    max_calls_in_10s: int
    accepted: int
    duplicates: int
    faults_failed: int
    faults_stalled: int


class CallRecorder:
    """Served timestamps and counters by account."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._lock = threading.Lock()
        self._served: dict[str, list[float]] = {}
        self._counters: dict[tuple[str, str], int] = {}

    def served(self, account: str, at: float) -> None:
        """A call was served (counted in the window) at monotonic time ``at``."""
        with self._lock:
            self._served.setdefault(account, []).append(at)

    def count(self, account: str, counter: str) -> None:
        """Bump ``counter`` (``rate_limited``, ``faults_failed``, ``faults_stalled``)."""
        with self._lock:
            key = (account, counter)
            self._counters[key] = self._counters.get(key, 0) + 1

    def accounts(self) -> set[str]:
        """Every account seen."""
        with self._lock:
            return set(self._served) | {account for account, _ in self._counters}

    def stats(self, account: str, accepted: int, duplicates: int) -> AccountStats:
        """The account's statistics, with the ledger's counts passed in."""
        with self._lock:
            served = list(self._served.get(account, []))
            counters = {name: n for (acc, name), n in self._counters.items() if acc == account}
        return AccountStats(
            calls_served=len(served),
            rate_limited=counters.get("rate_limited", 0),
            max_calls_in_window=max_in_window(served, self._window_s),
            max_calls_in_10s=max_in_window(served, 10.0),
            accepted=accepted,
            duplicates=duplicates,
            faults_failed=counters.get("faults_failed", 0),
            faults_stalled=counters.get("faults_stalled", 0),
        )

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._served.clear()
            self._counters.clear()
