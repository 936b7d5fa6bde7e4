"""ByteHand callbacks over real HTTP: applied once, only forwards, and never forged."""

from __future__ import annotations

import httpx

from dispatcher.runtime import Runtime
from tests.web.helpers import BYTEHAND_ID, BYTEHAND_KEY, add_campaign, events, inbound, message

URL = "/webhooks/bytehand"


def status(message_id: str, description: str, updated_at: str = "2024-03-25 14:32:25"):
    return {
        "id": BYTEHAND_ID,
        "key": BYTEHAND_KEY[-8:],
        "action": "outgoingStatus",
        "message": message_id,
        "description": description,
        "error_code": "0",
        "updated_at": updated_at,
    }


def test_delivered_callback_is_applied(client: httpx.Client, runtime: Runtime) -> None:
    """A DELIVERED status moves a submitted message to delivered."""
    _, [mid] = add_campaign(runtime, messages=[("submitted", "bh-1")])
    answer = client.get(URL, params=status("bh-1", "DELIVERED"))
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "result": "accepted"}
    assert message(runtime, mid).state == "delivered"


def test_duplicate_callback_is_recorded_once(client: httpx.Client, runtime: Runtime) -> None:
    """The same callback twice: both answered 200, one status event."""
    _, [mid] = add_campaign(runtime, messages=[("submitted", "bh-2")])
    first = client.get(URL, params=status("bh-2", "ACCEPTED"))
    second = client.get(URL, params=status("bh-2", "ACCEPTED"))
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(events(runtime)) == 1
    assert message(runtime, mid).state == "sent"


def test_late_sent_after_delivered_is_ignored(client: httpx.Client, runtime: Runtime) -> None:
    """A late ACCEPTED (sent) after DELIVERED is recorded but never moves the message back."""
    _, [mid] = add_campaign(runtime, messages=[("submitted", "bh-3")])
    client.get(URL, params=status("bh-3", "DELIVERED", "2024-03-25 14:33:00"))
    late = client.get(URL, params=status("bh-3", "ACCEPTED", "2024-03-25 14:32:00"))
    assert late.status_code == 200
    assert message(runtime, mid).state == "delivered"
    assert [e.applied for e in events(runtime)] == [True, False]


def test_forged_key_is_refused_and_changes_nothing(client: httpx.Client, runtime: Runtime) -> None:
    """A wrong key is 403 in our JSON error shape; no event, no state change."""
    _, [mid] = add_campaign(runtime, messages=[("submitted", "bh-4")])
    forged = {**status("bh-4", "DELIVERED"), "key": "00000000"}
    answer = client.get(URL, params=forged)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert message(runtime, mid).state == "submitted"
    assert events(runtime) == []


def test_wrong_client_id_is_refused(client: httpx.Client, runtime: Runtime) -> None:
    """Another account's id is 403 even with our key."""
    answer = client.get(URL, params={**status("bh-x", "DELIVERED"), "id": "9999"})
    assert answer.status_code == 403


def test_malformed_callback_is_400(client: httpx.Client, runtime: Runtime) -> None:
    """A genuine call we cannot read (bad timestamp) is 400 and stores nothing."""
    answer = client.get(URL, params=status("bh-5", "DELIVERED", "yesterday"))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_callback"
    assert events(runtime) == []


def test_value_too_long_for_its_column_is_400(client: httpx.Client, runtime: Runtime) -> None:
    """A 41-character state would overflow VARCHAR(40) on PostgreSQL: 400, not 500."""
    answer = client.get(URL, params=status("bh-6", "X" * 41))
    assert answer.status_code == 400


def test_nul_character_is_400(client: httpx.Client, runtime: Runtime) -> None:
    """NUL cannot be stored in PostgreSQL text: the callback is malformed."""
    answer = client.get(URL, params=status("bh-\x007", "DELIVERED"))
    assert answer.status_code == 400


def test_unknown_message_is_recorded_and_acknowledged(
    client: httpx.Client, runtime: Runtime
) -> None:
    """A status for an id we do not know: 200 (no retry storm), kept without a message."""
    answer = client.get(URL, params=status("nobody", "DELIVERED"))
    assert answer.status_code == 200
    [event] = events(runtime)
    assert event.message_id is None and not event.applied


def test_stored_payload_has_no_key(client: httpx.Client, runtime: Runtime) -> None:
    """The key is a credential: it never reaches the database."""
    add_campaign(runtime, messages=[("submitted", "bh-8")])
    client.get(URL, params={**status("bh-8", "DELIVERED"), "extra": "x"})
    [event] = events(runtime)
    assert "key" not in event.payload
    assert BYTEHAND_KEY[-8:] not in str(event.payload)
    assert event.payload["description"] == "DELIVERED"


def test_incoming_sms_is_stored_once(client: httpx.Client, runtime: Runtime) -> None:
    """An MO is kept once however often ByteHand repeats it."""
    params = {
        "id": BYTEHAND_ID,
        "key": BYTEHAND_KEY[-8:],
        "action": "incomingSms",
        "message": "mo-1",
        "to": "+79990000000",
        "from": "+79161234567",
        "text": "STOP",
        "posted_at": "2024-03-25 14:40:00",
    }
    assert client.get(URL, params=params).status_code == 200
    assert client.get(URL, params=params).status_code == 200
    [mo] = inbound(runtime)
    assert (mo.from_number, mo.to_number, mo.text) == ("+79161234567", "+79990000000", "STOP")
    assert mo.provider == "bytehand"


def test_ussd_actions_are_acknowledged_and_ignored(client: httpx.Client, runtime: Runtime) -> None:
    """USSD callbacks (never used) get 200 so ByteHand does not repeat them for 48 h."""
    params = {"id": BYTEHAND_ID, "key": BYTEHAND_KEY[-8:], "action": "ussdStatus"}
    answer = client.get(URL, params=params)
    assert answer.status_code == 200
    assert answer.json()["result"] == "ignored"
