"""What a claim checks: suppressions and the recipient's window, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dispatcher import gates, suppressions
from dispatcher.models import Campaign, Message
from dispatcher.states import MessageState
from dispatcher.windows import SendRules
from tests.conftest import insert_campaign

# Tuesday 2026-12-01 09:30 in Paris, 03:30 in New York.
NOW = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
NEW_YORK_OPENS = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def test_screen_suppresses_and_holds(db_engine: Engine) -> None:
    """Of a claimed window: the opted-out number ends suppressed, the New York one waits for
    08:00 there, the Paris one is sent; status counts the one waiting."""
    rows = [
        {"state": MessageState.QUEUED, "phone": "+33612345678"},
        {"state": MessageState.QUEUED, "phone": "+12015550123"},
        {"state": MessageState.QUEUED, "phone": "+33612345679"},
    ]
    with Session(db_engine) as session:
        cid, [paris, new_york, opted_out] = insert_campaign(
            session, rows, send_rules=SendRules().to_json()
        )
        suppressions.add(
            session, "+33612345679", scope="bytehand", source="ops", reason="complaint", now=NOW
        )
        campaign = session.get(Campaign, cid)
        assert campaign is not None
        sendable = gates.screen(session, campaign, [paris, new_york, opted_out], "bytehand", NOW)
        session.commit()
        assert sendable == [paris]
        states = {m.id: (m.state, m.not_before) for m in session.query(Message)}
        assert states[new_york] == (MessageState.PENDING, NEW_YORK_OPENS)
        assert states[opted_out][0] == MessageState.SUPPRESSED
        assert states[paris] == (MessageState.QUEUED, None)
        assert gates.waiting_for_window(session, cid, NOW) == (1, NEW_YORK_OPENS)


def test_any_time_campaign_holds_nothing(db_engine: Engine) -> None:
    """Without send rules (transactional), a recipient at 03:30 local is sent."""
    with Session(db_engine) as session:
        cid, [new_york] = insert_campaign(
            session, [{"state": MessageState.QUEUED, "phone": "+12015550123"}]
        )
        campaign = session.get(Campaign, cid)
        assert campaign is not None
        assert gates.screen(session, campaign, [new_york], "bytehand", NOW) == [new_york]
