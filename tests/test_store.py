"""The store on SQLite and PostgreSQL: migrations, UTC round trips, unique references."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from dispatcher.db import HEAD_REVISION, MIGRATIONS, at_head, make_engine, migrate
from dispatcher.models import Campaign, Message


def _campaign(session: Session) -> Campaign:
    campaign = Campaign(name="c", provider="bytehand", sender="SMSINFO", template="Hi")
    session.add(campaign)
    session.flush()
    return campaign


def _message(campaign: Campaign, line: int, ext_ref: str) -> Message:
    return Message(
        campaign_id=campaign.id,
        line=line,
        phone="+33601020304",
        text="Hi",
        encoding="GSM-7",
        parts=1,
        ext_ref=ext_ref,
    )


def test_migrate_is_idempotent(db_url: str) -> None:
    """Running the migrations twice is harmless."""
    migrate(make_engine(db_url))


def test_datetimes_come_back_aware_utc(db_engine: Engine) -> None:
    """A time stored with any zone is read back as the same instant, in UTC."""
    paris = timezone(timedelta(hours=1))
    when = datetime(2026, 11, 22, 10, 0, tzinfo=paris)
    with Session(db_engine) as session:
        campaign = _campaign(session)
        campaign.start_at = when
        session.commit()
        session.expire_all()
        stored = session.scalars(select(Campaign)).one().start_at
    assert stored == when
    assert stored is not None and stored.tzinfo == UTC


def test_naive_datetime_refused(db_engine: Engine) -> None:
    """A naive datetime is a programming error, caught before it reaches the database."""
    with Session(db_engine) as session:
        campaign = _campaign(session)
        campaign.start_at = datetime(2026, 1, 1)
        with pytest.raises(StatementError, match="naive"):
            session.commit()


def test_ext_ref_is_unique(db_engine: Engine) -> None:
    """Our external reference identifies one message: a second use is refused."""
    with Session(db_engine) as session:
        campaign = _campaign(session)
        session.add_all([_message(campaign, 1, "r1"), _message(campaign, 2, "r1")])
        with pytest.raises(IntegrityError):
            session.commit()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_head_revision_is_alembics_head() -> None:
    """``HEAD_REVISION`` names the newest migration: update it with every new one."""
    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD_REVISION


@pytest.mark.processes
def test_migrating_at_head_does_not_load_alembic(db_url: str) -> None:
    """A process whose database is already migrated (every one but the first) checks the
    version and moves on, without Alembic in memory."""
    program = (
        "import sys; from dispatcher.db import make_engine, migrate; "
        "migrate(make_engine(sys.argv[1])); print('alembic' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", program, db_url], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "False"


def test_a_database_below_head_is_migrated(db_url: str) -> None:
    engine = make_engine(db_url)
    assert at_head(engine)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    assert not at_head(engine)
    migrate(engine)
    assert at_head(engine)
    engine.dispose()
