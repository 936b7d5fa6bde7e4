"""The message and campaign state machines, as tables of cases and as properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.states import (
    CAMPAIGN_TRANSITIONS,
    FINAL_MESSAGE_STATES,
    MESSAGE_TRANSITIONS,
    CampaignState,
    IllegalTransition,
    MessageState,
    can_move,
    check_campaign_move,
    check_move,
    delivery_rank,
    report_applies,
    sources_of,
)

M = MessageState
C = CampaignState

ALLOWED_MESSAGE_MOVES = [
    (M.PENDING, M.QUEUED),
    (M.PENDING, M.CANCELLED),
    (M.PENDING, M.EXPIRED),
    (M.PENDING, M.SUPPRESSED),
    (M.QUEUED, M.SENDING),
    (M.QUEUED, M.PENDING),
    (M.QUEUED, M.CANCELLED),
    (M.QUEUED, M.EXPIRED),
    (M.QUEUED, M.SUPPRESSED),
    (M.SENDING, M.SUBMITTED),
    (M.SENDING, M.FAILED),
    (M.SENDING, M.PENDING),
    (M.SENDING, M.IN_DOUBT),
    (M.SENDING, M.EXPIRED),
    (M.SENDING, M.SENT),
    (M.SENDING, M.DELIVERED),
    (M.SENDING, M.UNDELIVERABLE),
    (M.SUBMITTED, M.SENT),
    (M.SUBMITTED, M.DELIVERED),
    (M.SUBMITTED, M.UNDELIVERABLE),
    (M.SUBMITTED, M.EXPIRED),
    (M.SUBMITTED, M.UNKNOWN),
    (M.SENT, M.DELIVERED),
    (M.SENT, M.UNDELIVERABLE),
    (M.SENT, M.EXPIRED),
    (M.SENT, M.UNKNOWN),
    (M.IN_DOUBT, M.SUBMITTED),
    (M.IN_DOUBT, M.SENT),
    (M.IN_DOUBT, M.DELIVERED),
    (M.IN_DOUBT, M.UNDELIVERABLE),
    (M.IN_DOUBT, M.EXPIRED),
    (M.IN_DOUBT, M.UNKNOWN),
    (M.IN_DOUBT, M.PENDING),
    (M.IN_DOUBT, M.CANCELLED),
    (M.FAILED, M.PENDING),
    (M.UNKNOWN, M.DELIVERED),
    (M.UNKNOWN, M.UNDELIVERABLE),
    (M.UNKNOWN, M.EXPIRED),
    (M.EXPIRED, M.DELIVERED),
    (M.EXPIRED, M.UNDELIVERABLE),
]

FORBIDDEN_MESSAGE_MOVES = [
    (M.PENDING, M.SENDING),  # must be queued (claimed) first
    (M.PENDING, M.SUBMITTED),
    (M.QUEUED, M.SUBMITTED),
    (M.QUEUED, M.IN_DOUBT),
    (M.SENDING, M.QUEUED),  # a crash mid-send is in doubt, never silently re-queued
    (M.SENDING, M.CANCELLED),  # the request may be out: cancelling cannot stop it
    (M.SUBMITTED, M.PENDING),  # never resent once the provider took it
    (M.SUBMITTED, M.FAILED),
    (M.SUBMITTED, M.IN_DOUBT),
    (M.SENT, M.SUBMITTED),
    (M.SENT, M.PENDING),
    (M.IN_DOUBT, M.FAILED),
    (M.IN_DOUBT, M.QUEUED),
    (M.FAILED, M.QUEUED),
    (M.FAILED, M.SUBMITTED),
    (M.UNKNOWN, M.SENT),
    (M.UNKNOWN, M.PENDING),
    (M.DELIVERED, M.SENT),
    (M.DELIVERED, M.UNDELIVERABLE),
    (M.UNDELIVERABLE, M.DELIVERED),
    (M.EXPIRED, M.PENDING),
    (M.CANCELLED, M.PENDING),
]

ALLOWED_CAMPAIGN_MOVES = [
    (C.DRAFT, C.SCHEDULED),
    (C.DRAFT, C.RUNNING),
    (C.DRAFT, C.CANCELLED),
    (C.SCHEDULED, C.RUNNING),
    (C.SCHEDULED, C.DRAFT),
    (C.SCHEDULED, C.CANCELLED),
    (C.SCHEDULED, C.PAUSED),
    (C.RUNNING, C.PAUSED),
    (C.RUNNING, C.COMPLETED),
    (C.RUNNING, C.CANCELLED),
    (C.PAUSED, C.RUNNING),
    (C.PAUSED, C.CANCELLED),
    (C.COMPLETED, C.RUNNING),
]

DELIVERY_REPORTS = [M.SUBMITTED, M.SENT, M.DELIVERED, M.UNDELIVERABLE, M.EXPIRED, M.UNKNOWN]

# States a delivery report may find a message in, from which every higher-ranked report is
# reachable: the starting points of the monotonicity property.
TRACKED = [M.SUBMITTED, M.SENT, M.IN_DOUBT, M.UNKNOWN]


@pytest.mark.parametrize(("current", "target"), ALLOWED_MESSAGE_MOVES)
def test_allowed_message_move(current: MessageState, target: MessageState) -> None:
    """Every documented message move is allowed."""
    assert can_move(current, target)
    check_move(current, target)


@pytest.mark.parametrize(("current", "target"), FORBIDDEN_MESSAGE_MOVES)
def test_forbidden_message_move(current: MessageState, target: MessageState) -> None:
    """Moves the design forbids raise IllegalTransition."""
    assert not can_move(current, target)
    with pytest.raises(IllegalTransition, match=f"from {current} to {target}"):
        check_move(current, target)


def test_message_table_is_exactly_the_documented_moves() -> None:
    """The transition table holds the documented moves and nothing more."""
    table = {(s, t) for s, targets in MESSAGE_TRANSITIONS.items() for t in targets}
    assert table == set(ALLOWED_MESSAGE_MOVES)


def test_every_message_state_has_a_row() -> None:
    """Each state has an entry, so no lookup raises KeyError."""
    assert set(MESSAGE_TRANSITIONS) == set(MessageState)


def test_no_message_state_moves_to_itself() -> None:
    """A self-move would make a conditional UPDATE match rows it already owns."""
    assert all(state not in targets for state, targets in MESSAGE_TRANSITIONS.items())


@pytest.mark.parametrize("state", sorted(FINAL_MESSAGE_STATES))
def test_final_states_have_no_moves_but_the_documented_ones(state: MessageState) -> None:
    """Final states stay final, except unknown or expired refined by a late report and failed
    retried."""
    expected = {
        M.UNKNOWN: {M.DELIVERED, M.UNDELIVERABLE, M.EXPIRED},
        M.EXPIRED: {M.DELIVERED, M.UNDELIVERABLE},  # the provider's final word after ours
        M.FAILED: {M.PENDING},  # ops' retry-failed
    }.get(state, set())
    assert MESSAGE_TRANSITIONS[state] == expected


def test_in_doubt_is_not_final() -> None:
    """A campaign cannot finish while a send is in doubt: ops must settle it."""
    assert M.IN_DOUBT not in FINAL_MESSAGE_STATES


@pytest.mark.parametrize("target", list(MessageState))
def test_sources_of_inverts_the_table(target: MessageState) -> None:
    """sources_of(t) is exactly the states whose row lists t."""
    expected = {s for s in MessageState if can_move(s, target)}
    assert sources_of(target) == expected


@pytest.mark.parametrize(
    ("target", "sources"),
    [
        (M.QUEUED, {M.PENDING}),
        (M.SENDING, {M.QUEUED}),
        (M.SUBMITTED, {M.SENDING, M.IN_DOUBT}),
        (M.FAILED, {M.SENDING}),
        (M.IN_DOUBT, {M.SENDING}),
        (M.PENDING, {M.QUEUED, M.SENDING, M.IN_DOUBT, M.FAILED}),
        (M.CANCELLED, {M.PENDING, M.QUEUED, M.IN_DOUBT}),
    ],
)
def test_sources_of_examples(target: MessageState, sources: set[MessageState]) -> None:
    """The WHERE state IN (...) of the common updates."""
    assert sources_of(target) == sources


@pytest.mark.parametrize(("current", "target"), ALLOWED_CAMPAIGN_MOVES)
def test_allowed_campaign_move(current: CampaignState, target: CampaignState) -> None:
    """Every documented campaign move is allowed."""
    check_campaign_move(current, target)


def test_campaign_table_is_exactly_the_documented_moves() -> None:
    """The campaign table holds the documented moves and nothing more."""
    table = {(s, t) for s, targets in CAMPAIGN_TRANSITIONS.items() for t in targets}
    assert table == set(ALLOWED_CAMPAIGN_MOVES)
    assert set(CAMPAIGN_TRANSITIONS) == set(CampaignState)


@pytest.mark.parametrize(
    ("current", "target"),
    sorted(set(itertools.product(CampaignState, CampaignState)) - set(ALLOWED_CAMPAIGN_MOVES)),
)
def test_forbidden_campaign_move(current: CampaignState, target: CampaignState) -> None:
    """Every other campaign move raises IllegalTransition (cancelled is terminal)."""
    with pytest.raises(IllegalTransition):
        check_campaign_move(current, target)


@pytest.mark.parametrize(
    ("current", "reported", "applies"),
    [
        (M.SUBMITTED, M.SENT, True),
        (M.SUBMITTED, M.DELIVERED, True),
        (M.SENT, M.DELIVERED, True),
        (M.SENT, M.SENT, False),
        (M.DELIVERED, M.SENT, False),
        (M.DELIVERED, M.UNDELIVERABLE, False),
        (M.DELIVERED, M.UNKNOWN, False),
        (M.UNKNOWN, M.DELIVERED, True),
        (M.UNKNOWN, M.SENT, False),
        (M.EXPIRED, M.DELIVERED, True),  # expired on our side, delivered after all
        (M.EXPIRED, M.SENT, False),
        (M.IN_DOUBT, M.SUBMITTED, True),
        (M.IN_DOUBT, M.DELIVERED, True),
        (M.SENDING, M.SUBMITTED, True),
        # A report overtaking our commit of the send proves the message was accepted.
        (M.SENDING, M.DELIVERED, True),
        (M.PENDING, M.SENT, False),
        (M.CANCELLED, M.DELIVERED, False),
        (M.SUBMITTED, M.PENDING, False),  # not a delivery report
        (M.SENDING, M.FAILED, False),
    ],
)
def test_report_applies_table(current: MessageState, reported: MessageState, applies: bool) -> None:
    """Reports move a message forward only, along allowed moves."""
    assert report_applies(current, reported) is applies


def test_delivery_rank_orders_the_reports() -> None:
    """submitted < sent < unknown < expired < the provider's final word; others rank 0."""
    assert delivery_rank(M.SUBMITTED) < delivery_rank(M.SENT) < delivery_rank(M.UNKNOWN)
    assert delivery_rank(M.UNKNOWN) < delivery_rank(M.EXPIRED) < delivery_rank(M.DELIVERED)
    assert delivery_rank(M.DELIVERED) == delivery_rank(M.UNDELIVERABLE)
    assert delivery_rank(M.PENDING) == delivery_rank(M.IN_DOUBT) == 0


def _fold(start: MessageState, reports: list[MessageState]) -> MessageState:
    state = start
    for reported in reports:
        if report_applies(state, reported):
            state = reported
    return state


reports_strategy = st.lists(st.sampled_from(DELIVERY_REPORTS), max_size=12)


@given(start=st.sampled_from(TRACKED), reports=reports_strategy)
def test_reports_end_at_the_highest_rank(start: MessageState, reports: list[MessageState]) -> None:
    """Whatever the order, the message ends at the highest-ranked report it heard."""
    final = _fold(start, reports)
    best = max([delivery_rank(start), *map(delivery_rank, reports)])
    assert delivery_rank(final) == best
    if best > delivery_rank(start):
        assert final == next(r for r in reports if delivery_rank(r) == best)
    else:
        assert final == start


@given(start=st.sampled_from(TRACKED), reports=reports_strategy, data=st.data())
def test_repeated_report_changes_nothing(
    start: MessageState, reports: list[MessageState], data: st.DataObject
) -> None:
    """Hearing any report a second time, right away, changes nothing."""
    state = _fold(start, reports)
    again = data.draw(st.sampled_from(DELIVERY_REPORTS))
    once = _fold(state, [again])
    assert _fold(once, [again]) == once


@given(reports=reports_strategy)
def test_delivered_is_never_overwritten(reports: list[MessageState]) -> None:
    """No report, in any number or order, moves a delivered message."""
    assert _fold(M.DELIVERED, reports) == M.DELIVERED


@given(start=st.sampled_from(list(MessageState)), reports=reports_strategy)
def test_reports_only_take_allowed_moves(start: MessageState, reports: list[MessageState]) -> None:
    """Every step a report takes is a move the table allows, and rank never decreases."""
    state = start
    for reported in reports:
        if report_applies(state, reported):
            assert can_move(state, reported)
            assert delivery_rank(reported) > delivery_rank(state)
            state = reported
