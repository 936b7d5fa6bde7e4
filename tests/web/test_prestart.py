"""Pre-start checks against the ByteHand simulator: refused starts send nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from dispatcher import pipeline
from dispatcher.db import session_scope
from dispatcher.models import Campaign, utcnow
from dispatcher.prestart import bytehand_problem, timetochat_problem
from dispatcher.providers.bytehand import Signature
from dispatcher.runtime import Runtime
from tests.web.helpers import add_campaign, message


def _set(runtime: Runtime, campaign_id: int, **values: object) -> None:
    with session_scope(runtime.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        for name, value in values.items():
            setattr(campaign, name, value)


def _state(runtime: Runtime, campaign_id: int) -> tuple[str, str | None]:
    with session_scope(runtime.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.state, campaign.pause_reason


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"sender": "NEWNAME"}, "sender_not_approved"),
        ({"sender": "NOBODY"}, "sender_not_approved"),
        ({"estimate": {"cost": 20000.0}}, "balance_too_low"),
        ({"provider": "timetochat", "sender": "0937000000"}, "sender_not_of_service"),
    ],
)
def test_refused_start_is_409_and_nothing_moves(
    api: httpx.Client, runtime: Runtime, kicks: list[int], values: dict[str, object], code: str
) -> None:
    """An unapproved sender, a low balance and a foreign TimeToChat number refuse the start."""
    cid, [mid] = add_campaign(runtime, state="draft", messages=[("pending", None)])
    _set(runtime, cid, **values)
    answer = api.post(f"/campaigns/{cid}/start")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == code
    assert _state(runtime, cid) == ("draft", None)
    assert message(runtime, mid).state == "pending"
    assert kicks == []


def test_approved_sender_within_balance_starts(api: httpx.Client, runtime: Runtime) -> None:
    """SHOP is approved and 10 RUB is within the balance: the start goes through."""
    cid, _ = add_campaign(runtime, state="draft", messages=[("pending", None)])
    _set(runtime, cid, estimate={"cost": 10.0})
    assert api.post(f"/campaigns/{cid}/start").json()["state"] == "running"


def test_beat_pauses_a_scheduled_campaign_that_fails_its_check(runtime: Runtime) -> None:
    """At start_at, a campaign whose sender is not approved is paused with the reason."""
    cid, [mid] = add_campaign(runtime, state="scheduled", messages=[("pending", None)])
    _set(runtime, cid, sender="NEWNAME", start_at=utcnow() - timedelta(seconds=1))
    enqueued: list[object] = []
    pipeline.feed(runtime, lambda *work: enqueued.append(work))
    state, reason = _state(runtime, cid)
    assert state == "paused"
    assert reason is not None and "'NEWNAME' is not an approved signature" in reason
    assert enqueued == []
    assert message(runtime, mid).state == "pending"


def test_pure_decisions() -> None:
    """Accepted sender and enough balance pass; number formats of the service compare equal."""
    accepted = [Signature("1", "SHOP", "", None, "ACCEPTED")]
    assert bytehand_problem("SHOP", accepted, Decimal("5"), Decimal("5")) is None
    assert bytehand_problem("SHOP", accepted, Decimal("4.99"), Decimal("5")) is not None
    assert timetochat_problem("0938000001", ["+33 9 38 00 00 01"]) is None
    assert timetochat_problem("0938000001", []) is not None


def test_resume_runs_the_checks_again(api: httpx.Client, runtime: Runtime) -> None:
    """A campaign paused because its sender was refused resumes only once it is approved."""
    cid, _ = add_campaign(runtime, state="paused", messages=[("pending", None)])
    _set(runtime, cid, sender="NEWNAME", pause_reason="ByteHand sender 'NEWNAME' ...")
    refused = api.post(f"/campaigns/{cid}/resume")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "sender_not_approved")
    assert _state(runtime, cid)[0] == "paused"
    _set(runtime, cid, sender="SHOP")
    assert api.post(f"/campaigns/{cid}/resume").json()["state"] == "running"
    assert _state(runtime, cid) == ("running", None)
