"""The dispatch use cases against the simulators over HTTP, on a real database and Redis."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, event, select, update
from sqlalchemy.exc import OperationalError

from dispatcher import campaigns, claims, pipeline, sms
from dispatcher.config import load_settings
from dispatcher.db import session_scope
from dispatcher.embedded import free_port
from dispatcher.models import Campaign, Message, utcnow
from dispatcher.runtime import Runtime
from dispatcher.sandbox import (
    ByteHandConfig,
    Lifecycle,
    RunningServer,
    TimeToChatConfig,
    create_bytehand_app,
    create_timetochat_app,
    serve_in_thread,
)
from dispatcher.states import CampaignState, MessageState
from tests.conftest import insert_campaign

M = MessageState
SLOW = Lifecycle(sent_after_s=30, final_after_s=60)
"""Messages stay as accepted for the length of a test: only the send is looked at."""


@dataclasses.dataclass
class Simulators:
    bytehand: Any
    timetochat: Any
    bytehand_url: str
    timetochat_url: str


@pytest.fixture(scope="module")
def simulators() -> Iterator[Simulators]:
    """One simulator of each provider, served in this process; reset before each test."""
    bytehand = create_bytehand_app(ByteHandConfig(lifecycle=SLOW))
    timetochat = create_timetochat_app(TimeToChatConfig(lifecycle=SLOW))
    servers: list[RunningServer] = [serve_in_thread(bytehand), serve_in_thread(timetochat)]
    try:
        yield Simulators(
            bytehand.state.sandbox,
            timetochat.state.sandbox,
            servers[0].url,
            f"{servers[1].url}/mug/api/V1",
        )
    finally:
        for server in servers:
            server.stop()


RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(
    db_url: str, redis_url: str, simulators: Simulators, tmp_path: Path
) -> Iterator[RuntimeFactory]:
    """Runtimes on the test database, Redis and simulators; ``env`` overrides variables and
    ``dispatch`` fields of the settings."""
    simulators.bytehand.reset()
    simulators.timetochat.reset()
    redis.Redis.from_url(redis_url).flushdb()
    made: list[Runtime] = []

    def make(env: dict[str, str] | None = None, **dispatch: Any) -> Runtime:
        variables = {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "DISPATCHER_STATE_DIR": str(tmp_path),
            "DISPATCHER_BYTEHAND_URL": simulators.bytehand_url,
            "DISPATCHER_BYTEHAND_ID": "1000",
            "DISPATCHER_BYTEHAND_KEY": "sandbox-bytehand-key-0123456789",
            "DISPATCHER_TIMETOCHAT_URL": simulators.timetochat_url,
            "DISPATCHER_TIMETOCHAT_SERVICE_ID": "123456",
            "DISPATCHER_TIMETOCHAT_PASSWORD": "sandbox-password",
        } | (env or {})
        settings = load_settings(variables)
        settings = dataclasses.replace(
            settings, dispatch=dataclasses.replace(settings.dispatch, **dispatch)
        )
        runtime = Runtime(settings)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


def queued_campaign(runtime: Runtime, count: int, **campaign: Any) -> tuple[int, list[int]]:
    """A running campaign whose ``count`` recipients (each to be delivered, by the simulators'
    rules) the feeder has queued."""
    columns = {"provider": "bytehand", "sender": "SMSINFO"} | campaign
    if columns["provider"] == "timetochat" and columns["sender"] == "SMSINFO":
        columns["sender"] = "0938000001"
    with session_scope(runtime.sessions) as session:
        return insert_campaign(
            session,
            [{"state": M.QUEUED, "phone": f"+33612345{n:03d}"} for n in range(1, count + 1)],
            **columns,
        )


def rows(runtime: Runtime, ids: list[int]) -> list[Message]:
    with runtime.sessions() as session:
        return list(
            session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
        )


def campaign_row(runtime: Runtime, campaign_id: int) -> Campaign:
    with runtime.sessions() as session:
        found = session.get(Campaign, campaign_id)
        assert found is not None
        return found


def refuse_writes(engine: Engine, times: int) -> list[str]:
    """The database refuses the next ``times`` recordings of an accepted send (as a lost
    connection or a locked SQLite would); returns the refused statements as they happen."""
    refused: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        recording = statement.lstrip().upper().startswith("UPDATE")
        if recording and "provider_message_id" in statement and len(refused) < times:
            refused.append(statement)
            raise OperationalError(statement, params, Exception("database refuses writes"))

    event.listen(engine, "before_cursor_execute", before)
    return refused


def test_an_accepted_send_is_recorded_through_database_refusals(
    make_runtime: RuntimeFactory, simulators: Simulators
) -> None:
    """The database refusing the recording twice after the provider accepted loses nothing."""
    runtime = make_runtime()
    campaign_id, ids = queued_campaign(runtime, 3)
    refused = refuse_writes(runtime.engine, times=2)
    assert pipeline.send_bytehand_batch(runtime, campaign_id, ids) == 3
    assert len(refused) == 2
    accepted = {entry.to: entry.id for entry in simulators.bytehand.ledger}
    assert [(m.state, m.provider_message_id) for m in rows(runtime, ids)] == [
        (M.SUBMITTED, accepted[m.phone]) for m in rows(runtime, ids)
    ]


def test_an_answer_the_database_never_takes_is_logged_for_ops(
    make_runtime: RuntimeFactory, simulators: Simulators, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the patience, every accepted (message id, provider id) pair is logged at WARNING."""
    runtime = make_runtime(record_patience_s=0.0)
    campaign_id, ids = queued_campaign(runtime, 2)
    refuse_writes(runtime.engine, times=1000)
    with caplog.at_level(logging.WARNING, logger="dispatcher.pipeline"):
        pipeline.send_bytehand_batch(runtime, campaign_id, ids)
    [line] = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    by_phone = {m.phone: m.id for m in rows(runtime, ids)}
    for entry in simulators.bytehand.ledger:
        assert f"{by_phone[entry.to]}={entry.id}" in line
    assert [m.state for m in rows(runtime, ids)] == [M.SENDING, M.SENDING]


def test_a_timetochat_send_names_its_attempt_in_the_ext_ref(
    make_runtime: RuntimeFactory, simulators: Simulators
) -> None:
    """The extRef TimeToChat echoes in its reports is the message's ref and attempt."""
    runtime = make_runtime()
    campaign_id, [mid] = queued_campaign(runtime, 1, provider="timetochat")
    assert pipeline.send_timetochat(runtime, campaign_id, mid) == 1
    [message] = rows(runtime, [mid])
    assert [entry.ext_ref for entry in simulators.timetochat.ledger] == [f"{message.ext_ref}.1"]


def feed_and_send(runtime: Runtime) -> int:
    """One feeder tick and every send task it enqueued, run here; recipients submitted."""
    tasks: list[tuple[str, int, list[list[int]]]] = []
    pipeline.feed(runtime, lambda provider, cid, batches: tasks.append((provider, cid, batches)))
    return sum(
        send(runtime, provider, campaign_id, batch)
        for provider, campaign_id, batches in tasks
        for batch in batches
    )


def send(runtime: Runtime, provider: str, campaign_id: int, ids: list[int]) -> int:
    """Run the send tasks of one batch of claimed recipients; how many were submitted."""
    if provider == "bytehand":
        return pipeline.send_bytehand_batch(runtime, campaign_id, ids)
    return sum(pipeline.send_timetochat(runtime, campaign_id, mid) for mid in ids)


def resume(runtime: Runtime, campaign_id: int) -> None:
    with session_scope(runtime.sessions) as session:
        campaigns.resume(session, campaign_id, utcnow())


@pytest.mark.parametrize(
    ("provider", "wrong", "reason"),
    [
        ("bytehand", {"DISPATCHER_BYTEHAND_KEY": "not-the-key-0123"}, "bytehand:2 "),
        ("bytehand", {"DISPATCHER_BYTEHAND_ID": "999999"}, "bytehand:2 "),
        ("timetochat", {"DISPATCHER_TIMETOCHAT_SERVICE_ID": "999999"}, "AUTHENTICATION_FAILED"),
        ("timetochat", {"DISPATCHER_TIMETOCHAT_SERVICE_ID": ""}, "timetochat:NOT_FOUND"),
    ],
    ids=["bytehand-key", "bytehand-id", "timetochat-service", "timetochat-no-service"],
)
def test_wrong_credentials_pause_the_campaign_and_fail_no_one(
    make_runtime: RuntimeFactory, provider: str, wrong: dict[str, str], reason: str
) -> None:
    """An account the provider does not know pauses with the reason; resumed with the right
    credentials, every recipient is sent."""
    misconfigured = make_runtime(wrong)
    campaign_id, ids = queued_campaign(misconfigured, 3, provider=provider)
    assert send(misconfigured, provider, campaign_id, ids) == 0
    paused = campaign_row(misconfigured, campaign_id)
    assert paused.state == CampaignState.PAUSED
    assert paused.pause_reason is not None and reason in paused.pause_reason
    assert {m.state for m in rows(misconfigured, ids)} <= {M.PENDING, M.QUEUED}
    fixed = make_runtime()
    resume(fixed, campaign_id)
    assert feed_and_send(fixed) == 3
    assert {m.state for m in rows(fixed, ids)} == {M.SUBMITTED}


def test_a_refused_bytehand_sender_pauses_and_keeps_recipients_retryable(
    make_runtime: RuntimeFactory,
) -> None:
    """ByteHand code 10 is the campaign's sender: paused with the reason, nobody failed."""
    runtime = make_runtime()
    campaign_id, ids = queued_campaign(runtime, 3, sender="REFUSED")
    assert pipeline.send_bytehand_batch(runtime, campaign_id, ids) == 0
    paused = campaign_row(runtime, campaign_id)
    assert (paused.state, paused.pause_reason) == (
        CampaignState.PAUSED,
        "bytehand:10 Invalid message sender.",
    )
    assert [m.state for m in rows(runtime, ids)] == [M.PENDING] * 3


def test_a_timetochat_campaign_waits_for_its_send_after(
    make_runtime: RuntimeFactory, simulators: Simulators
) -> None:
    """TimeToChat has no send_after: the feeder sends nothing before it and everything after."""
    runtime = make_runtime()
    later = utcnow() + timedelta(minutes=1)
    with session_scope(runtime.sessions) as session:
        campaign_id, ids = insert_campaign(
            session,
            [{"state": M.PENDING, "phone": f"+33612345{n:03d}"} for n in range(1, 4)],
            provider="timetochat",
            sender="0938000001",
            send_after=later,
        )
    assert feed_and_send(runtime) == 0
    assert list(simulators.timetochat.ledger) == []
    assert [m.state for m in rows(runtime, ids)] == [M.PENDING] * 3
    with session_scope(runtime.sessions) as session:  # the minute has passed
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(send_after=utcnow())
        )
    assert feed_and_send(runtime) == 3
    assert len(list(simulators.timetochat.ledger)) == 3


@pytest.mark.parametrize("provider", ["bytehand", "timetochat"])
def test_a_limiter_outage_claims_nothing(
    make_runtime: RuntimeFactory, simulators: Simulators, provider: str
) -> None:
    """With the limiter's Redis gone, recipients go back to pending with no attempt spent."""
    runtime = make_runtime({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, short_wait_s=0.1)
    runtime.limiter(provider).max_wait_s = 0.0
    campaign_id, ids = queued_campaign(runtime, 2, provider=provider)
    for _ in range(runtime.settings.dispatch.max_attempts + 1):
        assert send(runtime, provider, campaign_id, ids) == 0
        with session_scope(runtime.sessions) as session:  # the feeder queues them again
            claims.claim_window(session, campaign_row(runtime, campaign_id), 10, utcnow())
    assert [(m.state, m.attempts) for m in rows(runtime, ids)] == [(M.QUEUED, 0)] * 2
    assert list(simulators.bytehand.ledger) == list(simulators.timetochat.ledger) == []


def test_a_latin1_text_goes_without_unicode_and_is_billed_as_gsm(
    make_runtime: RuntimeFactory, simulators: Simulators
) -> None:
    """A text the latin1 policy made GSM-7 is sent without unicode; the simulator takes it
    and counts the parts as our estimate did."""
    runtime = make_runtime()
    text = "Votre fenêtre de livraison : demain 9 h. " * 3
    info = sms.analyze(text, runtime.settings.timetochat.parts, policy="latin1")
    with session_scope(runtime.sessions) as session:
        campaign_id, [mid] = insert_campaign(
            session,
            [{"state": M.QUEUED, "phone": "+33612345001", "text": text, "encoding": info.encoding}],
            provider="timetochat",
            sender="0938000001",
        )
    assert pipeline.send_timetochat(runtime, campaign_id, mid) == 1
    [entry] = simulators.timetochat.ledger
    assert (entry.unicode, entry.parts) == (False, info.parts) == (False, 1)
