"""Claims and send outcomes on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatcher.claims import (
    Retry,
    claim_for_send,
    claim_window,
    in_flight,
    move,
    record_failed,
    record_in_doubt,
    record_retry,
    record_submitted,
    sweep_stuck,
)
from dispatcher.models import Campaign, Message, utcnow
from dispatcher.states import IllegalTransition, MessageState
from tests.conftest import Seed

M = MessageState
NOW = utcnow()
SEEDED: defaultdict[int, int] = defaultdict(int)
"""The attempt of every seeded message: none made yet."""


def fetch(engine: Engine, ids: list[int]) -> list[Message]:
    with Session(engine) as session:
        return list(
            session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
        )


def states(engine: Engine, ids: list[int]) -> list[str]:
    return [m.state for m in fetch(engine, ids)]


def campaign_of(session: Session, campaign_id: int) -> Campaign:
    found = session.get(Campaign, campaign_id)
    assert found is not None
    return found


def claim(engine: Engine, campaign_id: int, limit: int) -> list[int]:
    with Session(engine) as session:
        ids = claim_window(session, campaign_of(session, campaign_id), limit, NOW)
        session.commit()
    return ids


def test_claim_window_takes_due_pending_only(db_engine: Engine, seed: Seed) -> None:
    """Only pending messages with no or a past not_before are queued."""
    cid, ids = seed(M.PENDING, M.PENDING, M.PENDING, M.QUEUED, M.FAILED)
    with Session(db_engine) as session:
        session.get(Message, ids[1]).not_before = NOW - timedelta(seconds=1)  # type: ignore[union-attr]
        session.get(Message, ids[2]).not_before = NOW + timedelta(seconds=1)  # type: ignore[union-attr]
        session.commit()
    assert claim(db_engine, cid, 10) == ids[:2]
    assert states(db_engine, ids) == [M.QUEUED, M.QUEUED, M.PENDING, M.QUEUED, M.FAILED]
    assert all(m.queued_at == NOW for m in fetch(db_engine, ids[:2]))


def test_claim_window_respects_the_limit(db_engine: Engine, seed: Seed) -> None:
    """At most ``limit`` messages are taken, oldest first."""
    cid, ids = seed(*[M.PENDING] * 5)
    assert claim(db_engine, cid, 3) == ids[:3]
    assert claim(db_engine, cid, 3) == ids[3:]
    assert claim(db_engine, cid, 3) == []


def test_claim_window_without_room_takes_nothing(db_engine: Engine, seed: Seed) -> None:
    """A full window (no room, or less than none) claims nothing."""
    cid, ids = seed(M.PENDING)
    assert claim(db_engine, cid, 0) == claim(db_engine, cid, -1) == []
    assert states(db_engine, ids) == [M.PENDING]


def test_claim_window_stays_in_its_campaign(db_engine: Engine, seed: Seed) -> None:
    """Another campaign's pending messages are not taken."""
    cid, ids = seed(M.PENDING)
    _, other = seed(M.PENDING)
    assert claim(db_engine, cid, 10) == ids
    assert states(db_engine, other) == [M.PENDING]


def test_concurrent_claimers_split_the_window(db_engine: Engine, seed: Seed) -> None:
    """A claimer running while another holds its claim open gets other messages."""
    cid, ids = seed(*[M.PENDING] * 10)
    results: dict[str, list[int]] = {}
    with Session(db_engine) as first:
        results["first"] = claim_window(first, campaign_of(first, cid), 5, NOW)
        # On PostgreSQL the second skips the locked rows; on SQLite it waits for our commit.
        second = threading.Thread(target=lambda: results.update(second=claim(db_engine, cid, 5)))
        second.start()
        time.sleep(0.2)
        first.commit()
    second.join(timeout=30)
    assert not set(results["first"]) & set(results["second"])
    assert sorted(results["first"] + results["second"]) == ids


def test_many_concurrent_claimers_claim_each_message_once(db_engine: Engine, seed: Seed) -> None:
    """Four feeders racing over one campaign claim every message exactly once."""
    cid, ids = seed(*[M.PENDING] * 40)
    barrier = threading.Barrier(4)
    claimed: list[list[int]] = [[] for _ in range(4)]

    def feeder(slot: int) -> None:
        barrier.wait()
        while batch := claim(db_engine, cid, 3):
            claimed[slot].extend(batch)

    threads = [threading.Thread(target=feeder, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [mid for batch in claimed for mid in batch]
    assert sorted(everything) == ids
    assert len(everything) == len(set(everything))


def test_claim_for_send_takes_queued_and_counts_the_attempt(db_engine: Engine, seed: Seed) -> None:
    """queued -> sending, with sending_at and one more attempt."""
    _, ids = seed(M.QUEUED, M.PENDING, attempts=2)
    with Session(db_engine) as session:
        claimed = claim_for_send(session, ids, NOW)
        session.commit()
    assert [(c.id, c.attempts, c.ext_ref) for c in claimed] == [(ids[0], 3, "ref-0")]
    [sending, pending] = fetch(db_engine, ids)
    assert (sending.state, sending.sending_at, sending.attempts) == (M.SENDING, NOW, 3)
    assert (pending.state, pending.attempts) == (M.PENDING, 2)


def test_redelivered_task_claims_nothing(db_engine: Engine, seed: Seed) -> None:
    """A second claim with the same ids returns nothing: a redelivered task sends nothing."""
    _, ids = seed(M.QUEUED, M.QUEUED)
    with Session(db_engine) as session:
        assert len(claim_for_send(session, ids, NOW)) == 2
        session.commit()
    with Session(db_engine) as session:
        assert claim_for_send(session, ids, NOW) == []
    assert [m.attempts for m in fetch(db_engine, ids)] == [1, 1]


def test_claim_for_send_of_no_ids_is_empty() -> None:
    """An empty task claims nothing without touching the database."""
    with Session() as session:  # unbound: any query would raise
        assert claim_for_send(session, [], NOW) == []


def test_record_submitted_keeps_the_provider_id(db_engine: Engine, seed: Seed) -> None:
    """sending -> submitted with the provider id, submitted_at and the first poll time."""
    _, ids = seed(M.SENDING, last_error="earlier")
    poll_at = NOW + timedelta(minutes=1)
    with Session(db_engine) as session:
        assert record_submitted(session, [(ids[0], "pid-1")], NOW, poll_at, attempts=SEEDED) == 1
        session.commit()
    [message] = fetch(db_engine, ids)
    assert (message.state, message.provider_message_id) == (M.SUBMITTED, "pid-1")
    assert (message.submitted_at, message.next_poll_at, message.last_error) == (NOW, poll_at, None)


def test_record_submitted_batch_keeps_each_provider_id(db_engine: Engine, seed: Seed) -> None:
    """A send_multi batch records every recipient with its own id, skipping the unclaimed."""
    _, ids = seed(M.SENDING, M.SENDING, M.PENDING)
    with Session(db_engine) as session:
        accepted = [(mid, f"pid-{n}") for n, mid in enumerate(ids)]
        assert record_submitted(session, accepted, NOW, NOW, attempts=SEEDED) == 2
        session.commit()
    assert [(m.state, m.provider_message_id) for m in fetch(db_engine, ids)] == [
        (M.SUBMITTED, "pid-0"),
        (M.SUBMITTED, "pid-1"),
        (M.PENDING, None),
    ]


def test_record_retry_batch_keeps_each_not_before(db_engine: Engine, seed: Seed) -> None:
    """Several retries in one call each keep their own reason and not_before."""
    _, ids = seed(M.SENDING, M.SENDING)
    later = [NOW + timedelta(seconds=5), NOW + timedelta(seconds=50)]
    with Session(db_engine) as session:
        retries = [Retry(mid, f"busy {n}", later[n]) for n, mid in enumerate(ids)]
        assert record_retry(session, retries, NOW, attempts=SEEDED) == 2
        session.commit()
    assert [(m.state, m.last_error, m.not_before) for m in fetch(db_engine, ids)] == [
        (M.PENDING, "busy 0", later[0]),
        (M.PENDING, "busy 1", later[1]),
    ]


def test_record_submitted_after_the_sweeper_still_records(db_engine: Engine, seed: Seed) -> None:
    """A slow worker's answer settles the in-doubt send the sweeper made of it."""
    _, ids = seed(M.SENDING, sending_at=NOW - timedelta(hours=1))
    with Session(db_engine) as session:
        sweep_stuck(
            session, NOW, sending_timeout=timedelta(minutes=2), queued_timeout=timedelta(minutes=5)
        )
        session.commit()
    assert states(db_engine, ids) == [M.IN_DOUBT]
    with Session(db_engine) as session:
        assert record_submitted(session, [(ids[0], "pid-1")], NOW, NOW, attempts=SEEDED) == 1
        session.commit()
    [message] = fetch(db_engine, ids)
    assert (message.state, message.provider_message_id) == (M.SUBMITTED, "pid-1")


def test_record_submitted_ignores_other_states(db_engine: Engine, seed: Seed) -> None:
    """Only a message being sent (or in doubt) can become submitted."""
    others = [M.PENDING, M.QUEUED, M.DELIVERED, M.FAILED, M.CANCELLED]
    _, ids = seed(*others)
    with Session(db_engine) as session:
        assert (
            record_submitted(session, [(mid, "pid") for mid in ids], NOW, NOW, attempts=SEEDED) == 0
        )
        session.commit()
    assert [(m.state, m.provider_message_id) for m in fetch(db_engine, ids)] == [
        (state, None) for state in others
    ]


def test_record_failed_stores_reason_and_kind(db_engine: Engine, seed: Seed) -> None:
    """sending -> failed with the reason, final_at and whether ops may retry it."""
    _, ids = seed(M.SENDING, M.SENDING)
    with Session(db_engine) as session:
        assert (
            record_failed(
                session, [(ids[0], "bytehand:12 bad")], NOW, transient=False, attempts=SEEDED
            )
            == 1
        )
        assert (
            record_failed(
                session, [(ids[1], "busy (after 6)")], NOW, transient=True, attempts=SEEDED
            )
            == 1
        )
        session.commit()
    assert [
        (m.state, m.last_error, m.error_transient, m.final_at) for m in fetch(db_engine, ids)
    ] == [
        (M.FAILED, "bytehand:12 bad", False, NOW),
        (M.FAILED, "busy (after 6)", True, NOW),
    ]


def test_record_failed_ignores_other_states(db_engine: Engine, seed: Seed) -> None:
    """Only a message being sent can fail."""
    others = [M.PENDING, M.QUEUED, M.IN_DOUBT, M.SUBMITTED]
    _, ids = seed(*others)
    with Session(db_engine) as session:
        assert (
            record_failed(
                session, [(mid, "x") for mid in ids], NOW, transient=False, attempts=SEEDED
            )
            == 0
        )
        session.commit()
    assert states(db_engine, ids) == others


def test_record_retry_puts_back_to_pending(db_engine: Engine, seed: Seed) -> None:
    """sending -> pending with the reason and a not_before."""
    _, ids = seed(M.SENDING)
    later = NOW + timedelta(seconds=30)
    with Session(db_engine) as session:
        assert record_retry(session, [Retry(ids[0], "busy", later)], NOW, attempts=SEEDED) == 1
        session.commit()
    [message] = fetch(db_engine, ids)
    assert (message.state, message.last_error, message.not_before) == (M.PENDING, "busy", later)


def test_record_retry_ignores_messages_not_being_sent(db_engine: Engine, seed: Seed) -> None:
    """A late retry never touches a message another task or ops moved on."""
    others = [M.PENDING, M.QUEUED, M.FAILED, M.SUBMITTED, M.DELIVERED, M.CANCELLED]
    _, ids = seed(*others)
    with Session(db_engine) as session:
        assert (
            record_retry(session, [Retry(mid, "busy", NOW) for mid in ids], NOW, attempts=SEEDED)
            == 0
        )
        session.commit()
    assert [(m.state, m.last_error) for m in fetch(db_engine, ids)] == [
        (state, None) for state in others
    ]


def test_record_retry_after_the_sweeper_releases_the_send(db_engine: Engine, seed: Seed) -> None:
    """A worker that knows nothing went out settles the in-doubt the sweeper made of it."""
    _, ids = seed(M.IN_DOUBT)
    with Session(db_engine) as session:
        assert record_retry(session, [Retry(ids[0], "busy", NOW)], NOW, attempts=SEEDED) == 1
        session.commit()
    assert states(db_engine, ids) == [M.PENDING]


def test_record_in_doubt_only_from_sending(db_engine: Engine, seed: Seed) -> None:
    """sending -> in_doubt with the reason; a submitted message is left alone."""
    _, ids = seed(M.SENDING, M.SUBMITTED)
    with Session(db_engine) as session:
        doubtful = [(mid, "timeout") for mid in ids]
        assert record_in_doubt(session, doubtful, NOW, attempts=SEEDED) == 1
        session.commit()
    [doubted, submitted] = fetch(db_engine, ids)
    assert (doubted.state, doubted.last_error) == (M.IN_DOUBT, "timeout")
    assert (submitted.state, submitted.last_error) == (M.SUBMITTED, None)


def test_sweep_stuck_repairs_only_old_work(db_engine: Engine, seed: Seed) -> None:
    """Old sending -> in_doubt, old queued -> pending; fresh ones are left alone."""
    old, fresh = NOW - timedelta(minutes=10), NOW - timedelta(seconds=10)
    _, ids = seed(M.SENDING, M.SENDING, M.QUEUED, M.QUEUED, M.SUBMITTED)
    values = [{"sending_at": old}, {"sending_at": fresh}, {"queued_at": old}, {"queued_at": fresh}]
    with Session(db_engine) as session:
        for mid, changes in zip(ids, values, strict=False):
            message = session.get(Message, mid)
            for key, value in changes.items():
                setattr(message, key, value)
        submitted = session.get(Message, ids[4])
        assert submitted is not None
        submitted.sending_at = submitted.queued_at = old
        session.commit()
    with Session(db_engine) as session:
        counts = sweep_stuck(
            session, NOW, sending_timeout=timedelta(minutes=2), queued_timeout=timedelta(minutes=5)
        )
        session.commit()
    assert counts == (1, 1)
    assert states(db_engine, ids) == [M.IN_DOUBT, M.SENDING, M.PENDING, M.QUEUED, M.SUBMITTED]
    assert fetch(db_engine, ids)[0].last_error == "worker lost during send"


def test_sweep_stuck_with_nothing_stuck(db_engine: Engine, seed: Seed) -> None:
    """An idle sweep moves nothing."""
    seed(M.PENDING, M.DELIVERED)
    with Session(db_engine) as session:
        assert sweep_stuck(
            session, NOW, sending_timeout=timedelta(minutes=2), queued_timeout=timedelta(minutes=5)
        ) == (0, 0)


def test_move_only_from_the_given_sources(db_engine: Engine, seed: Seed) -> None:
    """move() changes only rows still in the states the caller chose them in."""
    _, ids = seed(M.PENDING, M.QUEUED, M.SENDING, M.SUBMITTED)
    with Session(db_engine) as session:
        assert move(session, ids, M.CANCELLED, sources={M.PENDING, M.QUEUED}) == ids[:2]
        session.commit()
    assert states(db_engine, ids) == [M.CANCELLED, M.CANCELLED, M.SENDING, M.SUBMITTED]


def test_a_row_claimed_since_it_was_chosen_is_left_alone(db_engine: Engine, seed: Seed) -> None:
    """Chosen as ``queued``, claimed (``sending``) before the move: not sent back to pending,
    although ``sending`` may reach ``pending`` (a retry). The soak's duplicate send."""
    _, [mid] = seed(M.SENDING)
    with Session(db_engine) as session:
        assert move(session, [mid], M.PENDING, sources={M.QUEUED}) == []
        session.commit()
    assert states(db_engine, [mid]) == [M.SENDING]


def test_move_refuses_sources_the_table_forbids() -> None:
    """A source that cannot reach the target is a programming error, caught at once."""
    with Session() as session, pytest.raises(IllegalTransition):  # unbound: no query is made
        move(session, [1], M.QUEUED, sources={M.DELIVERED})


def test_move_of_no_ids_is_empty() -> None:
    """Moving nothing returns nothing, without touching the database."""
    with Session() as session:  # unbound: any query would raise
        assert move(session, [], M.CANCELLED, sources={M.PENDING}) == []


def test_in_flight_counts_queued_and_sending(db_engine: Engine, seed: Seed) -> None:
    """The broker's share of a campaign is its queued and sending messages."""
    cid, _ = seed(M.PENDING, M.QUEUED, M.QUEUED, M.SENDING, M.SUBMITTED, M.IN_DOUBT)
    seed(M.QUEUED)
    with Session(db_engine) as session:
        assert in_flight(session, cid) == 3


def _resend_after_doubt(engine: Engine, campaign_id: int, ids: list[int]) -> list[int]:
    """What a stalled send lives through: the sweeper doubts it, ops resend, a worker claims."""
    later = NOW + timedelta(hours=1)
    with Session(engine) as session:
        sweep_stuck(
            session, later, sending_timeout=timedelta(minutes=2), queued_timeout=timedelta(hours=2)
        )
        move(session, ids, M.PENDING, sources={M.IN_DOUBT})
        claim_window(session, campaign_of(session, campaign_id), 10, later)
        attempts = [m.attempts for m in claim_for_send(session, ids, later)]
        session.commit()
    return attempts


def test_a_stale_senders_retry_leaves_the_next_attempt_alone(db_engine: Engine, seed: Seed) -> None:
    """Worker A's late retry cannot put worker B's later attempt back to pending."""
    cid, ids = seed(M.QUEUED, queued_at=NOW)
    with Session(db_engine) as session:
        [first] = claim_for_send(session, ids, NOW)
        session.commit()
    assert _resend_after_doubt(db_engine, cid, ids) == [first.attempts + 1]
    with Session(db_engine) as session:
        stale = {ids[0]: first.attempts}
        assert record_retry(session, [Retry(ids[0], "busy", NOW)], NOW, attempts=stale) == 0
        fresh = {ids[0]: first.attempts + 1}
        assert record_submitted(session, [(ids[0], "pid-b")], NOW, NOW, attempts=fresh) == 1
        session.commit()
    [message] = fetch(db_engine, ids)
    assert (message.state, message.provider_message_id) == (M.SUBMITTED, "pid-b")


def test_a_stale_senders_answer_cannot_settle_the_next_attempt(
    db_engine: Engine, seed: Seed
) -> None:
    """Worker A's late failure or doubt does not land on worker B's attempt being sent."""
    cid, ids = seed(M.QUEUED, M.QUEUED, queued_at=NOW)
    with Session(db_engine) as session:
        first = claim_for_send(session, ids, NOW)
        session.commit()
    _resend_after_doubt(db_engine, cid, ids)
    stale = {m.id: m.attempts for m in first}
    with Session(db_engine) as session:
        assert record_failed(session, [(ids[0], "x")], NOW, transient=False, attempts=stale) == 0
        assert record_in_doubt(session, [(ids[1], "timeout")], NOW, attempts=stale) == 0
        session.commit()
    assert states(db_engine, ids) == [M.SENDING, M.SENDING]


def test_a_refunded_retry_gives_the_attempt_back(db_engine: Engine, seed: Seed) -> None:
    """A retry the limiter caused leaves the attempts as they were before the claim."""
    _, ids = seed(M.QUEUED, M.QUEUED, queued_at=NOW)
    with Session(db_engine) as session:
        claimed = {m.id: m.attempts for m in claim_for_send(session, ids, NOW)}
        retries = [Retry(ids[0], "limiter down", NOW, refund=True), Retry(ids[1], "busy", NOW)]
        assert record_retry(session, retries, NOW, attempts=claimed) == 2
        session.commit()
    assert [(m.state, m.attempts) for m in fetch(db_engine, ids)] == [
        (M.PENDING, 0),
        (M.PENDING, 1),
    ]
