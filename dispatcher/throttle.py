"""A log line per cause and period, however often the cause repeats.

A provider retrying refused callbacks, or a scanner probing the webhook URLs, must not fill the
logs: the first occurrence of a cause is logged at once, later ones at most once per period,
each saying how many went unlogged since the previous line. Pure: the caller passes ``now``.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

__all__ = ["LogThrottle"]


class LogThrottle:
    """Decides, per cause, whether this occurrence gets a log line."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: dict[Hashable, float] = {}
        self._unlogged: dict[Hashable, int] = {}
        self._lock = threading.Lock()  # the web app's handlers run on several threads

    def admit(self, cause: Hashable, now: float) -> int | None:
        """``None``: stay quiet. Else log now, mentioning the returned count left unlogged."""
        with self._lock:
            last = self._last.get(cause)
            if last is not None and now - last < self.period_s:
                self._unlogged[cause] = self._unlogged.get(cause, 0) + 1
                return None
            self._last[cause] = now
            return self._unlogged.pop(cause, 0)
