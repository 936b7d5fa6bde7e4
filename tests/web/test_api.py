"""The JSON API over real HTTP: bearer auth, the campaign lifecycle, error shapes, health."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dispatcher.config import load_settings
from dispatcher.runtime import Runtime
from dispatcher.sandbox.server import serve_in_thread
from dispatcher.web import create_app
from tests.web.helpers import API_TOKEN, add_campaign, env_for, message


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": API_TOKEN}, {"Authorization": ""}],
    ids=["missing", "wrong", "no-scheme", "empty"],
)
def test_api_requires_the_token(client: httpx.Client, headers: dict[str, str]) -> None:
    """Without the right bearer token every API route is 401 in the JSON error shape."""
    for method, path in [("GET", "/campaigns"), ("POST", "/campaigns/1/start")]:
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_auth_comes_before_body_validation(client: httpx.Client) -> None:
    """An anonymous client with a bad body learns nothing but 401."""
    answer = client.post("/campaigns/1/resolve-in-doubt", content=b"{not json")
    assert answer.status_code == 401


def test_api_disabled_without_a_token(db_url: str, redis_url: str, tmp_path: Path) -> None:
    """No DISPATCHER_API_TOKEN: the API answers 503, never opens up."""
    runtime = Runtime(load_settings(env_for(db_url, redis_url, tmp_path, DISPATCHER_API_TOKEN="")))
    try:
        with serve_in_thread(create_app(runtime)) as server:
            answer = httpx.get(server.url + "/campaigns", headers={"Authorization": "Bearer x"})
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "api_disabled"
    finally:
        runtime.close()


def test_lifecycle(api: httpx.Client, runtime: Runtime, kicks: list[int]) -> None:
    """start (kicks the feeder), pause, resume, cancel, each reflected by GET."""
    cid, _ = add_campaign(runtime, state="draft", messages=[("pending", None)] * 3)
    started = api.post(f"/campaigns/{cid}/start")
    assert started.status_code == 200
    assert started.json() == {"id": cid, "state": "running", "kicked": True}
    assert kicks == [cid]
    assert api.post(f"/campaigns/{cid}/pause").json()["state"] == "paused"
    assert api.post(f"/campaigns/{cid}/resume").json()["state"] == "running"
    cancelled = api.post(f"/campaigns/{cid}/cancel").json()
    assert cancelled == {"id": cid, "state": "cancelled", "cancelled": 3}
    detail = api.get(f"/campaigns/{cid}").json()
    assert detail["state"] == "cancelled"
    assert detail["counts"] == {"cancelled": 3}
    assert detail["report"]["counts"] == {"cancelled": 3}
    assert detail["progress"] == 1.0


def test_illegal_move_is_409(api: httpx.Client, runtime: Runtime) -> None:
    """Resuming a running campaign is a conflict, not a server error."""
    cid, _ = add_campaign(runtime, state="running")
    answer = api.post(f"/campaigns/{cid}/resume")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "conflict"


def test_unknown_campaign_is_404(api: httpx.Client) -> None:
    """Every campaign route answers 404 for an id that does not exist."""
    for method, path in [
        ("GET", "/campaigns/999"),
        ("POST", "/campaigns/999/start"),
        ("GET", "/campaigns/999/messages"),
        ("GET", "/campaigns/999/in-doubt"),
    ]:
        answer = api.request(method, path)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/campaigns/abc",
        "/campaigns/99999999999999999999999",
        "/campaigns?limit=0",
        "/campaigns?state=flying",
        "/campaigns/1/messages?state=lost",
        "/campaigns/1/messages?offset=-1",
    ],
)
def test_bad_parameters_are_422(api: httpx.Client, path: str) -> None:
    """Validation errors use the same JSON shape, with code invalid_request."""
    answer = api.get(path)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"


def test_unknown_route_is_json_404(api: httpx.Client) -> None:
    """Even the router's own 404 is our JSON shape."""
    answer = api.get("/nowhere")
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": "Not Found"}}


def test_list_and_messages(api: httpx.Client, runtime: Runtime) -> None:
    """The list shows counts and progress; messages filter by state and page."""
    cid, mids = add_campaign(
        runtime, messages=[("delivered", "a"), ("delivered", "b"), ("sent", "c")]
    )
    [listed] = api.get("/campaigns").json()["items"]
    assert listed["id"] == cid
    assert listed["counts"] == {"delivered": 2, "sent": 1}
    assert listed["progress"] == pytest.approx(2 / 3, abs=1e-3)
    page = api.get(f"/campaigns/{cid}/messages", params={"state": "delivered", "limit": 1}).json()
    assert page["total"] == 2
    assert [m["id"] for m in page["items"]] == [mids[0]]


def test_in_doubt_listed_and_resolved(
    api: httpx.Client, runtime: Runtime, kicks: list[int]
) -> None:
    """Ops see in-doubt sends, then resend them (feeder kicked) or declare them sent."""
    cid, [first, second] = add_campaign(runtime, messages=[("in_doubt", None)] * 2)
    listed = api.get(f"/campaigns/{cid}/in-doubt").json()["items"]
    assert [m["id"] for m in listed] == [first, second]
    assert set(listed[0]) >= {"id", "phone", "ext_ref", "last_error"}
    answer = api.post(f"/campaigns/{cid}/resolve-in-doubt", json={"action": "mark_sent"})
    assert answer.json()["moved"] == 2
    assert message(runtime, first).state == "unknown"
    assert kicks == []


def test_resolve_resend_kicks_the_feeder(
    api: httpx.Client, runtime: Runtime, kicks: list[int]
) -> None:
    """Resending in-doubt messages puts them back to pending and feeds at once."""
    cid, [mid] = add_campaign(runtime, messages=[("in_doubt", None)])
    answer = api.post(f"/campaigns/{cid}/resolve-in-doubt", json={"action": "resend"})
    assert answer.json()["moved"] == 1
    assert message(runtime, mid).state == "pending"
    assert kicks == [cid]


@pytest.mark.parametrize("body", [b"", b"[]", b'{"action": "burn"}', b"{", b'{"action": 1}'])
def test_resolve_needs_a_valid_action(api: httpx.Client, runtime: Runtime, body: bytes) -> None:
    """A missing or unknown action is 422; nothing moves."""
    cid, [mid] = add_campaign(runtime, messages=[("in_doubt", None)])
    answer = api.post(f"/campaigns/{cid}/resolve-in-doubt", content=body)
    assert answer.status_code == 422
    assert message(runtime, mid).state == "in_doubt"


def test_failed_kick_keeps_the_start(runtime: Runtime) -> None:
    """A broker outage while kicking does not undo the start: beat will feed it."""

    def broken(campaign_id: int) -> None:
        raise ConnectionError("broker down")

    cid, _ = add_campaign(runtime, state="draft", messages=[("pending", None)])
    with serve_in_thread(create_app(runtime, on_start=broken)) as server:
        answer = httpx.post(
            f"{server.url}/campaigns/{cid}/start",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
    assert answer.json() == {"id": cid, "state": "running", "kicked": False}


def test_unexpected_error_is_a_json_500_without_details(runtime: Runtime) -> None:
    """A bug answers 500 in the same shape, with no internals in the body."""
    app = create_app(runtime)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with serve_in_thread(app) as server:
        answer = httpx.get(server.url + "/boom")
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal", "message": "internal error"}}


def test_healthz(client: httpx.Client) -> None:
    """No auth; database and Redis reachable."""
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "db": "ok", "redis": "ok"}


def test_healthz_reports_a_dead_redis(db_url: str, tmp_path: Path) -> None:
    """Redis unreachable: 503 naming it."""
    env = env_for(db_url, "redis://127.0.0.1:1/0", tmp_path)
    runtime = Runtime(load_settings(env))
    try:
        with serve_in_thread(create_app(runtime)) as server:
            answer = httpx.get(server.url + "/healthz")
    finally:
        runtime.close()
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "db": "ok", "redis": "unreachable"}
