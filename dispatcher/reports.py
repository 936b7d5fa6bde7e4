"""Delivery reports applied in batches: a few statements per batch, whatever its size.

A batch of reports (callbacks drained from the inbox, or the one report of a poll) is applied in
one transaction with:

1. one ``SELECT`` per way of naming a message (our ``extRef``; the provider's id per provider);
2. one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` of the ``status_events`` rows, so each
   event is recorded once (the raw payload kept) and a repeat is a duplicate;
3. one conditional ``UPDATE`` per reported state: ``WHERE id IN (...) AND state IN (<every state
   the report moves forward from>)``. The decision is taken by the database on the row as it is
   when updated, not on a state read earlier: a report racing another (ACCEPTED and DELIVERED at
   the same instant) cannot make the other one's update miss, so a delivery is never lost;
4. one ``UPDATE status_events SET applied`` for the events that moved their message.

Inside a batch, a report that is not further along than one before it for the same message
is stale (a DELIVERED then a late ACCEPTED), as it would be one batch later; the rest are applied
in delivery-rank order (sent before delivered), which is the order they arrived in.

Reports about messages we cannot match are kept (``status_events`` without a message) up to
:data:`UNMATCHED_EVENTS_CAP` rows per provider; past it they are answered and counted but not
stored, so a provider (or a forger with the webhook credentials) cannot fill the database.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from dispatcher import suppressions
from dispatcher.bulk import insert_rows, is_one_of
from dispatcher.models import Campaign, Message, StatusEvent
from dispatcher.states import FINAL_MESSAGE_STATES, MessageState, delivery_rank, report_applies

__all__ = [
    "DEDUP_KEY_LENGTH",
    "UNMATCHED_EVENTS_CAP",
    "Applied",
    "Report",
    "apply_reports",
    "attempt_ref",
    "bounded_key",
    "forward_sources",
    "split_attempt_ref",
]

log = logging.getLogger(__name__)

UNMATCHED_EVENTS_CAP = 100_000
"""How many reports about messages we cannot match are kept per provider."""

_EVENTS = cast(Table, StatusEvent.__table__)
_MESSAGES = cast(Table, Message.__table__)

_SELECT_CHUNK = 500
"""Ids per ``IN (...)`` list: far below SQLite's and PostgreSQL's parameter limits."""


class Applied(enum.StrEnum):
    """What became of a report."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN_MESSAGE = "unknown_message"


@dataclasses.dataclass(frozen=True)
class Report:
    """One status heard about one message, whatever its source."""

    provider: str
    source: str
    provider_state: str
    state: MessageState | None
    dedup_key: str
    payload: Mapping[str, Any]
    provider_message_id: str | None = None
    ext_ref: str | None = None
    error_code: str | None = None
    """The provider's error code when it gives one beside the state (ByteHand callbacks)."""


DEDUP_KEY_LENGTH = 300
"""The width of the ``dedup_key`` columns."""


def bounded_key(key: str) -> str:
    """``key`` as it fits the column: a longer key keeps its start and ends with the SHA-256
    of the whole, so two keys differing only past the cut stay two events (a plain cut made
    two maximal TimeToChat MOs with different texts one duplicate)."""
    if len(key) <= DEDUP_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: DEDUP_KEY_LENGTH - len(digest) - 1]}#{digest}"


@functools.cache
def forward_sources(reported: MessageState) -> frozenset[MessageState]:
    """Every state a report of ``reported`` moves a message forward from."""
    return frozenset(state for state in MessageState if report_applies(state, reported))


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _SELECT_CHUNK):
        yield values[start : start + _SELECT_CHUNK]


def attempt_ref(ext_ref: str, attempt: int) -> str:
    """The extRef sent with one attempt of a message: its own ref and the attempt number, so a
    late report of an earlier attempt is never taken for the attempt now in flight."""
    return f"{ext_ref}.{attempt}"


def split_attempt_ref(ref: str) -> tuple[str, int | None]:
    """``(message ext_ref, attempt)`` of a reported extRef; ``None``: sent without an attempt."""
    base, _, attempt = ref.rpartition(".")
    if base and attempt.isdigit():
        return base, int(attempt)
    return ref, None


def _match_by_ref(session: Session, reports: Sequence[Report]) -> tuple[dict[str, int], set[str]]:
    """Messages named by our ``extRef``, and the refs naming an earlier attempt of theirs.

    An extRef naming an attempt other than the message's current one matches nothing: it is a
    late report of an earlier attempt and says nothing of the one in flight."""
    refs = sorted({split_attempt_ref(r.ext_ref)[0] for r in reports if r.ext_ref})
    current: dict[str, tuple[int, int]] = {}
    for chunk in _chunks(refs):
        attempts_now = session.execute(
            select(Message.ext_ref, Message.id, Message.attempts).where(
                is_one_of(session, Message.ext_ref, chunk)
            )
        )
        current.update({ref: (mid, attempts) for ref, mid, attempts in attempts_now})
    by_ref: dict[str, int] = {}
    earlier_attempts: set[str] = set()
    for r in reports:
        base, attempt = split_attempt_ref(r.ext_ref) if r.ext_ref else ("", None)
        named = current.get(base)
        if r.ext_ref is None or named is None:
            continue
        if attempt is None or attempt == named[1]:
            by_ref[r.ext_ref] = named[0]
        else:
            earlier_attempts.add(r.ext_ref)
    return by_ref, earlier_attempts


def _match(session: Session, reports: Sequence[Report]) -> list[int | None]:
    """The message each report names: by our ``extRef`` first, else by provider id."""
    by_ref, earlier_attempts = _match_by_ref(session, reports)
    by_pid: dict[tuple[str, str], int] = {}
    wanted: dict[str, set[str]] = {}
    for r in reports:
        if r.provider_message_id and not (r.ext_ref and r.ext_ref in by_ref):
            wanted.setdefault(r.provider, set()).add(r.provider_message_id)
    for provider, pids in wanted.items():
        for chunk in _chunks(sorted(pids)):
            rows = session.execute(
                select(Message.provider_message_id, func.min(Message.id))
                .join(Campaign)
                .where(
                    Campaign.provider == provider,
                    is_one_of(session, Message.provider_message_id, chunk),
                )
                .group_by(Message.provider_message_id)
            )
            by_pid.update({(provider, pid): mid for pid, mid in rows if pid is not None})
    matched: list[int | None] = []
    for r in reports:
        if r.ext_ref in earlier_attempts:
            matched.append(None)
            continue
        found = by_ref.get(r.ext_ref) if r.ext_ref else None
        if found is None and r.provider_message_id:
            found = by_pid.get((r.provider, r.provider_message_id))
        matched.append(found)
    return matched


def _insert(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert event rows, ignoring those already stored; the dedup keys that are new."""
    # RETURNING, not rowcount: on PostgreSQL the driver reports rowcount -1 here.
    return set(
        insert_rows(session.connection(), _EVENTS, rows, skip_conflicts=True, returning="dedup_key")
    )


def _unmatched_room(
    session: Session, reports: Sequence[Report], matched: Sequence[int | None]
) -> dict[str, int]:
    """How many more unmatched events each provider of this batch may keep."""
    providers = {r.provider for r, mid in zip(reports, matched, strict=True) if mid is None}
    room: dict[str, int] = {}
    for provider in providers:
        kept = session.scalar(
            select(func.count())
            .select_from(StatusEvent)
            .where(StatusEvent.provider == provider, StatusEvent.message_id.is_(None))
        )
        room[provider] = max(0, UNMATCHED_EVENTS_CAP - int(kept or 0))
    return room


def _move(
    session: Session, state: MessageState, provider_state: str, ids: Sequence[int], now: datetime
) -> set[int]:
    """One conditional UPDATE moving ``ids`` to ``state`` where that is forward; those moved."""
    values: dict[str, Any] = {
        "state": state,
        "provider_state": provider_state,
        "updated_at": now,
        "submitted_at": func.coalesce(Message.submitted_at, now),
    }
    if state in FINAL_MESSAGE_STATES:
        values |= {"final_at": now, "next_poll_at": None}
    else:
        # Settled from in_doubt (or sending) without a final word: nothing scheduled a poll,
        # so without one it would stay sent forever and its campaign would never finish.
        values["next_poll_at"] = func.coalesce(Message.next_poll_at, now)
    statement = (
        update(Message)
        .where(
            is_one_of(session, Message.id, ids),
            Message.state.in_(sorted(forward_sources(state))),
        )
        .values(**values)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return {mid for (mid,) in session.execute(statement)}


def _fill_provider_ids(session: Session, named: Mapping[int, str]) -> None:
    """Record the provider id a report named for moved messages that had none (a send in doubt
    settled by its extRef); one executemany, never overwriting an id the send recorded."""
    if not named:
        return
    session.connection().execute(
        update(_MESSAGES)
        .where(_MESSAGES.c.id == bindparam("mid"), _MESSAGES.c.provider_message_id.is_(None))
        .values(provider_message_id=bindparam("pid")),
        [{"mid": mid, "pid": pid} for mid, pid in named.items()],
    )


def _event_rows(
    session: Session,
    reports: Sequence[Report],
    matched: Sequence[int | None],
    keys: Sequence[str],
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[int, Applied]]:
    """The ``status_events`` rows to insert, and the reports settled without one: a repeat
    inside the batch, or an unmatched report past the cap."""
    room = _unmatched_room(session, reports, matched)
    rows: list[dict[str, Any]] = []
    settled: dict[int, Applied] = {}
    seen: set[str] = set()
    for index, (report, mid, key) in enumerate(zip(reports, matched, keys, strict=True)):
        if key in seen:
            settled[index] = Applied.DUPLICATE
            continue
        seen.add(key)
        if mid is None:
            if room[report.provider] <= 0:
                log.warning(
                    "%s report for an unknown message not kept: %d already kept",
                    report.provider,
                    UNMATCHED_EVENTS_CAP,
                )
                settled[index] = Applied.UNKNOWN_MESSAGE
                continue
            room[report.provider] -= 1
        rows.append(
            {
                "message_id": mid,
                "provider": report.provider,
                "source": report.source,
                "provider_state": report.provider_state,
                "state": report.state,
                "dedup_key": key,
                "payload": dict(report.payload),
                "received_at": now,
                "applied": False,
            }
        )
    return rows, settled


def _suppress_blacklisted(
    session: Session, fresh: Iterable[tuple[Report, int | None]], now: datetime
) -> None:
    """A new report saying the recipient is blacklisted (ByteHand 22, TimeToChat
    ``CRA_SMS_BLACKLIST``) suppresses the number for that provider (rare: one by one)."""
    for report, mid in fresh:
        if mid is None:
            continue
        code = report.error_code
        if not (
            suppressions.is_blacklist(report.provider, report.provider_state)
            or suppressions.is_blacklist(report.provider, code)
        ):
            continue
        phone = session.scalar(select(Message.phone).where(Message.id == mid))
        if phone is not None:
            suppressions.add(
                session,
                phone,
                scope=report.provider,
                source="provider",
                reason=f"{report.provider} {report.provider_state}",
                now=now,
            )


def apply_reports(session: Session, reports: Sequence[Report], now: datetime) -> list[Applied]:
    """Record each report once and move its message forward where it is news; one result each.

    Runs in the caller's transaction; the caller commits (all of the batch, or none of it).
    """
    matched = _match(session, reports)
    keys = [bounded_key(report.dedup_key) for report in reports]
    rows, results = _event_rows(session, reports, matched, keys, now)
    new = _insert(session, rows)
    fresh = zip(reports, matched, strict=True)
    _suppress_blacklisted(
        session, ((r, mid) for (r, mid), key in zip(fresh, keys, strict=True) if key in new), now
    )
    # One UPDATE per (state, provider wording): ByteHand's wordings per state are few.
    groups: dict[tuple[MessageState, str], dict[int, int]] = {}
    furthest: dict[int, int] = {}
    for index, (report, mid) in enumerate(zip(reports, matched, strict=True)):
        if index in results:
            continue
        if keys[index] not in new:
            results[index] = Applied.DUPLICATE
        elif mid is None:
            results[index] = Applied.UNKNOWN_MESSAGE
        elif report.state is None or delivery_rank(report.state) <= furthest.get(mid, 0):
            # Not news, or not after a report that came before it in this batch (a DELIVERED
            # then a late ACCEPTED: the ACCEPTED is stale, as it would be one batch later).
            results[index] = Applied.STALE
        else:
            furthest[mid] = delivery_rank(report.state)
            groups.setdefault((report.state, report.provider_state), {})[mid] = index
    applied_keys: list[str] = []
    named: dict[int, str] = {}
    for state, wording in sorted(groups, key=lambda group: delivery_rank(group[0])):
        members = groups[state, wording]
        for mid in _move(session, state, wording, sorted(members), now):
            index = members[mid]
            results[index] = Applied.APPLIED
            applied_keys.append(keys[index])
            pid = reports[index].provider_message_id
            if pid and reports[index].ext_ref:  # found by extRef: its provider id may be unknown
                named[mid] = pid
    _fill_provider_ids(session, named)
    if applied_keys:
        session.execute(
            update(StatusEvent)
            .where(is_one_of(session, StatusEvent.dedup_key, applied_keys))
            .values(applied=True)
            .execution_options(synchronize_session=False)
        )
    return [results.get(index, Applied.STALE) for index in range(len(reports))]
