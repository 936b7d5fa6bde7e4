"""The suppression list: who must not receive campaigns, decided by whom, and its effect.

Scope. An entry holds for ``*`` (every account: ops, legal, an import), for one provider
(``bytehand``: what that provider told us it blacklists), or for one provider account,
``<provider>:<account id>`` (``bytehand:1000``, ``timetochat:123456``). A keyword
opt-out holds for the account it arrived on: one account is one brand's sending identity (its
ByteHand sender names, its TimeToChat 09 numbers), so a STOP to one brand stops that brand and
not a sister brand the customer still wants to hear from. ``[audience] opt_out_scope =
"global"`` makes every opt-out global instead. A number is suppressed for a campaign when an
entry of scope ``*``, of the campaign's provider or of its account exists.

Sources: ``keyword`` (an opt-out reply), ``provider`` (the provider said the number is
blacklisted: ByteHand error 22, TimeToChat ``CRA_SMS_BLACKLIST``/``CRA_SMS_OPBLACKLIST``),
``import`` and ``ops``.

Effect. Later campaigns drop the number at creation (:mod:`dispatcher.loader`); messages not yet
handed to a provider (``pending``, ``queued``) end ``suppressed`` with the reason at once
(:func:`suppress_unsent`), and every claim re-checks (:func:`suppress_claimed`), so a message
already on the broker is not sent either.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dispatcher.constants import BYTEHAND, TIMETOCHAT
from dispatcher.errors import InputError, ProviderError
from dispatcher.models import Campaign, Message, Suppression
from dispatcher.phones import PhoneNormalizer
from dispatcher.states import CampaignState, MessageState

__all__ = [
    "BLACKLIST_CODES",
    "GLOBAL",
    "SOURCES",
    "Entry",
    "add",
    "blacklisted",
    "covering",
    "export_csv",
    "import_csv",
    "is_blacklist",
    "listing",
    "remove",
    "scope_for",
    "suppress_claimed",
    "suppress_unsent",
    "suppressed_numbers",
]

GLOBAL = "*"
SOURCES = ("keyword", "provider", "import", "ops")
BLACKLIST_CODES: frozenset[tuple[str, str]] = frozenset(
    {
        (BYTEHAND, "22"),
        (TIMETOCHAT, "CRA_SMS_BLACKLIST"),
        (TIMETOCHAT, "CRA_SMS_OPBLACKLIST"),
    }
)
"""(provider, code or state) answers meaning "this recipient is blacklisted"."""

_OPEN_CAMPAIGNS = (
    CampaignState.DRAFT,
    CampaignState.SCHEDULED,
    CampaignState.RUNNING,
    CampaignState.PAUSED,
)
_UNSENT = (MessageState.PENDING, MessageState.QUEUED)


def is_blacklist(provider: str, code: str | None) -> bool:
    """Whether a provider's error code or state means the recipient is blacklisted."""
    return code is not None and (provider, code) in BLACKLIST_CODES


def scope_for(provider: str, account: str) -> str:
    """The scope of one provider account (the provider's, when no account id is set)."""
    return f"{provider}:{account}" if account else provider


@dataclasses.dataclass(frozen=True)
class Entry:
    """One suppression, as the CLI and the API show it."""

    phone: str
    scope: str
    source: str
    reason: str
    reply_text: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"created_at": self.created_at.isoformat()}


def _check_scope(scope: str) -> str:
    provider, colon, account = scope.partition(":")
    if scope != GLOBAL and (provider not in (BYTEHAND, TIMETOCHAT) or (colon and not account)):
        raise InputError(
            f"scope {scope!r}: use *, bytehand, timetochat or <provider>:<account id>",
            code="bad_scope",
        )
    return scope


def covering(scope: str) -> tuple[str, ...]:
    """The scopes whose entries hold for campaigns of account ``scope``."""
    return (GLOBAL, scope.partition(":")[0], scope)


def suppressed_numbers(connection: Connection | Session, scope: str | None) -> frozenset[str]:
    """Numbers suppressed for campaigns of account ``scope`` (``None``: any entry)."""
    statement = select(Suppression.phone)
    if scope is not None:
        statement = statement.where(Suppression.scope.in_(covering(scope)))
    return frozenset(connection.scalars(statement))


def blacklisted(phones: Sequence[str], answers: Sequence[object]) -> list[str]:
    """Numbers whose send answer (an error with the provider's code) means "blacklisted"."""
    return [
        phone
        for phone, answer in zip(phones, answers, strict=False)
        if isinstance(answer, ProviderError) and is_blacklist(answer.provider, answer.code)
    ]


def _campaign_scope_filter(scope: str) -> Any:
    """Open campaigns an entry of ``scope`` applies to."""
    campaigns = select(Campaign.id).where(Campaign.state.in_(_OPEN_CAMPAIGNS))
    if scope != GLOBAL:  # one provider has one account in a deployment
        campaigns = campaigns.where(Campaign.provider == scope.partition(":")[0])
    return Message.campaign_id.in_(campaigns)


def suppress_unsent(
    session: Session, phones: Collection[str], scope: str, reason: str, now: datetime
) -> int:
    """Messages of open campaigns in ``scope`` not yet handed to a provider end ``suppressed``."""
    if not phones:
        return 0
    moved = session.execute(
        update(Message)
        .where(
            Message.phone.in_(list(phones)),
            Message.state.in_(_UNSENT),
            _campaign_scope_filter(scope),
        )
        .values(state=MessageState.SUPPRESSED, last_error=reason, final_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(moved.rowcount)  # type: ignore[attr-defined]


def suppress_claimed(session: Session, ids: Sequence[int], scope: str, now: datetime) -> list[int]:
    """Of messages just claimed (``queued``), those whose number is suppressed for ``scope``
    end ``suppressed``; returns their ids (the caller must not send them)."""
    if not ids:
        return []
    entries = select(Suppression.phone).where(Suppression.scope.in_(covering(scope)))
    rows = session.execute(
        update(Message)
        .where(
            Message.id.in_(list(ids)),
            Message.state == MessageState.QUEUED,
            Message.phone.in_(entries),
        )
        .values(
            state=MessageState.SUPPRESSED, last_error="suppressed", final_at=now, updated_at=now
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(row[0] for row in rows)


def add(
    session: Session,
    phone: str,
    *,
    scope: str,
    source: str,
    reason: str,
    now: datetime,
    reply_text: str | None = None,
) -> bool:
    """Suppress ``phone`` for ``scope`` (kept once; the first entry wins) and suppress its
    unsent messages; True if the entry is new."""
    if source not in SOURCES:
        raise InputError(f"source {source!r}: use one of {', '.join(SOURCES)}")
    _check_scope(scope)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    created = session.execute(
        insert(Suppression)
        .values(
            phone=phone,
            scope=scope,
            source=source,
            reason=reason[:200],
            reply_text=reply_text,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Suppression.id)
    ).first()
    suppress_unsent(session, [phone], scope, f"suppressed: {reason}"[:200], now)
    return created is not None


def remove(
    session: Session, phone: str, *, scope: str | None, sources: Collection[str] | None = None
) -> int:
    """Lift the suppressions of ``phone`` (of one scope, or every scope when ``None``; of some
    sources only, e.g. a START lifts a keyword opt-out but never an ops or legal entry)."""
    statement = delete(Suppression).where(Suppression.phone == phone)
    if scope is not None:
        statement = statement.where(Suppression.scope == _check_scope(scope))
    if sources is not None:
        statement = statement.where(Suppression.source.in_(list(sources)))
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def listing(
    session: Session,
    *,
    scope: str | None = None,
    phone: str | None = None,
    limit: int | None = None,
) -> list[Entry]:
    """Entries newest first, optionally of one scope or one number."""
    statement = select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc())
    if scope is not None:
        statement = statement.where(Suppression.scope == scope)
    if phone is not None:
        statement = statement.where(Suppression.phone == phone)
    if limit is not None:
        statement = statement.limit(limit)
    return [
        Entry(s.phone, s.scope, s.source, s.reason, s.reply_text, s.created_at)
        for s in session.scalars(statement)
    ]


_PHONE_HEADERS = ("phone", "number", "msisdn", "mobile", "to", "numero", "telephone")


def import_csv(
    session: Session, path: Path, *, scope: str, region: str, reason: str, now: datetime
) -> tuple[int, list[str]]:
    """Suppress every number of a CSV (a ``phone`` column, else the first; ``scope`` and
    ``reason`` columns override the defaults per row). Returns (new entries, rejected cells)."""
    normalizer = PhoneNormalizer(region)
    added, rejected = 0, []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        first = sample.splitlines()[0] if sample.strip() else ""
        # One column needs no sniffing (the Sniffer refuses a file without a delimiter).
        delimiter = max(",;\t", key=first.count) if any(c in first for c in ",;\t") else ","
        rows = list(csv.reader(handle, delimiter=delimiter))
    if not rows:
        return 0, []
    header = [cell.strip().lower() for cell in rows[0]]
    has_header = any(name in header for name in (*_PHONE_HEADERS, "scope", "reason"))
    phone_at = next((header.index(n) for n in _PHONE_HEADERS if n in header), 0)
    scope_at = header.index("scope") if has_header and "scope" in header else None
    reason_at = header.index("reason") if has_header and "reason" in header else None
    for row in rows[1:] if has_header else rows:
        if len(row) <= phone_at or not row[phone_at].strip():
            continue
        e164, _why = normalizer.normalize(row[phone_at])
        if e164 is None:
            rejected.append(row[phone_at])
            continue
        row_scope = row[scope_at].strip() if scope_at is not None and len(row) > scope_at else ""
        row_reason = (
            row[reason_at].strip() if reason_at is not None and len(row) > reason_at else ""
        )
        added += add(
            session,
            e164,
            scope=row_scope or scope,
            source="import",
            reason=row_reason or reason,
            now=now,
        )
    return added, rejected


def export_csv(entries: Iterable[Entry], path: Path) -> int:
    """Write entries as CSV (``phone,scope,source,reason,reply_text,created_at``)."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "scope", "source", "reason", "reply_text", "created_at"])
        for entry in entries:
            writer.writerow(
                [
                    entry.phone,
                    entry.scope,
                    entry.source,
                    entry.reason,
                    entry.reply_text or "",
                    entry.created_at.isoformat(),
                ]
            )
            count += 1
    return count
