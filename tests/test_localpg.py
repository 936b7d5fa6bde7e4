"""The fresh-machine path of the PostgreSQL tests: a server started from the pgserver wheel."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from dispatcher.db import make_engine, migrate

pytest.importorskip("pgserver")

from tests.localpg import local_postgres


@pytest.mark.processes  # starts a PostgreSQL server
def test_local_postgres_takes_our_migrations(tmp_path: Path) -> None:
    """Started on a loopback port, it accepts the schema and is gone once stopped."""
    with local_postgres(tmp_path) as url:
        assert "@127.0.0.1:" in url
        engine = make_engine(url)
        migrate(engine)
        with engine.connect() as connection:
            assert (
                connection.execute(sqlalchemy.text("SELECT count(*) FROM messages")).scalar() == 0
            )
        engine.dispose()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        sqlalchemy.create_engine(url).connect()
