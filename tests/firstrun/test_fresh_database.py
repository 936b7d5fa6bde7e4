"""A fresh database needs no command first: every process brings the schema to head."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tests.firstrun.test_offline import stranger_env, with_bytehand_sandbox

ROOT = Path(__file__).resolve().parents[2]
Offline = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, never migrated: a new SQLite file, a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    admin_url = request.getfixturevalue("postgres_url")
    admin = sqlalchemy.create_engine(admin_url)
    schema = f"fresh_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{admin_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.processes
def test_processes_migrating_together(fresh_db_url: str) -> None:
    """Six processes migrating one fresh database at once all succeed; the schema is at head."""
    code = (
        "import sys; from dispatcher.db import make_engine, migrate; "
        "migrate(make_engine(sys.argv[1]))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, fresh_db_url],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [p.returncode for p in processes] == [0] * 6, "\n".join(errors)
    from dispatcher.db import make_engine

    engine = make_engine(fresh_db_url)
    with engine.connect() as connection:
        version = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))
        assert len(version.all()) == 1
    engine.dispose()


@pytest.mark.processes  # a fleet, but nothing judged by the clock
def test_fleet_starts_on_a_fresh_state_directory(offline: Offline, tmp_path: Path) -> None:
    """Web, worker and beat started together on nothing: the console answers, a start through
    the API kicks the feeder, ticks succeed, each process logs its providers' configuration."""
    result = offline(
        [
            sys.executable,
            str(ROOT / "tests" / "firstrun" / "fresh_fleet.py"),
            str(tmp_path / "state"),
        ],
        cwd=ROOT,
        env=with_bytehand_sandbox(stranger_env(tmp_path)) | {"PYTHONPATH": str(ROOT)},
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["dashboard"] == 200, seen["page"]
    assert "Sign in" in seen["page"]  # the console, asking a fresh browser for the token
    assert seen["start"]["kicked"] is True  # the web app's kick reached our broker
    worker = seen["logs"]["worker"]
    assert "Task dispatcher.tick" in worker and "succeeded" in worker, worker[-3000:]
    assert "no such table" not in "".join(seen["logs"].values())
    for process in ("web", "worker", "beat"):  # each warns, once, of the provider not set up
        assert seen["logs"][process].count(f"{process}: timetochat: not configured") == 1
        assert f"{process}: bytehand: not configured" not in seen["logs"][process]
