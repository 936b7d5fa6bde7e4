"""Delivery tracking on a real database: reports, polls and inbound messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session

from dispatcher.models import InboundMessage, Message, StatusEvent, utcnow
from dispatcher.states import MessageState, delivery_rank, report_applies
from dispatcher.tracking import (
    DEDUP_KEY_LENGTH,
    Applied,
    Report,
    apply_report,
    attempt_ref,
    bounded_key,
    claim_due_polls,
    record_poll_silence,
    split_attempt_ref,
    store_inbound,
)
from tests.conftest import Seed

M = MessageState
NOW = utcnow()
FIRST, CEILING, DEADLINE = timedelta(minutes=1), timedelta(hours=1), timedelta(hours=48)


def fetch(engine: Engine, mid: int) -> Message:
    with Session(engine) as session:
        message = session.get(Message, mid)
        assert message is not None
        return message


def events(engine: Engine) -> list[StatusEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(StatusEvent).order_by(StatusEvent.id)))


def report(
    state: MessageState | None,
    *,
    key: str | None = None,
    pid: str | None = None,
    ext_ref: str | None = None,
    provider: str = "bytehand",
) -> Report:
    return Report(
        provider=provider,
        source="callback",
        provider_state=str(state).upper(),
        state=state,
        dedup_key=key or f"{provider}:{pid or ext_ref}:{state}",
        payload={"state": str(state)},
        provider_message_id=pid,
        ext_ref=ext_ref,
    )


def apply(engine: Engine, *reports: Report) -> list[Applied]:
    """Apply reports in one transaction, as a webhook carrying several would."""
    with Session(engine) as session:
        results = [apply_report(session, r, NOW) for r in reports]
        session.commit()
    return results


def test_report_moves_the_message_forward(db_engine: Engine, seed: Seed) -> None:
    """A delivered report found by provider id delivers a submitted message."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1", next_poll_at=NOW)
    assert apply(db_engine, report(M.DELIVERED, pid="p1")) == [Applied.APPLIED]
    message = fetch(db_engine, mid)
    assert (message.state, message.provider_state) == (M.DELIVERED, "DELIVERED")
    [event] = events(db_engine)
    assert (event.message_id, event.state, event.applied) == (mid, M.DELIVERED, True)


def test_repeated_report_is_a_duplicate(db_engine: Engine, seed: Seed) -> None:
    """The same dedup_key twice is applied once and stored once."""
    seed(M.SUBMITTED, provider_message_id="p1")
    first = apply(db_engine, report(M.SENT, pid="p1"))
    again = apply(db_engine, report(M.SENT, pid="p1"))
    assert first + again == [Applied.APPLIED, Applied.DUPLICATE]
    assert len(events(db_engine)) == 1


def test_late_report_is_stale(db_engine: Engine, seed: Seed) -> None:
    """A sent report after delivered changes nothing but is kept as an event."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1")
    results = apply(db_engine, report(M.DELIVERED, pid="p1"), report(M.SENT, pid="p1"))
    assert results == [Applied.APPLIED, Applied.STALE]
    assert fetch(db_engine, mid).state == M.DELIVERED
    assert [(e.state, e.applied) for e in events(db_engine)] == [
        (M.DELIVERED, True),
        (M.SENT, False),
    ]


def test_report_without_a_known_state_is_stale(db_engine: Engine, seed: Seed) -> None:
    """A provider state we cannot map is recorded, and moves nothing."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1")
    assert apply(db_engine, report(None, pid="p1", key="odd")) == [Applied.STALE]
    assert fetch(db_engine, mid).state == M.SUBMITTED
    assert len(events(db_engine)) == 1


def test_report_for_an_unknown_message_is_kept(db_engine: Engine, seed: Seed) -> None:
    """A report we cannot match is recorded with no message."""
    seed(M.SUBMITTED, provider_message_id="p1")
    assert apply(db_engine, report(M.DELIVERED, pid="nobody")) == [Applied.UNKNOWN_MESSAGE]
    [event] = events(db_engine)
    assert (event.message_id, event.applied) == (None, False)


def test_provider_id_matches_only_within_the_provider(db_engine: Engine, seed: Seed) -> None:
    """Another provider's message with the same id is not touched."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1")
    result = apply(db_engine, report(M.DELIVERED, pid="p1", provider="timetochat"))
    assert result == [Applied.UNKNOWN_MESSAGE]
    assert fetch(db_engine, mid).state == M.SUBMITTED


def test_ext_ref_settles_an_in_doubt_message(db_engine: Engine, seed: Seed) -> None:
    """A report carrying our extRef settles an in-doubt send and records the provider id."""
    _, [mid] = seed(M.IN_DOUBT, campaign={"provider": "timetochat"})
    result = apply(db_engine, report(M.DELIVERED, ext_ref="ref-0", pid="t9", provider="timetochat"))
    assert result == [Applied.APPLIED]
    message = fetch(db_engine, mid)
    assert (message.state, message.provider_message_id) == (M.DELIVERED, "t9")
    assert message.submitted_at == NOW


def test_report_applies_when_the_state_moved_after_it_was_read(
    db_engine: Engine, seed: Seed
) -> None:
    """A receipt that read its message as sending, whose sender commits "submitted" just
    before the receipt's UPDATE, still applies (it was once lost as stale)."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer at a time: this interleaving needs PostgreSQL")
    _, (mid,) = seed(M.SENDING)
    fired: list[bool] = []

    def sender_commits_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE messages") and not fired:
            fired.append(True)
            with db_engine.begin() as sender:
                sender.execute(update(Message).where(Message.id == mid).values(state=M.SUBMITTED))

    event.listen(db_engine, "before_cursor_execute", sender_commits_first)
    try:
        with Session(db_engine) as receiver:
            outcome = apply_report(receiver, report(M.DELIVERED, ext_ref="ref-0"), NOW)
            receiver.commit()
    finally:
        event.remove(db_engine, "before_cursor_execute", sender_commits_first)
    assert fired
    assert outcome == Applied.APPLIED
    assert fetch(db_engine, mid).state == M.DELIVERED


def test_a_report_of_the_attempt_in_flight_settles_it(db_engine: Engine, seed: Seed) -> None:
    """An extRef naming the message's current attempt settles the send it was made for."""
    _, [mid] = seed(M.IN_DOUBT, attempts=2, campaign={"provider": "timetochat"})
    ref = attempt_ref("ref-0", 2)
    result = apply(db_engine, report(M.DELIVERED, ext_ref=ref, pid="t9", provider="timetochat"))
    assert result == [Applied.APPLIED]
    assert fetch(db_engine, mid).state == M.DELIVERED


def test_a_late_report_of_an_earlier_attempt_leaves_the_current_one(
    db_engine: Engine, seed: Seed
) -> None:
    """A report of attempt 1 arriving while attempt 2 is being sent does not settle it."""
    _, [mid] = seed(M.SENDING, attempts=2, campaign={"provider": "timetochat"})
    ref = attempt_ref("ref-0", 1)
    result = apply(db_engine, report(M.DELIVERED, ext_ref=ref, pid="t1", provider="timetochat"))
    assert result == [Applied.UNKNOWN_MESSAGE]
    message = fetch(db_engine, mid)
    assert (message.state, message.provider_message_id) == (M.SENDING, None)


def test_split_attempt_ref_reads_what_attempt_ref_wrote() -> None:
    """Refs with and without an attempt read back; a ref without one names no attempt."""
    assert split_attempt_ref(attempt_ref("c12-5", 3)) == ("c12-5", 3)
    assert split_attempt_ref("c12-5") == ("c12-5", None)
    assert split_attempt_ref("v1.x") == ("v1.x", None)


def test_report_keeps_the_provider_id_we_already_have(db_engine: Engine, seed: Seed) -> None:
    """A report naming another id never overwrites the one the send recorded."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1", campaign={"provider": "timetochat"})
    apply(db_engine, report(M.SENT, ext_ref="ref-0", pid="other", provider="timetochat"))
    assert fetch(db_engine, mid).provider_message_id == "p1"


def test_in_doubt_settled_as_sent_is_still_polled(db_engine: Engine, seed: Seed) -> None:
    """A send settled as only sent is polled, or it would never become final."""
    _, [mid] = seed(M.IN_DOUBT, campaign={"provider": "timetochat"})
    apply(db_engine, report(M.SENT, ext_ref="ref-0", pid="t9", provider="timetochat"))
    message = fetch(db_engine, mid)
    assert message.state == M.SENT
    assert message.next_poll_at is not None and message.next_poll_at <= NOW + FIRST


def test_final_report_stops_polling(db_engine: Engine, seed: Seed) -> None:
    """A final report sets final_at and clears next_poll_at."""
    _, [mid] = seed(M.SENT, provider_message_id="p1", next_poll_at=NOW, submitted_at=NOW)
    apply(db_engine, report(M.UNDELIVERABLE, pid="p1"))
    message = fetch(db_engine, mid)
    assert (message.state, message.final_at, message.next_poll_at) == (
        M.UNDELIVERABLE,
        NOW,
        None,
    )


def test_late_truth_refines_unknown(db_engine: Engine, seed: Seed) -> None:
    """A delivered report after the polling deadline still replaces unknown."""
    _, [mid] = seed(M.UNKNOWN, provider_message_id="p1", final_at=NOW - DEADLINE)
    assert apply(db_engine, report(M.DELIVERED, pid="p1")) == [Applied.APPLIED]
    assert fetch(db_engine, mid).state == M.DELIVERED


def test_several_reports_in_one_transaction_all_apply(db_engine: Engine, seed: Seed) -> None:
    """sent then delivered in one webhook transaction ends delivered."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1")
    results = apply(db_engine, report(M.SENT, pid="p1"), report(M.DELIVERED, pid="p1"))
    assert results == [Applied.APPLIED, Applied.APPLIED]
    assert fetch(db_engine, mid).state == M.DELIVERED


REPORTED = [M.SUBMITTED, M.SENT, M.DELIVERED, M.UNDELIVERABLE, M.EXPIRED, M.UNKNOWN]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(reports=st.lists(st.sampled_from(REPORTED), min_size=1, max_size=6))
def test_any_order_of_reports_ends_as_the_pure_rules_say(
    db_engine: Engine, seed: Seed, reports: list[MessageState]
) -> None:
    """Stored reports, repeated or out of order, end where report_applies says."""
    _, [mid] = seed(M.SUBMITTED)
    ref = fetch(db_engine, mid).ext_ref
    expected = M.SUBMITTED
    with Session(db_engine) as session:
        for n, state in enumerate(reports):
            keyed = Report("bytehand", "callback", str(state), state, f"{ref}:{n}", {}, None, ref)
            apply_report(session, keyed, NOW)
            if report_applies(expected, state):
                expected = state
        session.commit()
    assert fetch(db_engine, mid).state == expected
    assert delivery_rank(expected) == max(map(delivery_rank, reports))


def test_claim_due_polls_takes_silent_messages(db_engine: Engine, seed: Seed) -> None:
    """Submitted and sent messages past next_poll_at are due; others are not."""
    past, future = NOW - timedelta(seconds=1), NOW + timedelta(seconds=1)
    _, due = seed(M.SUBMITTED, M.SENT, next_poll_at=past)
    seed(M.SUBMITTED, next_poll_at=future)
    seed(M.DELIVERED, M.IN_DOUBT, next_poll_at=past)
    seed(M.SUBMITTED)  # never scheduled
    with Session(db_engine) as session:
        claimed = claim_due_polls(session, "bytehand", NOW, limit=10, lease=FIRST)
        session.commit()
    assert claimed == due
    assert fetch(db_engine, due[0]).next_poll_at == NOW + FIRST


def test_claimed_polls_are_leased(db_engine: Engine, seed: Seed) -> None:
    """A second claim right after gets nothing; after the lease they are due again."""
    _, ids = seed(M.SUBMITTED, next_poll_at=NOW)
    with Session(db_engine) as session:
        assert claim_due_polls(session, "bytehand", NOW, limit=10, lease=FIRST) == ids
        session.commit()
    with Session(db_engine) as session:
        assert claim_due_polls(session, "bytehand", NOW, limit=10, lease=FIRST) == []
        later = NOW + FIRST
        assert claim_due_polls(session, "bytehand", later, limit=10, lease=FIRST) == ids


def test_claim_due_polls_filters_by_provider(db_engine: Engine, seed: Seed) -> None:
    """Each provider's poll tick takes only its own messages."""
    _, bytehand = seed(M.SUBMITTED, next_poll_at=NOW)
    _, timetochat = seed(M.SUBMITTED, next_poll_at=NOW, campaign={"provider": "timetochat"})
    with Session(db_engine) as session:
        assert claim_due_polls(session, "timetochat", NOW, limit=10, lease=FIRST) == timetochat
        assert claim_due_polls(session, "bytehand", NOW, limit=10, lease=FIRST) == bytehand


def test_claim_due_polls_respects_the_limit_oldest_first(db_engine: Engine, seed: Seed) -> None:
    """The longest-silent messages are polled first, up to the limit."""
    _, ids = seed(M.SUBMITTED, M.SUBMITTED, M.SUBMITTED)
    with Session(db_engine) as session:
        for age, mid in zip((1, 3, 2), ids, strict=True):
            session.get(Message, mid).next_poll_at = NOW - timedelta(minutes=age)  # type: ignore[union-attr]
        session.commit()
        assert claim_due_polls(session, "bytehand", NOW, limit=2, lease=FIRST) == ids[1:]


def silence(engine: Engine, mid: int, now: Any = NOW) -> Message:
    with Session(engine) as session:
        record_poll_silence(session, [mid], now, first=FIRST, ceiling=CEILING, deadline=DEADLINE)
        session.commit()
    return fetch(engine, mid)


def test_poll_silence_backs_off(db_engine: Engine, seed: Seed) -> None:
    """Each silent poll doubles the wait, up to the ceiling."""
    _, [mid] = seed(M.SUBMITTED, submitted_at=NOW, next_poll_at=NOW)
    gaps = []
    for _ in range(8):
        message = silence(db_engine, mid)
        assert message.next_poll_at is not None
        gaps.append(message.next_poll_at - NOW)
    assert gaps[:3] == [FIRST, FIRST * 2, FIRST * 4]
    assert gaps[-1] == CEILING
    assert fetch(db_engine, mid).polls == 8


def test_poll_silence_at_the_deadline_is_unknown(db_engine: Engine, seed: Seed) -> None:
    """Silent past the deadline, a message is final as unknown."""
    _, [mid] = seed(M.SENT, submitted_at=NOW - DEADLINE, next_poll_at=NOW)
    message = silence(db_engine, mid)
    assert (message.state, message.final_at, message.next_poll_at) == (M.UNKNOWN, NOW, None)


def test_poll_silence_after_validity_is_unknown_not_expired(db_engine: Engine, seed: Seed) -> None:
    """A TimeToChat message silent past its validity was handed over: unknown, not expired."""
    validity = NOW - timedelta(minutes=1)
    campaign = {"validity": validity, "provider": "timetochat"}
    _, [mid] = seed(M.SUBMITTED, submitted_at=NOW, campaign=campaign)
    message = silence(db_engine, mid)
    assert (message.state, message.final_at) == (M.UNKNOWN, NOW)


def test_a_bytehand_message_is_polled_past_the_validity(db_engine: Engine, seed: Seed) -> None:
    """ByteHand never got the validity: its message is still at the operator, still polled."""
    validity = NOW - timedelta(minutes=1)
    _, [mid] = seed(M.SENT, submitted_at=NOW, next_poll_at=NOW, campaign={"validity": validity})
    message = silence(db_engine, mid)
    assert (message.state, message.polls) == (M.SENT, 1)


def test_a_delivery_after_we_expired_the_message_applies(db_engine: Engine, seed: Seed) -> None:
    """A DELIVERED arriving after the message expired on our side is kept."""
    _, [mid] = seed(M.EXPIRED, provider_message_id="p1", final_at=NOW)
    assert apply(db_engine, report(M.DELIVERED, pid="p1")) == [Applied.APPLIED]
    assert fetch(db_engine, mid).state == M.DELIVERED


def test_poll_silence_before_validity_keeps_polling(db_engine: Engine, seed: Seed) -> None:
    """A future validity does not end polling early."""
    validity = NOW + timedelta(hours=1)
    _, [mid] = seed(M.SUBMITTED, submitted_at=NOW, campaign={"validity": validity})
    assert silence(db_engine, mid).state == M.SUBMITTED


def test_poll_silence_leaves_settled_messages_alone(db_engine: Engine, seed: Seed) -> None:
    """A message settled meanwhile is not backed off nor made unknown."""
    _, [mid] = seed(M.DELIVERED, submitted_at=NOW - DEADLINE)
    message = silence(db_engine, mid)
    assert (message.state, message.polls, message.final_at) == (M.DELIVERED, 0, None)


def test_poll_silence_after_a_report_in_the_same_session(db_engine: Engine, seed: Seed) -> None:
    """A poll that brought non-final news still backs the message off."""
    _, [mid] = seed(M.SUBMITTED, provider_message_id="p1", submitted_at=NOW, next_poll_at=NOW)
    with Session(db_engine) as session:
        assert apply_report(session, report(M.SENT, pid="p1"), NOW) == Applied.APPLIED
        record_poll_silence(session, [mid], NOW, first=FIRST, ceiling=CEILING, deadline=DEADLINE)
        session.commit()
    message = fetch(db_engine, mid)
    assert (message.state, message.polls, message.next_poll_at) == (M.SENT, 1, NOW + FIRST)


def inbound(engine: Engine, key: str = "in-1", **links: Any) -> bool:
    with Session(engine) as session:
        stored = store_inbound(
            session,
            provider=links.pop("provider", "timetochat"),
            from_number="+33601020304",
            to_number="SMSINFO",
            text="STOP",
            dedup_key=key,
            now=NOW,
            **links,
        )
        session.commit()
    return stored


def replies(engine: Engine) -> list[int | None]:
    with Session(engine) as session:
        return list(session.scalars(select(InboundMessage.reply_to_id).order_by(InboundMessage.id)))


def test_inbound_is_stored_once(db_engine: Engine) -> None:
    """The same inbound SMS delivered twice is kept once."""
    assert inbound(db_engine) is True
    assert inbound(db_engine) is False
    with Session(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1


def test_long_keys_differing_past_the_column_width_stay_distinct(db_engine: Engine) -> None:
    """Two maximal MOs alike in their first 300 characters are two messages, each kept once."""
    common = "mo:timetochat:" + "x" * 320
    assert inbound(db_engine, key=common + ":digest-one") is True
    assert inbound(db_engine, key=common + ":digest-two") is True
    assert inbound(db_engine, key=common + ":digest-one") is False
    keys = [bounded_key(common + ":digest-one"), bounded_key("short")]
    assert len(keys[0]) == DEDUP_KEY_LENGTH
    assert keys[1] == "short"


def test_inbound_links_to_the_message_by_ext_ref(db_engine: Engine, seed: Seed) -> None:
    """A reply naming our extRef is linked to that message."""
    _, [mid] = seed(M.DELIVERED, campaign={"provider": "timetochat"})
    inbound(db_engine, reply_to_ext_ref="ref-0")
    assert replies(db_engine) == [mid]


def test_inbound_links_to_the_message_by_provider_id(db_engine: Engine, seed: Seed) -> None:
    """A reply naming the provider's id is linked to that message."""
    _, [mid] = seed(M.DELIVERED, provider_message_id="t7", campaign={"provider": "timetochat"})
    inbound(db_engine, reply_to_provider_id="t7")
    assert replies(db_engine) == [mid]


def test_inbound_provider_id_matches_only_within_the_provider(
    db_engine: Engine, seed: Seed
) -> None:
    """Another provider's message with the same id is not taken as the replied one."""
    seed(M.DELIVERED, provider_message_id="7")
    _, [mid] = seed(M.DELIVERED, provider_message_id="7", campaign={"provider": "timetochat"})
    inbound(db_engine, reply_to_provider_id="7")
    assert replies(db_engine) == [mid]


def test_inbound_unmatched_reply_is_kept_unlinked(db_engine: Engine) -> None:
    """A reply to a message we do not know is kept, linked to nothing."""
    inbound(db_engine, reply_to_ext_ref="nobody", reply_to_provider_id="nobody")
    assert replies(db_engine) == [None]
