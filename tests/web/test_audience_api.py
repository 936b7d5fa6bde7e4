"""The JSON API of the audience: suppressions and replies, over real HTTP."""

from __future__ import annotations

import httpx

from dispatcher.db import session_scope
from dispatcher.models import InboundMessage, utcnow
from dispatcher.runtime import Runtime
from tests.web.helpers import add_campaign, message


def test_suppression_lifecycle(api: httpx.Client, runtime: Runtime) -> None:
    """POST suppresses (and ends the pending message suppressed), GET lists, DELETE lifts."""
    _, [mid] = add_campaign(runtime, messages=[("pending", None)])
    phone = message(runtime, mid).phone
    created = api.post("/suppressions", json={"phone": phone, "reason": "plainte"})
    assert created.status_code == 201, created.text
    assert message(runtime, mid).state == "suppressed"
    [entry] = api.get("/suppressions").json()["items"]
    assert (entry["phone"], entry["scope"], entry["source"], entry["reason"]) == (
        phone,
        "*",
        "ops",
        "plainte",
    )
    assert api.delete(f"/suppressions/{phone}").json()["removed"] == 1
    assert api.get("/suppressions").json()["items"] == []


def test_import_and_export_csv(api: httpx.Client) -> None:
    """A multipart CSV import, then the CSV export lists it with source `import`."""
    body = b"phone\n0612345678\n0676543210\nabc\n"
    answer = api.post(
        "/suppressions/import", params={"scope": "bytehand"}, files={"file": ("s.csv", body)}
    )
    assert answer.json() == {"added": 2, "rejected": 1}
    rows = api.get("/suppressions/export").text.splitlines()[1:]
    assert sorted(r.split(",")[:3] for r in rows) == [
        ["+33612345678", "bytehand", "import"],
        ["+33676543210", "bytehand", "import"],
    ]


def test_bad_scope_is_a_400(api: httpx.Client) -> None:
    """An unknown scope is refused with the error shape of the API."""
    answer = api.post("/suppressions", json={"phone": "0612345678", "scope": "sfr"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_scope"


def test_replies_lists_mos(api: httpx.Client, runtime: Runtime) -> None:
    """GET /replies shows an MO with its intent and the campaign it answers."""
    campaign_id, [mid] = add_campaign(runtime, messages=[("sent", "p1")])
    with session_scope(runtime.sessions) as session:
        session.add(
            InboundMessage(
                provider="bytehand",
                from_number="+33612345678",
                to_number="SHOP",
                text="STOP",
                intent="opt_out",
                reply_to_id=mid,
                dedup_key="k",
                received_at=utcnow(),
            )
        )
    [item] = api.get("/replies", params={"campaign": campaign_id}).json()["items"]
    assert (item["text"], item["intent"], item["campaign_id"]) == ("STOP", "opt_out", campaign_id)
