"""Store a campaign: the estimate pipeline, with every accepted recipient written as a message.

Everything happens in ONE transaction: the campaign row, every message, and the estimate stored
on the campaign. Any error (a malformed record in the middle of the file, a database failure)
rolls it all back, so there is never a half-created campaign to clean up.

Schedules are aware datetimes. Text is ISO 8601 *with* a zone (``2026-12-01T09:00:00Z`` or
``...+01:00``); a time without a zone is refused rather than guessed, because "10:00" means
Paris to a marketer and UTC to the database. ``start_at`` and ``send_after`` may not be in the
past and ``validity`` must come after both (and after now). The campaign is created ``draft``;
starting it (now, or at ``start_at``) is the feeder's business.

Messages are written in bulk: ``COPY`` on PostgreSQL, ``executemany`` of a prepared ``INSERT``
on SQLite.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, insert, select, update

from dispatcher.config import Settings
from dispatcher.db import is_postgres
from dispatcher.errors import InputError
from dispatcher.fairshare import PRIORITIES
from dispatcher.ingest import Batch, Estimate, Pipeline, Progress
from dispatcher.models import Campaign, Message, Suppression, utcnow
from dispatcher.sources import keep_source
from dispatcher.states import CampaignState, MessageState

__all__ = [
    "CampaignSummary",
    "create_campaign",
    "estimate",
    "parse_when",
    "suppressed_numbers",
]

_COLUMNS = (
    "campaign_id",
    "line",
    "phone",
    "text",
    "encoding",
    "parts",
    "state",
    "ext_ref",
    "attempts",
    "error_transient",
    "polls",
    "cost",
    "updated_at",
)


@dataclass(frozen=True)
class CampaignSummary:
    """The stored draft campaign and the figures of its file."""

    id: int
    name: str
    estimate: Estimate

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, **self.estimate.to_json()}


def parse_when(value: str | datetime | None, name: str) -> datetime | None:
    """An aware datetime from ISO text (``Z`` or an offset); naive input is an error."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InputError(
                f"{name}: {value!r} is not an ISO date-time such as 2026-12-01T09:00:00+01:00",
                code="bad_schedule",
            ) from exc
    else:
        when = value
    if when.tzinfo is None or when.utcoffset() is None:
        raise InputError(
            f"{name}: {value} has no time zone; add Z (UTC) or an offset like +01:00",
            code="bad_schedule",
        )
    return when


def _check_schedule(
    start_at: datetime | None,
    send_after: datetime | None,
    validity: datetime | None,
    now: datetime,
) -> None:
    for name, when in (("start_at", start_at), ("send_after", send_after)):
        if when is not None and when < now:
            raise InputError(f"{name} {when.isoformat()} is in the past", code="bad_schedule")
    if validity is not None:
        for name, when in (("now", now), ("start_at", start_at), ("send_after", send_after)):
            if when is not None and validity <= when:
                raise InputError(
                    f"validity {validity.isoformat()} is not after {name} {when.isoformat()}",
                    code="bad_schedule",
                )


def suppressed_numbers(connection: Connection) -> frozenset[str]:
    """Every suppressed E.164 number (opt-outs are far fewer than recipients)."""
    return frozenset(connection.scalars(select(Suppression.phone)))


@contextlib.contextmanager
def _rejects_file(path: Path | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def estimate(
    settings: Settings,
    path: Path,
    *,
    provider: str,
    template: str,
    phone_column: str | None = None,
    region: str | None = None,
    smart_encoding: bool = False,
    rejects_path: Path | None = None,
    engine: Engine | None = None,
    progress: Progress | None = None,
) -> Estimate:
    """The figures of a file without storing anything (suppressions read from ``engine``)."""
    suppressed: frozenset[str] = frozenset()
    if engine is not None:
        with engine.connect() as connection:
            suppressed = suppressed_numbers(connection)
    pipeline = Pipeline(
        settings,
        path,
        provider=provider,
        template=template,
        phone_column=phone_column,
        region=region,
        smart_encoding=smart_encoding,
        suppressed=suppressed,
    )
    with _rejects_file(rejects_path) as rejects:
        for _batch in pipeline.batches(rejects=rejects, progress=progress):
            pass
    return pipeline.estimate


def create_campaign(
    engine: Engine,
    settings: Settings,
    path: Path,
    *,
    provider: str,
    sender: str,
    template: str,
    name: str | None = None,
    start_at: str | datetime | None = None,
    send_after: str | datetime | None = None,
    validity: str | datetime | None = None,
    phone_column: str | None = None,
    region: str | None = None,
    smart_encoding: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    priority: str = "normal",
) -> CampaignSummary:
    """Store a draft campaign and one pending message per valid recipient, atomically."""
    if priority not in PRIORITIES:
        raise InputError(f"priority: one of {', '.join(PRIORITIES)}, not {priority!r}")
    if not sender.strip() or len(sender) > 50:
        raise InputError("sender: give the sender name or number (at most 50 characters)")
    when_start = parse_when(start_at, "start_at")
    when_send = parse_when(send_after, "send_after")
    when_valid = parse_when(validity, "validity")
    _check_schedule(when_start, when_send, when_valid, now or utcnow())
    campaign_name = (name or path.stem)[:200]
    with engine.begin() as connection:
        pipeline = Pipeline(
            settings,
            path,
            provider=provider,
            template=template,
            phone_column=phone_column,
            region=region,
            smart_encoding=smart_encoding,
            suppressed=suppressed_numbers(connection),
        )
        campaign_id: int = connection.execute(
            insert(Campaign).returning(Campaign.id),
            {
                "name": campaign_name,
                "provider": provider,
                "sender": sender,
                "template": template,
                "state": CampaignState.DRAFT,
                "source_file": str(path)[-500:],
                "start_at": when_start,
                "send_after": when_send,
                "validity": when_valid,
                "priority": priority,
                "estimate": {},
            },
        ).scalar_one()
        write = _copy if is_postgres(engine) else _executemany
        price = pipeline.estimate.price_per_part
        with _rejects_file(rejects_path) as rejects:
            batches = pipeline.batches(rejects=rejects, progress=progress)
            for batch in batches:
                write(connection, campaign_id, batch, float(price))
        figures = pipeline.estimate
        if figures.valid == 0:
            raise InputError(_why_no_recipient(figures), code="no_recipients")
        kept = keep_source(settings.state_dir, campaign_id, path)
        try:
            connection.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(estimate=figures.to_json(), source_file=str(kept))
            )
        except BaseException:
            kept.unlink(missing_ok=True)
            raise
    return CampaignSummary(campaign_id, campaign_name, figures)


def _why_no_recipient(figures: Estimate) -> str:
    """Every row was refused: say how many for which reason, and the first one in full (a text
    over the provider's limit refuses every row, and the marketer must learn it is the text)."""
    counts = Counter(figures.invalid)
    counts.update(duplicate=figures.duplicates, suppressed=figures.suppressed)
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()) if n)
    first = ""
    if figures.first_reject is not None:
        line, reason = figures.first_reject
        first = f"; first, line {line}: {reason}"
    return f"no valid recipient in the file ({figures.rows} rows: {reasons}{first})"


def _rows(campaign_id: int, batch: Batch, price: float, stamp: Any) -> list[tuple[Any, ...]]:
    """Message rows in :data:`_COLUMNS` order; ``stamp`` is ``updated_at`` for the driver."""
    pending = str(MessageState.PENDING)
    prefix = f"c{campaign_id}-"
    return [
        (
            campaign_id,
            line,
            phone,
            text,
            encoding,
            parts,
            pending,
            f"{prefix}{line}",
            0,
            False,
            0,
            parts * price,
            stamp,
        )
        for line, phone, text, encoding, parts in zip(
            batch.lines, batch.phones, batch.texts, batch.encodings, batch.parts, strict=True
        )
    ]


def _copy(connection: Connection, campaign_id: int, batch: Batch, price: float) -> None:
    """PostgreSQL ``COPY``, on the transaction's own connection."""
    driver: Any = connection.connection.driver_connection
    statement = f"COPY messages ({', '.join(_COLUMNS)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in _rows(campaign_id, batch, price, utcnow()):
            copy.write_row(row)


def _executemany(connection: Connection, campaign_id: int, batch: Batch, price: float) -> None:
    """SQLite: one prepared ``INSERT`` run for every row by the driver itself.

    Rows are zipped straight from the batch's lists, with no per-row tuple or ``ext_ref``
    built in Python (SQLite concatenates ``ext_ref`` itself, and the constant zeros are
    literals); SQLAlchemy's per-row parameter processing would cost more than SQLite's
    insert, and the only processed column, ``updated_at``, is converted once by its own type.
    """
    column_type = Message.__table__.c.updated_at.type
    processor = column_type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    stamp = processor(utcnow()) if processor else utcnow()
    sql = (
        f"INSERT INTO messages ({', '.join(_COLUMNS)}) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'c' || ?1 || '-' || ?2, 0, 0, 0, ?8, ?9)"
    )
    rows = list(
        zip(
            repeat(campaign_id),
            batch.lines,
            batch.phones,
            batch.texts,
            batch.encodings,
            batch.parts,
            repeat(str(MessageState.PENDING)),
            [parts * price for parts in batch.parts],
            repeat(stamp),
            strict=False,
        )
    )
    connection.exec_driver_sql(sql, rows)
