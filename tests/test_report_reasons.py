"""Messages final because nobody reported on them say so in the campaign's reasons."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dispatcher import campaigns
from dispatcher.models import utcnow
from dispatcher.states import MessageState as M
from dispatcher.tracking import record_poll_silence
from tests.conftest import Seed

NOW = utcnow()
DEADLINE = timedelta(hours=48)


def _reasons_after_silence(engine: Engine, campaign_id: int, ids: list[int]) -> dict[str, int]:
    with Session(engine) as session:
        record_poll_silence(
            session,
            ids,
            NOW,
            first=timedelta(minutes=1),
            ceiling=timedelta(hours=1),
            deadline=DEADLINE,
        )
        session.commit()
        return campaigns.report(session, campaign_id)["reasons"]


def test_silent_past_the_deadline_is_labelled_so(db_engine: Engine, seed: Seed) -> None:
    """Unknown after the polling deadline reads "silent past the polling deadline", not
    "reported by provider" (no provider said anything)."""
    cid, ids = seed(M.SENT, M.SUBMITTED, submitted_at=NOW - DEADLINE)
    assert _reasons_after_silence(db_engine, cid, ids) == {
        "unknown: silent past the polling deadline": 2
    }


def test_silent_past_validity_is_labelled_so(db_engine: Engine, seed: Seed) -> None:
    """A TimeToChat message (the provider knows its validity) silent past it ends unknown,
    never expired by us (the provider may still deliver it): "silent until its validity
    passed"."""
    validity = NOW - timedelta(minutes=1)
    cid, ids = seed(
        M.SUBMITTED, submitted_at=NOW, campaign={"validity": validity, "provider": "timetochat"}
    )
    assert _reasons_after_silence(db_engine, cid, ids) == {
        "unknown: silent until its validity passed": 1
    }
