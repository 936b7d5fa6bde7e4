"""Every message belongs to a campaign, on both backends.

SQLite keeps the foreign key ``messages.campaign_id → campaigns.id`` (ON DELETE CASCADE); on
PostgreSQL triggers checked per statement keep it (migration 0014: the row-level key was
~4.4 s of server CPU a million recipients). Here: a message for a missing campaign is refused
however it is written (one ``INSERT``, many rows, the ingest's own ``COPY``, an ``UPDATE``),
deleting a campaign deletes its messages and what hangs off them as before, and the models
still match the migrated schema (alembic's autogenerate finds nothing to do).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from dispatcher.config import load_settings
from dispatcher.db import MIGRATIONS, include_object, make_engine, migrate
from dispatcher.ingest import Batch
from dispatcher.loader import _copy, create_campaign
from dispatcher.models import Base, Campaign, InboundMessage, Message, StatusEvent
from tests.conftest import insert_campaign
from tests.databases import PostgresSchemas

FOREIGN_KEY_VIOLATION = "23503"


def _message(campaign_id: int, line: int) -> dict[str, object]:
    return {
        "campaign_id": campaign_id,
        "line": line,
        "phone": f"+3360102{line:04d}",
        "text": "Hi",
        "encoding": "GSM-7",
        "parts": 1,
        "ext_ref": f"x{campaign_id}-{line}",
    }


def _sqlstate(error: DBAPIError) -> str | None:
    orig = error.orig
    return getattr(orig, "sqlstate", None) or (  # psycopg; sqlite3 has no SQLSTATE
        FOREIGN_KEY_VIOLATION if "FOREIGN KEY" in str(orig) else None
    )


def _a_campaign(engine: Engine, lines: int = 2) -> tuple[int, list[int]]:
    with Session(engine) as session:
        campaign_id, ids = insert_campaign(session, [{"state": "pending"}] * lines)
        session.commit()
    return campaign_id, ids


def _messages(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Message)).scalar_one()


def test_insert_for_a_missing_campaign_is_refused(db_engine: Engine) -> None:
    """One row, or many rows of which one names no campaign: refused, nothing stored."""
    campaign_id, _ = _a_campaign(db_engine)
    with pytest.raises(IntegrityError) as raised, db_engine.begin() as connection:
        connection.execute(insert(Message), [_message(campaign_id + 1, 1)])
    assert _sqlstate(raised.value) == FOREIGN_KEY_VIOLATION
    assert "messages_campaign_id_fkey" in str(raised.value) or db_engine.dialect.name == "sqlite"
    rows = [_message(campaign_id, line) for line in range(10, 20)] + [_message(404, 1)]
    with pytest.raises(IntegrityError), db_engine.begin() as connection:
        connection.execute(insert(Message), rows)
    assert _messages(db_engine) == 2
    with db_engine.begin() as connection:  # the same rows, all for a real campaign: stored
        connection.execute(insert(Message), rows[:-1])
    assert _messages(db_engine) == 12


def test_orm_insert_for_a_missing_campaign_is_refused(db_engine: Engine) -> None:
    with Session(db_engine) as session:
        session.add(Message(**_message(77, 1)))
        with pytest.raises(IntegrityError) as raised:
            session.commit()
    assert _sqlstate(raised.value) == FOREIGN_KEY_VIOLATION


def test_ingest_copy_for_a_missing_campaign_is_refused(postgres_engine: Engine) -> None:
    """The loader's own ``COPY`` (8 columns, server defaults for the rest) is checked too."""
    campaign_id, _ = _a_campaign(postgres_engine)
    batch = Batch(
        lines=[11, 12, 13],
        phones=["+33601020301", "+33601020302", "+33601020303"],
        texts=["Hi"] * 3,
        encodings=["GSM-7"] * 3,
        parts=[1] * 3,
    )
    # The COPY runs on the driver's own cursor: psycopg's error, not SQLAlchemy's wrapper.
    refused = pytest.raises(psycopg.errors.ForeignKeyViolation)
    with refused as raised, postgres_engine.begin() as connection:
        _copy(connection, campaign_id + 1, batch, 0.05)
    assert raised.value.sqlstate == FOREIGN_KEY_VIOLATION
    assert raised.value.diag.message_detail == (
        f'Key (campaign_id)=({campaign_id + 1}) is not present in table "campaigns".'
    )
    with postgres_engine.begin() as connection:
        _copy(connection, campaign_id, batch, 0.05)
    assert _messages(postgres_engine) == 5


def test_update_to_a_missing_campaign_is_refused(db_engine: Engine) -> None:
    campaign_id, ids = _a_campaign(db_engine)
    other, _ = _a_campaign(db_engine, lines=0)
    with pytest.raises(IntegrityError) as raised, db_engine.begin() as connection:
        connection.execute(
            text("UPDATE messages SET campaign_id = 999 WHERE id = :id"), {"id": ids[0]}
        )
    assert _sqlstate(raised.value) == FOREIGN_KEY_VIOLATION
    with db_engine.begin() as connection:  # to a real campaign, or another column: fine
        connection.execute(
            text("UPDATE messages SET campaign_id = :c WHERE id = :id"), {"c": other, "id": ids[0]}
        )
        connection.execute(text("UPDATE messages SET state = 'queued'"))
    with db_engine.connect() as connection:
        owners = connection.execute(select(Message.campaign_id).order_by(Message.id)).scalars()
        assert list(owners) == [other, campaign_id]


def test_deleting_a_campaign_cascades(db_engine: Engine) -> None:
    """Its messages go, their status events too; a reply to one of them stays, unlinked;
    other campaigns are untouched (the old ``ON DELETE CASCADE``, on both backends)."""
    doomed, doomed_ids = _a_campaign(db_engine, lines=3)
    kept, kept_ids = _a_campaign(db_engine, lines=2)
    now = datetime.now(UTC)
    with Session(db_engine) as session:
        for message_id in (doomed_ids[0], kept_ids[0]):
            session.add(
                StatusEvent(
                    message_id=message_id,
                    provider="bytehand",
                    source="callback",
                    provider_state="DELIVERED",
                    dedup_key=f"k{message_id}",
                )
            )
            session.add(
                InboundMessage(
                    provider="bytehand",
                    from_number="+33601020304",
                    to_number="36180",
                    text="merci",
                    reply_to_id=message_id,
                    dedup_key=f"in{message_id}",
                    received_at=now,
                )
            )
        session.commit()
    with db_engine.begin() as connection:
        connection.execute(text("DELETE FROM campaigns WHERE id = :id"), {"id": doomed})
    with Session(db_engine) as session:
        assert session.scalars(select(Message.id).order_by(Message.id)).all() == kept_ids
        assert session.scalars(select(StatusEvent.message_id)).all() == [kept_ids[0]]
        replies = session.scalars(select(InboundMessage.reply_to_id).order_by(InboundMessage.id))
        assert replies.all() == [None, kept_ids[0]]
        assert session.scalars(select(Campaign.id)).all() == [kept]


def test_changing_a_referenced_campaign_id_is_refused(db_engine: Engine) -> None:
    campaign_id, _ = _a_campaign(db_engine)
    empty, _ = _a_campaign(db_engine, lines=0)
    with pytest.raises(IntegrityError) as raised, db_engine.begin() as connection:
        connection.execute(
            text("UPDATE campaigns SET id = 500 WHERE id = :id"), {"id": campaign_id}
        )
    assert _sqlstate(raised.value) == FOREIGN_KEY_VIOLATION
    with db_engine.begin() as connection:  # one no message names: free to change
        connection.execute(text("UPDATE campaigns SET id = 501 WHERE id = :id"), {"id": empty})


def test_truncating_campaigns_alone_is_refused(postgres_engine: Engine) -> None:
    _a_campaign(postgres_engine)
    with pytest.raises(DBAPIError, match="cannot truncate"), postgres_engine.begin() as c:
        c.execute(text("TRUNCATE campaigns"))
    assert _messages(postgres_engine) == 2
    with postgres_engine.begin() as connection:  # with its messages (and theirs): fine
        connection.execute(text("TRUNCATE campaigns, messages, status_events, inbound_messages"))
    assert _messages(postgres_engine) == 0


def test_campaign_delete_waits_for_an_insert_in_flight(postgres_engine: Engine) -> None:
    """The check locks the campaign as a foreign key does: a delete waits for the inserting
    transaction, then deletes what it committed too: no orphan either way round."""
    campaign_id, _ = _a_campaign(postgres_engine)
    inserting = postgres_engine.connect()
    transaction = inserting.begin()
    inserting.execute(insert(Message), [_message(campaign_id, 7)])
    deleted = threading.Event()

    def delete() -> None:
        with postgres_engine.begin() as connection:
            connection.execute(text("DELETE FROM campaigns WHERE id = :id"), {"id": campaign_id})
        deleted.set()

    deleter = threading.Thread(target=delete)
    deleter.start()
    assert not deleted.wait(0.5), "the delete did not wait for the insert's lock"
    transaction.commit()
    inserting.close()
    deleter.join(10)
    assert deleted.is_set()
    assert _messages(postgres_engine) == 0

    # The other way round: a campaign deleted (not yet committed), then messages for it.
    campaign_id, _ = _a_campaign(postgres_engine, lines=0)
    deleting = postgres_engine.connect()
    transaction = deleting.begin()
    deleting.execute(text("DELETE FROM campaigns WHERE id = :id"), {"id": campaign_id})
    failure: list[BaseException] = []

    def insert_late() -> None:
        try:
            with postgres_engine.begin() as connection:
                connection.execute(insert(Message), [_message(campaign_id, 8)])
        except BaseException as exc:  # reported below
            failure.append(exc)

    inserter = threading.Thread(target=insert_late)
    inserter.start()
    inserter.join(0.5)
    assert inserter.is_alive(), "the insert did not wait for the delete's lock"
    transaction.commit()
    deleting.close()
    inserter.join(10)
    assert len(failure) == 1 and isinstance(failure[0], IntegrityError)
    assert _messages(postgres_engine) == 0


def test_campaign_delete_refused_outside_read_committed(postgres_engine: Engine) -> None:
    """Under REPEATABLE READ the cascade could miss messages committed after the snapshot:
    refused rather than leave orphans."""
    campaign_id, _ = _a_campaign(postgres_engine)
    engine = postgres_engine.execution_options(isolation_level="REPEATABLE READ")
    with pytest.raises(DBAPIError, match="READ COMMITTED"), engine.begin() as connection:
        connection.execute(text("DELETE FROM campaigns WHERE id = :id"), {"id": campaign_id})
    assert _messages(postgres_engine) == 2


def test_ingest_fills_the_constant_columns(db_engine: Engine, tmp_path: Path) -> None:
    """What the ``COPY`` leaves to PostgreSQL's server defaults is what SQLite is given."""
    path = tmp_path / "recipients.csv"
    path.write_text("phone;first_name\n0601020304;Ann\n0601020305;Bob\n", encoding="utf-8")
    before = datetime.now(UTC) - timedelta(seconds=5)
    create_campaign(
        db_engine, load_settings({}), path, provider="bytehand", sender="S", template="Hi"
    )
    with Session(db_engine) as session:
        for message in session.scalars(select(Message)):
            assert (message.state, message.attempts, message.polls) == ("pending", 0, 0)
            assert message.error_transient is False and message.timezone is None
            assert message.last_error is None and message.cost is not None
            assert before < message.updated_at < datetime.now(UTC) + timedelta(seconds=5)


def test_models_match_the_migrated_schema(db_engine: Engine) -> None:
    """Autogenerate finds nothing to add or drop: the foreign key is SQLite's only, and left
    out of PostgreSQL's comparison by ``include_object``."""
    dialect = db_engine.dialect.name
    with db_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object(dialect)}
        )
        assert compare_metadata(context, Base.metadata) == []
        keys = sqlalchemy.inspect(connection).get_foreign_keys("messages")
    assert [key["referred_table"] for key in keys] == (["campaigns"] if dialect == "sqlite" else [])


def test_downgrade_restores_the_foreign_key(postgres_engine: Engine) -> None:
    """Down to 0013 and back up: the key returns, then the triggers again."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with postgres_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0013")
    inspector = sqlalchemy.inspect(postgres_engine)
    assert [key["name"] for key in inspector.get_foreign_keys("messages")] == [
        "messages_campaign_id_fkey"
    ]
    migrate(postgres_engine)
    with postgres_engine.connect() as connection:
        triggers = connection.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
                "('messages'::regclass, 'campaigns'::regclass) ORDER BY tgname"
            )
        ).scalars()
        assert list(triggers) == [
            "campaigns_cascade_delete",
            "campaigns_id_update",
            "campaigns_truncate",
            "messages_campaign_insert",
            "messages_campaign_update",
        ]
    assert sqlalchemy.inspect(postgres_engine).get_foreign_keys("messages") == []


@pytest.fixture
def postgres_engine(postgres_schemas: PostgresSchemas) -> Iterator[Engine]:
    """An engine on this session's migrated, emptied PostgreSQL schema."""
    engine = make_engine(postgres_schemas.empty())
    yield engine
    engine.dispose()
