"""The TimeToChat simulator over real HTTP: token, send, status, and every refusal."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import TimeToChatAccount, codes

from .conftest import HTTP, TTC_PASSWORD, TTC_SENDER, Simulator, wait_until

SERVICE = "/mug/api/V1/services/123456"
MESSAGE = {"to": "0601020304", "text": "Test MUG", "from": TTC_SENDER, "extRef": "abc123"}


def token(sim: Simulator, password: str = TTC_PASSWORD) -> httpx.Response:
    return HTTP.post(sim.url + SERVICE + "/token", json={"password": password})


def bearer(sim: Simulator) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(sim).json()["token"]}


def send(sim: Simulator, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = bearer(sim) if headers is None else headers
    return HTTP.post(sim.url + SERVICE + "/messages", json=body, headers=headers)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.json()["code"] == code


def validity(delta: timedelta) -> str:
    when = datetime.now(UTC) + delta
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def test_token_then_send_then_history(timetochat: Simulator) -> None:
    """201 token, 201 {id, extRef}, then a history NEW → CRA_SMS_SENT → CRA_SMS_RECEIVED."""
    response = token(timetochat)
    assert response.status_code == 201 and response.json()["token"].count(".") == 2
    headers = {"Authorization": "Bearer " + response.json()["token"]}
    sent = send(timetochat, MESSAGE, headers)
    assert sent.status_code == 201
    message_id = sent.json()["id"]
    assert sent.json() == {"id": message_id, "extRef": "abc123"} and len(message_id) == 24
    url = f"{timetochat.url}{SERVICE}/messages/{message_id}"
    body = wait_until(
        lambda: (
            (b := HTTP.get(url, headers=headers).json())["history"][-1]["status"]
            == "CRA_SMS_RECEIVED"
            and b
        )
    )
    assert [h["status"] for h in body["history"]] == ["NEW", "CRA_SMS_SENT", "CRA_SMS_RECEIVED"]
    assert "part" not in body["history"][0]
    assert (body["to"], body["from"], body["extRef"], body["unicode"]) == (
        "+33601020304",
        TTC_SENDER,
        "abc123",
        False,
    )


def test_long_message_history_has_parts(timetochat: Simulator) -> None:
    """A two-part SMS reports every state once per part, with "part": "k/2"."""
    headers = bearer(timetochat)
    message_id = send(timetochat, {**MESSAGE, "text": "a" * 161}, headers).json()["id"]
    url = f"{timetochat.url}{SERVICE}/messages/{message_id}"
    history = wait_until(
        lambda: len(h := HTTP.get(url, headers=headers).json()["history"]) == 6 and h
    )
    assert [(h["status"], h["part"]) for h in history] == [
        ("NEW", "1/2"),
        ("NEW", "2/2"),
        ("CRA_SMS_SENT", "1/2"),
        ("CRA_SMS_SENT", "2/2"),
        ("CRA_SMS_RECEIVED", "1/2"),
        ("CRA_SMS_RECEIVED", "2/2"),
    ]


def test_wrong_password_is_authentication_failed(timetochat: Simulator) -> None:
    """A wrong password or unknown service is 401 AUTHENTICATION_FAILED."""
    assert_error(token(timetochat, "nope"), 401, codes.TTC_AUTHENTICATION_FAILED)
    unknown = HTTP.post(timetochat.url + "/mug/api/V1/services/999/token", json={"password": "x"})
    assert_error(unknown, 401, codes.TTC_AUTHENTICATION_FAILED)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer forged.token.value"}, {"Authorization": "Basic abc"}],
)
def test_missing_or_forged_token_is_401(timetochat: Simulator, headers: dict[str, str]) -> None:
    """Without a valid bearer token every message call is 401 INVALID_TOKEN."""
    assert_error(send(timetochat, MESSAGE, headers), 401, codes.TTC_INVALID_TOKEN)
    status = HTTP.get(f"{timetochat.url}{SERVICE}/messages/abc", headers=headers)
    assert_error(status, 401, codes.TTC_INVALID_TOKEN)


def test_token_expires(timetochat_factory: Callable[..., Simulator]) -> None:
    """A token is refused with 401 TOKEN_EXPIRED once its lifetime is over."""
    sim = timetochat_factory(token_lifetime_s=1.0)
    headers = bearer(sim)
    assert send(sim, MESSAGE, headers).status_code == 201
    time.sleep(1.05)
    assert_error(send(sim, MESSAGE, headers), 401, codes.TTC_TOKEN_EXPIRED)
    assert send(sim, MESSAGE).status_code == 201  # a fresh token works
    assert len(sim.sandbox.ledger) == 2


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"to": None}, 400, codes.TTC_MISSING_PARAMETER),
        ({"text": ""}, 400, codes.TTC_MISSING_PARAMETER),
        ({"from": None}, 400, codes.TTC_MISSING_PARAMETER),
        ({"unicode": "yes"}, 400, codes.TTC_INVALID_PARAMETER),
        ({"from": "0938000002"}, 403, codes.TTC_FORBIDDEN_SENDER),
        ({"to": "0101020304"}, 400, codes.TTC_INVALID_RECIPIENT),
        ({"to": "0601020300"}, 400, codes.TTC_INVALID_RECIPIENT),
        ({"validityDate": "2019-07-01T08:00:00.123Z"}, 400, codes.TTC_INVALID_VALIDITY_DATE),
        ({"validityDate": "2099-07-01T08:00:00Z"}, 400, codes.TTC_INVALID_VALIDITY_DATE),
        ({"extRef": "r" * 151}, 400, codes.TTC_INVALID_EXT_REF),
        ({"text": "a" * 1225}, 400, codes.TTC_TEXT_TOO_LONG),
        ({"text": "ж" * 529, "unicode": True}, 400, codes.TTC_TEXT_TOO_LONG),
        ({"text": "Привет"}, 400, codes.TTC_INVALID_PARAMETER),
    ],
)
def test_send_refusals(
    timetochat: Simulator, changes: dict[str, Any], status: int, code: str
) -> None:
    """Each documented refusal has its HTTP status and code; nothing is accepted."""
    body = {k: v for k, v in {**MESSAGE, **changes}.items() if v is not None}
    assert_error(send(timetochat, body), status, code)
    assert len(timetochat.sandbox.ledger) == 0


def test_limits_are_inclusive(timetochat: Simulator) -> None:
    """1224 GSM-7 characters, 528 unicode ones and a 150-character extRef are accepted."""
    headers = bearer(timetochat)
    for changes in (
        {"text": "a" * 1224},
        {"text": "ж" * 528, "unicode": True},
        {"extRef": "r" * 150, "validityDate": validity(timedelta(hours=1))},
    ):
        assert send(timetochat, {**MESSAGE, **changes}, headers).status_code == 201
    assert [e.parts for e in timetochat.sandbox.ledger] == [8, 8, 1]


def test_body_must_be_a_json_object(timetochat: Simulator) -> None:
    """A body that is not a JSON object is 400 INVALID_PARAMETER."""
    response = HTTP.post(
        timetochat.url + SERVICE + "/messages", content=b"[1]", headers=bearer(timetochat)
    )
    assert_error(response, 400, codes.TTC_INVALID_PARAMETER)


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (TimeToChatAccount(test_account_expired=True), codes.TTC_TEST_ACCOUNT_EXPIRED),
        (TimeToChatAccount(monthly_limit=0), codes.TTC_MONTHLY_LIMIT_REACHED),
    ],
)
def test_test_account_limits(
    timetochat_factory: Callable[..., Simulator], account: TimeToChatAccount, code: str
) -> None:
    """An expired test account or a reached monthly limit is 403."""
    sim = timetochat_factory(accounts=(account,))
    assert_error(send(sim, MESSAGE), 403, code)


def test_monthly_limit_counts_accepted_messages(
    timetochat_factory: Callable[..., Simulator],
) -> None:
    """The monthly quota is spent by accepted messages only."""
    sim = timetochat_factory(accounts=(TimeToChatAccount(monthly_limit=1),))
    headers = bearer(sim)
    assert send(sim, {**MESSAGE, "extRef": "r" * 151}, headers).status_code == 400
    assert send(sim, MESSAGE, headers).status_code == 201
    assert_error(send(sim, MESSAGE, headers), 403, codes.TTC_MONTHLY_LIMIT_REACHED)


def test_validity_date_passing_ends_in_error(timetochat: Simulator) -> None:
    """A message whose validityDate passes before delivery ends in CRA_SMS_ERROR."""
    body = {**MESSAGE, "to": "0601020399", "validityDate": validity(timedelta(seconds=0.6))}
    message_id = send(timetochat, body).json()["id"]
    entry = wait_until(
        lambda: (e := timetochat.sandbox.ledger.get(message_id)).state == "CRA_SMS_ERROR" and e
    )
    assert [state for _, state in entry.history] == ["NEW", "CRA_SMS_SENT", "CRA_SMS_ERROR"]


def test_unknown_message_is_404(timetochat: Simulator) -> None:
    """A status request for an id the service never got is 404 NOT_FOUND."""
    response = HTTP.get(
        f"{timetochat.url}{SERVICE}/messages/5bb31c2f91ea924bdd42d750", headers=bearer(timetochat)
    )
    assert_error(response, 404, codes.TTC_NOT_FOUND)


def test_duplicates_include_ext_ref(timetochat: Simulator) -> None:
    """The same text to the same number is a duplicate only with the same extRef."""
    headers = bearer(timetochat)
    for ext_ref in ("a", "b", "a"):
        send(timetochat, {**MESSAGE, "extRef": ext_ref}, headers)
    send(timetochat, {**MESSAGE, "to": "+33601020304", "extRef": "b"}, headers)
    stats = timetochat.sandbox.stats()["123456"]
    assert (stats.accepted, stats.duplicates, stats.calls_served) == (4, 2, 5)
