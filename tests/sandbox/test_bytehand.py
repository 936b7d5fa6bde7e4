"""The ByteHand simulator over real HTTP: every documented answer and refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dispatcher.sandbox import codes

from .conftest import BH_AUTH, HTTP, Simulator, wait_until

HELLO = {"to": "+79161234567", "from": "SMSINFO", "text": "Hello world!"}


def get(sim: Simulator, path: str, **params: str) -> httpx.Response:
    return HTTP.get(sim.url + path, params={**BH_AUTH, **params})


def assert_error(response: httpx.Response, code: int) -> None:
    assert response.status_code == 400
    assert response.json() == {"status": code, "description": codes.BYTEHAND_DESCRIPTIONS[code]}


def test_send_then_status_moves_to_delivered(bytehand: Simulator) -> None:
    """/send answers "0" and an id; the message goes NEW → ACCEPTED → DELIVERED."""
    response = get(bytehand, "/send", **HELLO)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "0" and body["description"].isdigit()
    message = body["description"]
    wait_until(
        lambda: get(bytehand, "/status", message=message).json()["description"] == "DELIVERED"
    )
    entry = bytehand.sandbox.ledger.get(message)
    assert [state for _, state in entry.history] == ["NEW", "ACCEPTED", "DELIVERED"]


@pytest.mark.parametrize(
    "auth",
    [{"id": "1000", "key": "wrong"}, {"id": "9999", "key": "x"}, {"id": "1000"}, {}],
)
def test_wrong_credentials_are_status_2(bytehand: Simulator, auth: dict[str, str]) -> None:
    """A wrong or missing id/key is HTTP 400 with status 2, on every call."""
    for path in ("/send", "/balance", "/status", "/signatures"):
        response = HTTP.get(bytehand.url + path, params={**auth, **HELLO})
        assert_error(response, codes.BH_AUTH_FAILED)
    assert len(bytehand.sandbox.ledger) == 0


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"from": "blablabla"}, codes.BH_INVALID_SENDER),
        ({"from": "PENDING"}, codes.BH_INVALID_SENDER),  # still under moderation
        ({"from": "REFUSED"}, codes.BH_INVALID_SENDER),
        ({"to": "+7916abc"}, codes.BH_INVALID_RECEIVER),
        ({"to": "+79161234500"}, codes.BH_INVALID_RECEIVER),  # ending 00
        ({"text": "x" * 801}, codes.BH_INVALID_PARAMETERS),
        ({"text": ""}, codes.BH_INVALID_PARAMETERS),
        ({"send_after": "2030-01-01T00:00:00"}, codes.BH_INVALID_PARAMETERS),
    ],
)
def test_send_refusals(bytehand: Simulator, changes: dict[str, str], code: int) -> None:
    """Each invalid parameter has its own status code, and nothing is accepted."""
    assert_error(get(bytehand, "/send", **{**HELLO, **changes}), code)
    assert len(bytehand.sandbox.ledger) == 0


def test_missing_parameter_is_status_6(bytehand: Simulator) -> None:
    """to, from and text are all required."""
    assert_error(get(bytehand, "/send", to="+79161234567", text="hi"), codes.BH_INVALID_PARAMETERS)


def test_800_characters_are_accepted(bytehand: Simulator) -> None:
    """The limit is 800 characters inclusive, split in 153-character parts."""
    body = get(bytehand, "/send", **{**HELLO, "text": "x" * 800}).json()
    details = get(bytehand, "/details", message=body["description"]).json()
    assert details["parts"] == "6"
    assert details["cost"] == "6.0000"


def test_send_after_holds_the_message_as_new(bytehand: Simulator) -> None:
    """A message with send_after in the future stays NEW until then."""
    later = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    now_ = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    held = get(bytehand, "/send", **HELLO, send_after=later).json()["description"]
    prompt = get(bytehand, "/send", **{**HELLO, "text": "now"}, send_after=now_).json()
    wait_until(
        lambda: (
            get(bytehand, "/status", message=prompt["description"]).json()["description"]
            == "DELIVERED"
        )
    )
    assert get(bytehand, "/status", message=held).json()["description"] == "NEW"
    wait_until(lambda: get(bytehand, "/status", message=held).json()["description"] == "DELIVERED")


def test_send_multi_answers_each_item_in_order(bytehand: Simulator) -> None:
    """Each item succeeds or fails on its own; int statuses, same order as the request."""
    items = [
        {"to": "89161234567", "from": "SMSINFO", "text": "Hello world!"},
        {"to": "+79167654321", "from": "blablabla", "text": "TEST"},
        {"to": "+79167654300", "from": "SMSINFO", "text": "TEST"},
        {"to": "+79167654321", "from": "SMSINFO", "text": "y" * 801},
        {"to": "+79167654321", "from": "SMSINFO"},
        "not an object",
    ]
    response = HTTP.post(bytehand.url + "/send_multi", params=BH_AUTH, json=items)
    assert response.status_code == 200
    results = response.json()
    assert [r["status"] for r in results] == [0, 10, 11, 6, 6, 6]
    assert results[1]["description"] == "Invalid message sender."
    assert [e.id for e in bytehand.sandbox.ledger] == [results[0]["description"]]
    assert next(iter(bytehand.sandbox.ledger)).to == "+79161234567"  # auto-corrected


@pytest.mark.parametrize("body", [b"", b"{not json", b"{}", b"[]"])
def test_send_multi_needs_a_json_list(bytehand: Simulator, body: bytes) -> None:
    """A body that is not a non-empty JSON list refuses the whole call with status 6."""
    response = HTTP.post(bytehand.url + "/send_multi", params=BH_AUTH, content=body)
    assert_error(response, codes.BH_INVALID_PARAMETERS)


def test_status_of_unknown_message_is_9(bytehand: Simulator) -> None:
    """Unknown message ids are "not found"."""
    assert_error(get(bytehand, "/status", message="123"), codes.BH_NOT_FOUND)
    assert_error(get(bytehand, "/details", message="123"), codes.BH_NOT_FOUND)


def test_details_follow_the_original_shape(bytehand: Simulator) -> None:
    """details carry string parts and cost and tenth-second dates."""
    message = get(bytehand, "/send", **{**HELLO, "text": "ж" * 71}).json()["description"]
    details = get(bytehand, "/details", message=message).json()
    assert set(details) == {"status", "description", "posted_at", "updated_at", "parts", "cost"}
    assert details["status"] == "0" and details["parts"] == "2"
    datetime.strptime(details["posted_at"], "%Y-%m-%d %H:%M:%S.%f")


def test_balance_is_charged_per_part(bytehand_factory: Callable[..., Simulator]) -> None:
    """Each part costs cost_per_part; too little balance is status 4."""
    from dispatcher.sandbox import ByteHandAccount

    sim = bytehand_factory(accounts=(ByteHandAccount(balance=__import__("decimal").Decimal(3)),))
    assert get(sim, "/balance").json() == {"status": "0", "description": "3.0000"}
    get(sim, "/send", **{**HELLO, "text": "x" * 200})
    assert get(sim, "/balance").json()["description"] == "1.0000"
    assert_error(get(sim, "/send", **{**HELLO, "text": "x" * 200}), codes.BH_FORBIDDEN)


def test_signatures_lifecycle(bytehand: Simulator) -> None:
    """List, filter, read, submit (stays NEW, cannot send) and delete sender names."""
    everything = get(bytehand, "/signatures").json()
    assert [(s["text"], s["state"]) for s in everything] == [
        ("SMSINFO", "ACCEPTED"),
        ("PENDING", "NEW"),
        ("REFUSED", "REJECTED"),
    ]
    assert [s["text"] for s in get(bytehand, "/signatures", state="ACCEPTED").json()] == ["SMSINFO"]
    assert_error(get(bytehand, "/signatures", state="BOGUS"), codes.BH_INVALID_PARAMETERS)
    first = everything[0]
    assert get(bytehand, "/signature", signature=str(first["id"])).json() == first
    created = HTTP.post(
        bytehand.url + "/signature", params={**BH_AUTH, "text": "NEWONE", "description": "d"}
    ).json()
    assert created["status"] == 0
    assert get(bytehand, "/signature", signature=created["description"]).json()["state"] == "NEW"
    assert_error(get(bytehand, "/send", **{**HELLO, "from": "NEWONE"}), codes.BH_INVALID_SENDER)
    deleted = HTTP.delete(
        bytehand.url + "/signature", params={**BH_AUTH, "signature": created["description"]}
    )
    assert deleted.json() == {"status": 0, "description": created["description"]}
    assert_error(get(bytehand, "/signature", signature=created["description"]), codes.BH_NOT_FOUND)


def test_never_final_number_stays_accepted(bytehand: Simulator) -> None:
    """A number ending in 99 reaches ACCEPTED and stays there."""
    message = get(bytehand, "/send", **{**HELLO, "to": "+79161234599"}).json()["description"]
    wait_until(
        lambda: get(bytehand, "/status", message=message).json()["description"] == "ACCEPTED"
    )
    assert bytehand.sandbox.scheduler.pending() == 0


def test_ledger_and_duplicates(bytehand: Simulator) -> None:
    """The control ledger lists accepted messages; resending the same text is a duplicate."""
    get(bytehand, "/send", **HELLO)
    get(bytehand, "/send", **HELLO)
    get(bytehand, "/send", **{**HELLO, "text": "other"})
    ledger = HTTP.get(bytehand.url + "/_control/ledger").json()["messages"]
    assert [m["text"] for m in ledger] == ["Hello world!", "Hello world!", "other"]
    assert {"account", "to", "from", "text", "id", "accepted_at", "parts", "state"} <= set(
        ledger[0]
    )
    stats = HTTP.get(bytehand.url + "/_control/stats").json()["accounts"]["1000"]
    assert (stats["accepted"], stats["duplicates"], stats["calls_served"]) == (3, 1, 3)
    assert HTTP.post(bytehand.url + "/_control/reset").json() == {"reset": True}
    assert HTTP.get(bytehand.url + "/_control/ledger").json() == {"messages": []}
    assert bytehand.sandbox.stats() == {}
