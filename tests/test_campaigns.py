"""Campaign life on a real database: start, schedule, pause, cancel, retry, settle, finish."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatcher import campaigns
from dispatcher.errors import InputError
from dispatcher.models import Campaign, Message, utcnow
from dispatcher.states import CampaignState, MessageState

C = CampaignState
M = MessageState
NOW = utcnow()

Seed = Callable[..., tuple[int, list[int]]]


@pytest.fixture
def seed(db_engine: Engine) -> Iterator[Seed]:
    """A factory: a campaign in ``state`` with one message per given state (or a dict of
    message fields); returns (campaign id, message ids)."""
    refs = itertools.count()

    def make(
        *messages: MessageState | dict[str, Any], state: CampaignState = C.RUNNING, **fields: Any
    ) -> tuple[int, list[int]]:
        with Session(db_engine) as session:
            row = Campaign(
                name="spring",
                sender="SMSINFO",
                template="Hi",
                estimate={"price_per_part": 0.5},
                **({"provider": "bytehand", "state": state} | fields),
            )
            session.add(row)
            session.flush()
            rows = [
                Message(
                    campaign_id=row.id,
                    line=line,
                    phone="+33601020304",
                    text="Hi",
                    encoding="GSM-7",
                    parts=2,
                    ext_ref=f"ref-{next(refs)}",
                    **(spec if isinstance(spec, dict) else {"state": spec}),
                )
                for line, spec in enumerate(messages)
            ]
            session.add_all(rows)
            session.commit()
            return row.id, [m.id for m in rows]

    yield make


def campaign(engine: Engine, cid: int) -> Campaign:
    with Session(engine) as session:
        found = session.get(Campaign, cid)
        assert found is not None
        return found


def messages(engine: Engine, ids: list[int]) -> list[Message]:
    with Session(engine) as session:
        return list(
            session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
        )


def states(engine: Engine, ids: list[int]) -> list[str]:
    return [m.state for m in messages(engine, ids)]


def run(engine: Engine, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``action(session, *args, **kwargs)`` in one committed transaction."""
    with Session(engine) as session:
        result = action(session, *args, **kwargs)
        session.commit()
    return result


def conflict(engine: Engine, action: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InputError) as caught:
        run(engine, action, *args, **kwargs)
    assert caught.value.code == "conflict"
    return str(caught.value)


# start


def test_start_now_runs(db_engine: Engine, seed: Seed) -> None:
    """A draft without start_at starts running at once."""
    cid, _ = seed(state=C.DRAFT)
    assert run(db_engine, campaigns.start, cid, NOW) == C.RUNNING
    stored = campaign(db_engine, cid)
    assert (stored.state, stored.started_at) == (C.RUNNING, NOW)


def test_start_with_a_future_start_at_schedules(db_engine: Engine, seed: Seed) -> None:
    """A draft with a future start_at waits for beat, not started yet."""
    cid, _ = seed(state=C.DRAFT, start_at=NOW + timedelta(hours=1))
    assert run(db_engine, campaigns.start, cid, NOW) == C.SCHEDULED
    stored = campaign(db_engine, cid)
    assert (stored.state, stored.started_at) == (C.SCHEDULED, None)


def test_start_of_a_scheduled_campaign_before_its_time_is_harmless(
    db_engine: Engine, seed: Seed
) -> None:
    """Starting an already scheduled campaign again keeps it scheduled."""
    cid, _ = seed(state=C.SCHEDULED, start_at=NOW + timedelta(hours=1))
    assert run(db_engine, campaigns.start, cid, NOW) == C.SCHEDULED
    assert campaign(db_engine, cid).state == C.SCHEDULED


def test_start_with_a_past_start_at_runs(db_engine: Engine, seed: Seed) -> None:
    """A start_at already passed means now."""
    cid, _ = seed(state=C.SCHEDULED, start_at=NOW - timedelta(minutes=1))
    assert run(db_engine, campaigns.start, cid, NOW) == C.RUNNING


def test_start_refuses_a_started_campaign(db_engine: Engine, seed: Seed) -> None:
    """Only drafts and scheduled campaigns can be started."""
    for state in (C.RUNNING, C.PAUSED, C.COMPLETED, C.CANCELLED):
        cid, _ = seed(state=state)
        assert f"is {state}: cannot start" in conflict(db_engine, campaigns.start, cid, NOW)
        assert campaign(db_engine, cid).state == state


def test_missing_campaign_is_not_found(db_engine: Engine) -> None:
    """An unknown id is an InputError an operator can read."""
    with pytest.raises(InputError, match="no campaign with id 42") as caught:
        run(db_engine, campaigns.start, 42, NOW)
    assert caught.value.code == "not_found"


# start_due


def test_start_due_starts_due_campaigns_once(db_engine: Engine, seed: Seed) -> None:
    """A due scheduled campaign starts; a second tick finds nothing to do."""
    due, _ = seed(state=C.SCHEDULED, start_at=NOW - timedelta(seconds=1))
    later, _ = seed(state=C.SCHEDULED, start_at=NOW + timedelta(seconds=1))
    seed(state=C.DRAFT, start_at=NOW - timedelta(seconds=1))
    assert run(db_engine, campaigns.start_due, NOW) == [due]
    assert run(db_engine, campaigns.start_due, NOW) == []
    assert (campaign(db_engine, due).state, campaign(db_engine, due).started_at) == (C.RUNNING, NOW)
    assert campaign(db_engine, later).state == C.SCHEDULED


def test_start_due_from_two_sessions_starts_once(db_engine: Engine, seed: Seed) -> None:
    """Two beat processes ticking together start the campaign exactly once."""
    cid, _ = seed(state=C.SCHEDULED, start_at=NOW)
    results: dict[str, list[int]] = {}
    with Session(db_engine) as first:
        results["first"] = campaigns.start_due(first, NOW)
        # PostgreSQL: the second waits on the row lock; SQLite: on the write lock.
        second = threading.Thread(
            target=lambda: results.update(second=run(db_engine, campaigns.start_due, NOW))
        )
        second.start()
        time.sleep(0.2)
        first.commit()
    second.join(timeout=30)
    assert sorted([results["first"], results["second"]]) == [[], [cid]]


# pause / resume


def test_pause_then_resume(db_engine: Engine, seed: Seed) -> None:
    """A running campaign pauses and resumes."""
    cid, _ = seed()
    run(db_engine, campaigns.pause, cid, NOW)
    assert campaign(db_engine, cid).state == C.PAUSED
    run(db_engine, campaigns.resume, cid, NOW)
    assert campaign(db_engine, cid).state == C.RUNNING


def test_pause_refuses_a_campaign_not_running(db_engine: Engine, seed: Seed) -> None:
    """Only a running campaign can be paused."""
    for state in (C.DRAFT, C.SCHEDULED, C.PAUSED, C.COMPLETED, C.CANCELLED):
        cid, _ = seed(state=state)
        assert f"is {state}: cannot pause" in conflict(db_engine, campaigns.pause, cid, NOW)
        assert campaign(db_engine, cid).state == state


def test_resume_refuses_a_campaign_not_paused(db_engine: Engine, seed: Seed) -> None:
    """Only a paused campaign can be resumed (a completed one is reopened by retry only)."""
    for state in (C.DRAFT, C.SCHEDULED, C.RUNNING, C.COMPLETED, C.CANCELLED):
        cid, _ = seed(state=state)
        assert f"is {state}: cannot resume" in conflict(db_engine, campaigns.resume, cid, NOW)
        assert campaign(db_engine, cid).state == state


# cancel


def test_cancel_cancels_only_unsent_messages(db_engine: Engine, seed: Seed) -> None:
    """pending and queued are cancelled; what may have reached a provider is kept."""
    kept = [M.SENDING, M.SUBMITTED, M.SENT, M.IN_DOUBT, M.DELIVERED, M.FAILED]
    cid, ids = seed(M.PENDING, M.QUEUED, *kept)
    assert run(db_engine, campaigns.cancel, cid, NOW) == 2
    assert states(db_engine, ids) == [M.CANCELLED, M.CANCELLED, *kept]
    assert [m.final_at for m in messages(db_engine, ids[:2])] == [NOW, NOW]
    stored = campaign(db_engine, cid)
    assert (stored.state, stored.finished_at) == (C.CANCELLED, NOW)


def test_cancel_leaves_other_campaigns_alone(db_engine: Engine, seed: Seed) -> None:
    """Cancelling one campaign never touches another's messages."""
    cid, _ = seed(M.PENDING)
    _, other = seed(M.PENDING)
    run(db_engine, campaigns.cancel, cid, NOW)
    assert states(db_engine, other) == [M.PENDING]


def test_cancel_before_or_while_paused(db_engine: Engine, seed: Seed) -> None:
    """Drafts, scheduled and paused campaigns can be cancelled."""
    for state in (C.DRAFT, C.SCHEDULED, C.PAUSED):
        cid, _ = seed(M.PENDING, state=state)
        assert run(db_engine, campaigns.cancel, cid, NOW) == 1
        assert campaign(db_engine, cid).state == C.CANCELLED


def test_cancel_refuses_a_finished_campaign(db_engine: Engine, seed: Seed) -> None:
    """A completed or cancelled campaign cannot be cancelled (again)."""
    for state in (C.COMPLETED, C.CANCELLED):
        cid, ids = seed(M.PENDING, state=state)
        assert f"is {state}: cannot cancel" in conflict(db_engine, campaigns.cancel, cid, NOW)
        assert states(db_engine, ids) == [M.PENDING]


# retry_failed


def test_retry_failed_moves_only_transient_failures(db_engine: Engine, seed: Seed) -> None:
    """Transient failures go back to pending with a fresh budget; refusals stay failed."""
    cid, ids = seed(
        {"state": M.FAILED, "error_transient": True, "attempts": 6, "final_at": NOW},
        {"state": M.FAILED, "error_transient": False, "attempts": 1},
        M.DELIVERED,
    )
    assert run(db_engine, campaigns.retry_failed, cid, NOW) == 1
    retried, refused, delivered = messages(db_engine, ids)
    assert (retried.state, retried.attempts, retried.final_at) == (M.PENDING, 0, None)
    assert (refused.state, delivered.state) == (M.FAILED, M.DELIVERED)


def test_retry_failed_reopens_a_completed_campaign(db_engine: Engine, seed: Seed) -> None:
    """Retrying a finished campaign runs it again."""
    cid, _ = seed({"state": M.FAILED, "error_transient": True}, state=C.COMPLETED)
    run(db_engine, campaigns.retry_failed, cid, NOW)
    stored = campaign(db_engine, cid)
    assert (stored.state, stored.finished_at) == (C.RUNNING, None)


def test_retry_failed_with_nothing_to_retry_keeps_it_completed(
    db_engine: Engine, seed: Seed
) -> None:
    """No transient failure, no reopening."""
    cid, _ = seed({"state": M.FAILED, "error_transient": False}, state=C.COMPLETED)
    assert run(db_engine, campaigns.retry_failed, cid, NOW) == 0
    assert campaign(db_engine, cid).state == C.COMPLETED


def test_retry_failed_refuses_a_cancelled_campaign(db_engine: Engine, seed: Seed) -> None:
    """A cancelled campaign sends nothing more."""
    cid, ids = seed({"state": M.FAILED, "error_transient": True}, state=C.CANCELLED)
    assert "cannot retry" in conflict(db_engine, campaigns.retry_failed, cid, NOW)
    assert states(db_engine, ids) == [M.FAILED]


# resolve_in_doubt


def test_resolve_in_doubt_resend_puts_back_to_pending(db_engine: Engine, seed: Seed) -> None:
    """Ops checked nothing went out: in-doubt messages are sent again."""
    later = NOW + timedelta(hours=1)
    cid, ids = seed({"state": M.IN_DOUBT, "not_before": later}, M.SUBMITTED)
    assert run(db_engine, campaigns.resolve_in_doubt, cid, NOW, resend=True) == 1
    [resent, submitted] = messages(db_engine, ids)
    assert (resent.state, resent.not_before, submitted.state) == (M.PENDING, None, M.SUBMITTED)


def test_resolve_in_doubt_mark_sent(db_engine: Engine, seed: Seed) -> None:
    """Ops declare in-doubt messages sent; they are never resent."""
    cid, ids = seed(M.IN_DOUBT, M.PENDING)
    assert run(db_engine, campaigns.resolve_in_doubt, cid, NOW, resend=False) == 1
    [marked, pending] = messages(db_engine, ids)
    assert (marked.state, marked.last_error) == (M.UNKNOWN, "marked sent by ops")
    assert pending.state == M.PENDING


def test_marked_sent_messages_let_the_campaign_finish(db_engine: Engine, seed: Seed) -> None:
    """A message marked sent is final (no report can ever match it): the campaign completes."""
    cid, ids = seed(M.IN_DOUBT, M.DELIVERED)
    run(db_engine, campaigns.resolve_in_doubt, cid, NOW, resend=False)
    assert states(db_engine, ids) == [M.UNKNOWN, M.DELIVERED]
    assert run(db_engine, campaigns.finish_if_done, cid, NOW) is True


def test_resolve_in_doubt_only_in_its_campaign(db_engine: Engine, seed: Seed) -> None:
    """Settling one campaign's doubts leaves another's alone."""
    cid, _ = seed(M.IN_DOUBT)
    _, other = seed(M.IN_DOUBT)
    run(db_engine, campaigns.resolve_in_doubt, cid, NOW, resend=True)
    assert states(db_engine, other) == [M.IN_DOUBT]


# finish_if_done and report


def test_finish_when_every_message_is_final(db_engine: Engine, seed: Seed) -> None:
    """All final: the campaign completes with finished_at and a stored report."""
    cid, _ = seed(
        M.DELIVERED,
        M.DELIVERED,
        {"state": M.FAILED, "last_error": "bytehand:12 bad number"},
        M.UNDELIVERABLE,
        M.CANCELLED,
    )
    assert run(db_engine, campaigns.finish_if_done, cid, NOW) is True
    stored = campaign(db_engine, cid)
    assert (stored.state, stored.finished_at) == (C.COMPLETED, NOW)
    assert stored.report is not None
    assert stored.report["state"] == C.COMPLETED
    assert stored.report["counts"] == {
        "delivered": 2,
        "failed": 1,
        "undeliverable": 1,
        "cancelled": 1,
    }
    assert stored.report["reasons"] == {
        "failed: the number does not exist (bytehand:12)": 1,
        "undeliverable: the operator could not deliver it": 1,
    }
    assert (stored.report["parts_sent"], stored.report["cost"]) == (6, 3.0)
    assert stored.report["finished_at"] == NOW.isoformat()


def test_an_open_message_blocks_finishing(db_engine: Engine, seed: Seed) -> None:
    """One message not final (in_doubt included) keeps the campaign running."""
    for open_state in (M.IN_DOUBT, M.SENDING, M.SENT, M.PENDING):
        cid, _ = seed(M.DELIVERED, open_state)
        assert run(db_engine, campaigns.finish_if_done, cid, NOW) is False, open_state
        stored = campaign(db_engine, cid)
        assert (stored.state, stored.report) == (C.RUNNING, None)


def test_finish_happens_once(db_engine: Engine, seed: Seed) -> None:
    """A second finish finds the campaign already completed."""
    cid, _ = seed(M.DELIVERED)
    assert run(db_engine, campaigns.finish_if_done, cid, NOW) is True
    assert run(db_engine, campaigns.finish_if_done, cid, NOW + timedelta(minutes=1)) is False
    assert campaign(db_engine, cid).finished_at == NOW


def test_only_running_campaigns_finish(db_engine: Engine, seed: Seed) -> None:
    """A paused, cancelled or draft campaign is not completed behind ops' back."""
    for state in (C.PAUSED, C.CANCELLED, C.DRAFT):
        cid, _ = seed(M.DELIVERED, state=state)
        assert run(db_engine, campaigns.finish_if_done, cid, NOW) is False
        assert campaign(db_engine, cid).state == state


def test_report_counts_reasons_parts_and_cost(db_engine: Engine, seed: Seed) -> None:
    """The report sums parts of what reached a provider and groups problems by reason."""
    cid, _ = seed(
        M.SUBMITTED,
        {"state": M.IN_DOUBT, "last_error": "timeout"},
        {"state": M.IN_DOUBT, "last_error": "timeout"},
        M.PENDING,
        {"state": M.FAILED, "last_error": "busy"},
    )
    with Session(db_engine) as session:
        report = campaigns.report(session, cid)
    assert report["counts"] == {"submitted": 1, "in_doubt": 2, "pending": 1, "failed": 1}
    assert report["reasons"] == {"in_doubt: timeout": 2, "failed: busy": 1}
    assert (report["parts_sent"], report["cost"]) == (6, 3.0)
    assert (report["name"], report["provider"], report["finished_at"]) == (
        "spring",
        "bytehand",
        None,
    )


def _in_thread(
    engine: Engine, action: Callable[..., Any], *args: Any
) -> tuple[threading.Thread, list[Any]]:
    """Run ``action`` in its own committed transaction on another thread; its result list."""
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(run(engine, action, *args)))
    thread.start()
    # Long enough for the other transaction to finish unless it waits for the first one.
    thread.join(timeout=1.0)
    return thread, results


def test_finishing_during_retry_failed_leaves_the_campaign_running(
    db_engine: Engine, seed: Seed
) -> None:
    """A finish racing a retry-failed that has moved recipients back does not complete it."""
    cid, ids = seed(M.DELIVERED, {"state": M.FAILED, "error_transient": True})
    with Session(db_engine) as retrying:
        assert campaigns.retry_failed(retrying, cid, NOW) == 1
        finisher, finished = _in_thread(db_engine, campaigns.finish_if_done, cid, NOW)
        retrying.commit()
    finisher.join()
    assert finished == [False]
    assert (campaign(db_engine, cid).state, states(db_engine, ids)) == (
        C.RUNNING,
        [M.DELIVERED, M.PENDING],
    )


def test_retry_failed_during_finishing_reopens_the_campaign(db_engine: Engine, seed: Seed) -> None:
    """A retry-failed racing a finish reopens the campaign it completed."""
    cid, ids = seed(M.DELIVERED, {"state": M.FAILED, "error_transient": True})
    with Session(db_engine) as finishing:
        assert campaigns.finish_if_done(finishing, cid, NOW) is True
        retrier, retried = _in_thread(db_engine, campaigns.retry_failed, cid, NOW)
        finishing.commit()
    retrier.join()
    assert retried == [1]
    assert (campaign(db_engine, cid).state, states(db_engine, ids)) == (
        C.RUNNING,
        [M.DELIVERED, M.PENDING],
    )
