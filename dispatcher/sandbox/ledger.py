"""Every message a simulator accepted, with its state history, and duplicate detection.

A duplicate is a message accepted while an earlier one had the same account, recipient and
text (and TimeToChat ``extRef``, when given): what an at-least-once dispatcher must not produce.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

__all__ = ["Ledger", "LedgerEntry"]


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """A snapshot of one accepted message; ``history`` is ``(when, state)`` oldest first."""

    provider: str
    account: str
    id: str
    to: str
    sender: str
    text: str
    ext_ref: str | None
    accepted_at: datetime
    parts: int
    unicode: bool = False
    flash: bool = False
    history: tuple[tuple[datetime, str], ...] = ()

    @property
    def state(self) -> str:
        """The current state: the last one of the history."""
        return self.history[-1][1]

    @property
    def updated_at(self) -> datetime:
        """When the current state was entered."""
        return self.history[-1][0]

    def as_json(self) -> dict[str, Any]:
        """The shape of ``GET /_control/ledger`` items."""
        return {
            "provider": self.provider,
            "account": self.account,
            "id": self.id,
            "to": self.to,
            "from": self.sender,
            "text": self.text,
            "ext_ref": self.ext_ref,
            "accepted_at": self.accepted_at.isoformat(),
            "parts": self.parts,
            "state": self.state,
            "history": [{"date": d.isoformat(), "state": s} for d, s in self.history],
        }


class Ledger:
    """Accepted messages by id, in acceptance order; thread-safe, iterable as snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, LedgerEntry] = {}
        self._seen: set[tuple[str, str, str, str | None]] = set()
        self._duplicates: dict[str, int] = {}

    def add(self, entry: LedgerEntry) -> bool:
        """Record ``entry`` (its history starts with its first state); True if a duplicate."""
        key = (entry.account, entry.to, entry.text, entry.ext_ref)
        with self._lock:
            self._entries[entry.id] = entry
            duplicate = key in self._seen
            self._seen.add(key)
            if duplicate:
                self._duplicates[entry.account] = self._duplicates.get(entry.account, 0) + 1
            return duplicate

    def get(self, message_id: str, account: str | None = None) -> LedgerEntry | None:
        """The message, if known (and owned by ``account`` when one is given)."""
        with self._lock:
            entry = self._entries.get(message_id)
        if entry is None or (account is not None and entry.account != account):
            return None
        return entry

    def advance(self, message_id: str, state: str, when: datetime) -> LedgerEntry | None:
        """Append ``state`` to the message's history; the new snapshot, None if unknown."""
        with self._lock:
            entry = self._entries.get(message_id)
            if entry is None:
                return None
            entry = dataclasses.replace(entry, history=(*entry.history, (when, state)))
            self._entries[message_id] = entry
            return entry

    def duplicates(self, account: str) -> int:
        """How many of the account's acceptances repeated an earlier message."""
        with self._lock:
            return self._duplicates.get(account, 0)

    def accepted(self, account: str) -> int:
        """How many messages the account had accepted."""
        with self._lock:
            return sum(1 for e in self._entries.values() if e.account == account)

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._seen.clear()
            self._duplicates.clear()

    def __iter__(self) -> Iterator[LedgerEntry]:
        with self._lock:
            entries = list(self._entries.values())
        return iter(entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
