"""The run-time fault switch: the current :class:`~dispatcher.sandbox.config.Faults` and the
seeded dice deciding which call fails or stalls."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import Any

from dispatcher.sandbox.config import Faults

__all__ = ["FaultSwitch"]


class FaultSwitch:
    """Holds the faults in force; ``update`` swaps them atomically while serving."""

    def __init__(self, initial: Faults, seed: int | None = None) -> None:
        self._initial = initial
        self._current = initial
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    @property
    def current(self) -> Faults:
        """The faults in force now."""
        with self._lock:
            return self._current

    def update(self, changes: Mapping[str, Any]) -> Faults:
        """Apply ``changes`` (ConfigError if invalid, leaving the faults unchanged)."""
        with self._lock:
            self._current = self._current.updated(changes)
            return self._current

    def reset(self) -> None:
        """Back to the start-up faults."""
        with self._lock:
            self._current = self._initial

    def roll(self, rate: float) -> bool:
        """True with probability ``rate`` (always for 1, never for 0)."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    def uniform(self, high: float) -> float:
        """A random delay in ``[0, high)``."""
        if high <= 0.0:
            return 0.0
        with self._lock:
            return self._random.uniform(0.0, high)
