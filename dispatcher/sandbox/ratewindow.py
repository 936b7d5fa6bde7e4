"""The providers' rate limit: at most ``limit`` calls per account in ANY sliding window.

A call arriving at ``t`` is served when fewer than ``limit`` served calls lie in ``(t - width,
t]``; otherwise it is refused and leaves no trace in the window. So every half-open window
``[s, s + width)`` holds at most ``limit`` served calls, which :func:`max_in_window` checks
exactly from the served timestamps.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

__all__ = ["SlidingWindowLimiter", "max_in_window", "rates_over_overlap"]


def max_in_window(timestamps: Sequence[float], width: float = 1.0) -> int:
    """The most timestamps found in any half-open window ``[s, s + width)``.

    ``timestamps`` must be sorted (they are appended in arrival order on a monotonic clock).
    """
    best = 0
    start = 0
    for end, t in enumerate(timestamps):
        while t - timestamps[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def rates_over_overlap(
    streams: Mapping[str, Sequence[float]], *, drop_last_s: float = 0.0
) -> tuple[float, dict[str, float]]:
    """Acceptance times of streams running at once (campaigns, accounts): the seconds they all
    ran (from the last first acceptance to the first last one, less ``drop_last_s``: the last
    tick of the first to end, when the others get what it no longer uses) and each one's rate
    then."""
    spans = [(min(times), max(times)) for times in streams.values() if times]
    if len(spans) < len(streams):
        return 0.0, {name: 0.0 for name in streams}
    start = max(first for first, _ in spans)
    end = min(last for _, last in spans) - drop_last_s
    seconds = max(end - start, 0.0)
    if seconds == 0.0:
        return 0.0, {name: 0.0 for name in streams}
    return seconds, {
        name: sum(1 for t in times if start <= t < end) / seconds for name, times in streams.items()
    }


class SlidingWindowLimiter:
    """Per-account deques of served timestamps, under one lock (uvicorn serves concurrently)."""

    def __init__(
        self, limit: int, width: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.width = width
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}

    def admit(self, account: str) -> float | None:
        """The arrival time if the call is served (and counted), ``None`` if refused."""
        with self._lock:
            now = self._clock()
            window = self._windows.setdefault(account, deque())
            while window and window[0] <= now - self.width:
                window.popleft()
            if len(window) >= self.limit:
                return None
            window.append(now)
            return now

    def reset(self) -> None:
        """Forget every window."""
        with self._lock:
            self._windows.clear()
