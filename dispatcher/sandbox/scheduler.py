"""A timer thread running callables when they fall due (a heap ordered by monotonic time).

Message lifecycles and callback retries share one per simulator. Callables must be quick: slow
work (HTTP) is handed to an executor by its caller.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


class Scheduler:
    """Runs ``fn`` at ``clock() + delay``; :meth:`clear` drops every pending call."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; pending calls are dropped and later ones ignored."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the timer thread after ``delay`` seconds (at once if not positive)."""
        with self._cond:
            if self._stopping:
                return
            entry = (self._clock() + max(delay, 0.0), next(self._seq), fn)
            heapq.heappush(self._heap, entry)
            # Wake the timer thread only when its next deadline moved: a batch of 100 accepts
            # would otherwise hand the GIL back and forth 100 times and slow the answer.
            if self._heap[0] is entry:
                self._cond.notify()

    def clear(self) -> None:
        """Forget every pending call."""
        with self._cond:
            self._heap.clear()

    def pending(self) -> int:
        """How many calls wait."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap and self._heap[0][0] <= self._clock():
                        break
                    timeout = self._heap[0][0] - self._clock() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # a broken event must not stop every later one
                log.exception("sandbox scheduled call failed")
