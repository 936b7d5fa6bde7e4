"""TimeToChat Push_CRA over real HTTP: path secret, username, statuses, MOs and answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.runtime import Runtime
from dispatcher.sandbox.server import serve_in_thread
from dispatcher.web import create_app
from dispatcher.web.webhooks import MAX_PUSH_ITEMS
from tests.web.helpers import (
    SERVICE_ID,
    WEBHOOK_SECRET,
    add_campaign,
    env_for,
    events,
    inbound,
    message,
)

URL = f"/webhooks/timetochat/{WEBHOOK_SECRET}"


def item(status: str, *, call_id: str = "", ext_ref: str = "", **extra: Any) -> dict[str, Any]:
    date = extra.pop("date", "2024-03-25T14:32:25Z")
    entry = {"date": date, "type": status, **({"info": extra["info"]} if "info" in extra else {})}
    return {
        "to": extra.get("to", "+33612340001"),
        "from": extra.get("from", "0937000000"),
        "date": date,
        "call_id": call_id,
        "ref_externe": ext_ref,
        "status_list": [entry],
        "status": status,
    }


def push(*items: dict[str, Any], username: str = SERVICE_ID) -> dict[str, Any]:
    return {"status_report": {"username": username, "sms": list(items)}}


def test_received_report_delivers_by_ext_ref(client: httpx.Client, runtime: Runtime) -> None:
    """A RECEIVED item finds its message by ref_externe and delivers it."""
    _, [mid] = add_campaign(runtime, provider="timetochat", messages=[("sent", "ttc-1")])
    ext_ref = message(runtime, mid).ext_ref
    answer = client.post(URL, json=push(item("RECEIVED", call_id="ttc-1", ext_ref=ext_ref)))
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "results": {"accepted": 1}}
    assert message(runtime, mid).state == "delivered"


def test_in_doubt_message_is_settled_by_ext_ref(client: httpx.Client, runtime: Runtime) -> None:
    """A send we were unsure of (no provider id stored) is settled by its extRef."""
    _, [mid] = add_campaign(runtime, provider="timetochat", messages=[("in_doubt", None)])
    ext_ref = message(runtime, mid).ext_ref
    client.post(URL, json=push(item("SENT", call_id="ttc-new", ext_ref=ext_ref)))
    settled = message(runtime, mid)
    assert settled.state == "sent"
    assert settled.provider_message_id == "ttc-new"


def test_repeated_and_late_reports(client: httpx.Client, runtime: Runtime) -> None:
    """A repeated POST is recorded once; a SENT arriving after RECEIVED changes nothing."""
    _, [mid] = add_campaign(runtime, provider="timetochat", messages=[("submitted", "ttc-2")])
    received = item("RECEIVED", call_id="ttc-2", date="2024-03-25T14:33:00Z")
    late_sent = item("SENT", call_id="ttc-2", date="2024-03-25T14:32:00Z")
    client.post(URL, json=push(received))
    client.post(URL, json=push(received))
    client.post(URL, json=push(late_sent))
    assert message(runtime, mid).state == "delivered"
    assert [(e.provider_state, e.applied) for e in events(runtime)] == [
        ("RECEIVED", True),
        ("SENT", False),
    ]


def test_error_report_keeps_the_operator_code(client: httpx.Client, runtime: Runtime) -> None:
    """ERROR makes the message undeliverable, with the CRA_SMS_* code as provider state."""
    _, [mid] = add_campaign(runtime, provider="timetochat", messages=[("sent", "ttc-3")])
    client.post(URL, json=push(item("ERROR", call_id="ttc-3", info="CRA_SMS_WRONGNUMBER")))
    stored = message(runtime, mid)
    assert (stored.state, stored.provider_state) == ("undeliverable", "CRA_SMS_WRONGNUMBER")


def test_wrong_secret_is_403(client: httpx.Client, runtime: Runtime) -> None:
    """A path without our secret is refused before the body is looked at."""
    _, [mid] = add_campaign(runtime, provider="timetochat", messages=[("sent", "ttc-4")])
    answer = client.post("/webhooks/timetochat/guess", json=push(item("RECEIVED", call_id="ttc-4")))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert message(runtime, mid).state == "sent"
    assert events(runtime) == []


def test_wrong_username_is_403(client: httpx.Client, runtime: Runtime) -> None:
    """A report for another service id is refused."""
    answer = client.post(URL, json=push(item("SENT", call_id="x"), username="999999"))
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"status_report": {"username": "123456", "sms": {}}}',
        b'{"status_report": {"username": "123456", "sms": [{"status": "SENT"}]}}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["text", "array", "sms-object", "no-fields", "deep-nesting"],
)
def test_malformed_push_is_400(client: httpx.Client, runtime: Runtime, body: bytes) -> None:
    """Anything we cannot read is 400 in the JSON error shape, and nothing is stored."""
    answer = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert events(runtime) == []


def test_date_out_of_range_is_400(client: httpx.Client, runtime: Runtime) -> None:
    """A zone pushing year 1 before datetime's range is malformed, not a crash."""
    bad = item("SENT", call_id="x", date="0001-01-01T00:00:00+01:00")
    assert client.post(URL, json=push(bad)).status_code == 400


def test_oversized_push_is_413(client: httpx.Client, runtime: Runtime) -> None:
    """Push_CRA bodies are small; a huge one is refused without being read."""
    answer = client.post(URL, content=b"x" * (2 << 20))
    assert answer.status_code == 413


def test_push_with_too_many_items_is_413(client: httpx.Client, runtime: Runtime) -> None:
    """A POST carrying more items than the cap is refused whole, nothing stored."""
    items = [
        item("INCOMING", info=f"mo {n}", date=f"2024-03-25T14:32:{n % 60:02d}Z")
        for n in range(MAX_PUSH_ITEMS + 1)
    ]
    answer = client.post(URL, json=push(*items))
    assert answer.status_code == 413
    assert inbound(runtime) == []


def test_push_at_the_cap_is_applied_whole(client: httpx.Client, runtime: Runtime) -> None:
    """A POST of as many items as the cap allows is accepted and applied whole."""
    items = [item("INCOMING", info=f"mo {n}", to=f"+336{n:08d}") for n in range(MAX_PUSH_ITEMS)]
    answer = client.post(URL, json=push(*items))
    assert answer.json()["results"] == {"accepted": MAX_PUSH_ITEMS}
    assert len(inbound(runtime)) == MAX_PUSH_ITEMS


def test_incoming_sms_is_stored(client: httpx.Client, runtime: Runtime) -> None:
    """INCOMING: the customer (``to``) wrote to the service number (``from``)."""
    mo = item("INCOMING", info="Bonjour", to="+33698765432", **{"from": "0937000000"})
    assert client.post(URL, json=push(mo)).json()["results"] == {"accepted": 1}
    assert client.post(URL, json=push(mo)).status_code == 200
    [stored] = inbound(runtime)
    assert (stored.from_number, stored.to_number, stored.text) == (
        "+33698765432",
        "0937000000",
        "Bonjour",
    )
    assert stored.reply_to_id is None


def test_answer_is_linked_to_its_message(client: httpx.Client, runtime: Runtime) -> None:
    """ANSWERED carries the call_id and extRef of our message: the reply is linked to it."""
    _, [mid] = add_campaign(runtime, provider="timetochat", messages=[("delivered", "ttc-5")])
    ext_ref = message(runtime, mid).ext_ref
    reply = item("ANSWERED", call_id="ttc-5", ext_ref=ext_ref, info="Oui merci")
    client.post(URL, json=push(reply))
    [stored] = inbound(runtime)
    assert (stored.reply_to_id, stored.text) == (mid, "Oui merci")
    assert message(runtime, mid).state == "delivered"


def test_several_items_in_one_post(client: httpx.Client, runtime: Runtime) -> None:
    """One POST may carry several items; each is handled."""
    _, [m1, m2] = add_campaign(
        runtime, provider="timetochat", messages=[("sent", "ttc-6"), ("sent", "ttc-7")]
    )
    answer = client.post(
        URL, json=push(item("RECEIVED", call_id="ttc-6"), item("ERROR", call_id="ttc-7"))
    )
    assert answer.json()["results"] == {"accepted": 2}
    assert (message(runtime, m1).state, message(runtime, m2).state) == (
        "delivered",
        "undeliverable",
    )


def test_no_secret_configured_refuses_everything(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    """With no webhook secret set, every Push_CRA is 403 (refuse rather than accept all)."""
    from dispatcher.config import load_settings

    env = env_for(db_url, redis_url, tmp_path, DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET="")
    runtime = Runtime(load_settings(env))
    try:
        with serve_in_thread(create_app(runtime)) as server:
            for path in ("/webhooks/timetochat/x", f"/webhooks/timetochat/{WEBHOOK_SECRET}"):
                answer = httpx.post(server.url + path, json=push(item("SENT", call_id="x")))
                assert answer.status_code == 403
    finally:
        runtime.close()
