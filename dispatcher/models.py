"""The campaign store: SQLAlchemy 2.0 typed models. The database is the truth.

Every recipient is one ``messages`` row whose ``state`` follows :mod:`dispatcher.states`; every
status ever heard about it is a ``status_events`` row (deduplicated by ``dedup_key``), so a
repeated or late callback is recorded once and never moves a message backwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dispatcher.states import CampaignState, MessageState

__all__ = [
    "Base",
    "CallbackInbox",
    "Campaign",
    "InboundMessage",
    "Message",
    "StatusEvent",
    "Suppression",
    "utcnow",
]


def utcnow() -> datetime:
    """Aware UTC now; every timestamp in the store is UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(20))
    sender: Mapped[str] = mapped_column(String(50))
    template: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default=CampaignState.DRAFT, index=True)
    source_file: Mapped[str] = mapped_column(String(500), default="")
    start_at: Mapped[datetime | None] = mapped_column(default=None)
    send_after: Mapped[datetime | None] = mapped_column(default=None)
    validity: Mapped[datetime | None] = mapped_column(default=None)
    estimate: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    pause_reason: Mapped[str | None] = mapped_column(Text, default=None)
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    send_rules: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """Quiet hours (:class:`dispatcher.windows.SendRules` as JSON); ``None``: any time."""
    priority: Mapped[str] = mapped_column(String(10), default="normal", server_default="normal")
    """Its share of the account's budget beside other campaigns (:mod:`dispatcher.fairshare`)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    """One recipient of one campaign."""

    __tablename__ = "messages"
    # Partial: pending messages have neither a poll time nor a provider id, and indexing
    # their NULLs only slowed the bulk insert of a campaign (migration 0002).
    __table_args__ = (
        # A foreign key on SQLite only. On PostgreSQL, triggers (migration 0014) check it per
        # statement rather than per row, with the same cascade on delete: the row-level key
        # was ~4.4 of the ~10 server CPU s of storing a million recipients. The alembic env
        # leaves it out of PostgreSQL's autogenerate comparison (dispatcher.db.include_object).
        # PostgreSQL also has server defaults for state, attempts, error_transient, polls and
        # updated_at, so the ingest's COPY sends only what varies; the ORM sends its own.
        ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE").ddl_if(
            dialect="sqlite"
        ),
        Index("ix_messages_campaign_state", "campaign_id", "state"),
        # Partial: a reply is linked to a message already sent; the bulk insert of a campaign
        # (submitted_at NULL) does not pay for it (a full index cost it 11-38%, bench/audience.py).
        Index(
            "ix_messages_phone_sent",
            "phone",
            sqlite_where=text("submitted_at IS NOT NULL"),
            postgresql_where=text("submitted_at IS NOT NULL"),
        ),
        Index(
            "ix_messages_state_poll",
            "state",
            "next_poll_at",
            sqlite_where=text("next_poll_at IS NOT NULL"),
            postgresql_where=text("next_poll_at IS NOT NULL"),
        ),
        Index(
            "ix_messages_provider_id",
            "provider_message_id",
            sqlite_where=text("provider_message_id IS NOT NULL"),
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId)
    line: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    parts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default=MessageState.PENDING)
    ext_ref: Mapped[str] = mapped_column(String(150), unique=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(64), default=None)
    provider_state: Mapped[str | None] = mapped_column(String(40), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    error_transient: Mapped[bool] = mapped_column(Boolean, default=False)
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    """The file's ``timezone`` cell (IANA); ``None``: found from the number at claim time."""
    queued_at: Mapped[datetime | None] = mapped_column(default=None)
    sending_at: Mapped[datetime | None] = mapped_column(default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    final_at: Mapped[datetime | None] = mapped_column(default=None)
    next_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StatusEvent(Base):
    """Every status heard about a message, from a callback, a poll, a send or ops."""

    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    provider_state: Mapped[str] = mapped_column(String(40))
    state: Mapped[str | None] = mapped_column(String(20))
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallbackInbox(Base):
    """A callback answered but not yet applied (see :mod:`dispatcher.inbox`)."""

    __tablename__ = "callback_inbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()


class InboundMessage(Base):
    """An SMS a recipient sent us (MO), linked to the message it answers when known."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(64), default=None)
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None, index=True
    )
    intent: Mapped[str] = mapped_column(String(10), default="reply", server_default="reply")
    """What the text meant (:class:`dispatcher.keywords.Intent`): opt_out, opt_in or reply."""
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Suppression(Base):
    """A number that must not receive campaigns of one scope (opt-out, complaint, legal).

    ``scope`` is ``*`` (every account) or ``<provider>:<account>`` (see
    :mod:`dispatcher.suppressions`); ``source`` says who decided it.
    """

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("phone", "scope", name="uq_suppressions_phone_scope"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(80), default="*")
    source: Mapped[str] = mapped_column(String(20), default="ops")
    reason: Mapped[str] = mapped_column(String(200), default="opt-out")
    reply_text: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
