"""Why and since when a campaign is paused: in the API and on the console, gone on resume."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from dispatcher import campaigns
from dispatcher.db import session_scope
from dispatcher.runtime import Runtime
from tests.web.helpers import add_campaign
from tests.web.test_console import sign_in

PAUSED_AT = datetime(2026, 11, 25, 21, 30, 5, tzinfo=UTC)
REASON = "bytehand: account refused the key (HTTP 401)"


def _pause(runtime: Runtime) -> int:
    cid, _ = add_campaign(runtime, name="Autumn")
    with session_scope(runtime.sessions) as session:
        assert campaigns.pause_for(session, cid, REASON, PAUSED_AT)
    return cid


def test_api_gives_reason_and_time(api: httpx.Client, runtime: Runtime) -> None:
    """GET /campaigns/{id} and the list carry pause_reason and paused_at; resume clears them."""
    cid = _pause(runtime)
    one = api.get(f"/campaigns/{cid}").json()
    assert (one["state"], one["pause_reason"]) == ("paused", REASON)
    assert datetime.fromisoformat(one["paused_at"]) == PAUSED_AT
    [listed] = api.get("/campaigns").json()["items"]
    assert listed["pause_reason"] == REASON
    assert api.post(f"/campaigns/{cid}/resume").status_code == 200
    resumed = api.get(f"/campaigns/{cid}").json()
    assert (resumed["pause_reason"], resumed["paused_at"]) == (None, None)


def test_console_shows_reason_and_time(client: httpx.Client, runtime: Runtime) -> None:
    """The console's campaign page says why the campaign paused and since when."""
    cid = _pause(runtime)
    sign_in(client)
    page = client.get(f"/console/campaigns/{cid}").text
    assert "Paused since" in page
    assert "account refused the key (HTTP 401)" in page
    assert "2026-11-25T21:30:05" in page or "Nov 25, 2026" in page, "the pause time is missing"
