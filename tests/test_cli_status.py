"""`dispatcher campaign status` says why and since when a campaign is paused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dispatcher import campaigns, runtime
from dispatcher.cli import main
from tests.conftest import insert_campaign

PAUSED_AT = datetime(2026, 11, 25, 21, 30, 5, tzinfo=UTC)
REASON = "timetochat: service 42 unknown (HTTP 404)"


@pytest.fixture
def paused(db_engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A campaign paused by the system; the CLI's settings point at its database."""
    with Session(db_engine) as session:
        cid, _ = insert_campaign(session, [{"state": "pending"}], provider="timetochat")
        assert campaigns.pause_for(session, cid, REASON, PAUSED_AT)
        session.commit()
    monkeypatch.setenv("DATABASE_URL", db_url)
    runtime.reset()  # the CLI builds its runtime from the settings above
    yield cid
    runtime.current().close()
    runtime.reset()


def test_status_gives_reason_and_time(paused: int) -> None:
    """The text form has a line with the pause time and the reason; --json has both fields."""
    result = CliRunner().invoke(main, ["campaign", "status", str(paused)])
    assert result.exit_code == 0, result.output
    assert f"  paused at 2026-11-25T21:30:05+00:00: {REASON}\n" in result.stdout
    result = CliRunner().invoke(main, ["campaign", "status", str(paused), "--json"])
    summary = json.loads(result.stdout)
    assert (summary["state"], summary["pause_reason"]) == ("paused", REASON)
    assert datetime.fromisoformat(summary["paused_at"]) == PAUSED_AT
