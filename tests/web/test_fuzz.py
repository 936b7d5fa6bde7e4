"""Arbitrary input to the webhooks and the API never yields a 500 (real HTTP, real DB)."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.runtime import Runtime
from tests.web.helpers import BYTEHAND_ID, BYTEHAND_KEY, SERVICE_ID, WEBHOOK_SECRET, add_campaign

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ALLOWED = {200, 201, 400, 401, 403, 404, 409, 413, 415, 422}

texts = st.text(max_size=60)
ids = st.sampled_from(["bh-1", "ttc-1", "c1-1", "", "x" * 70]) | texts
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=15,
)
dates = (
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    | st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "2024-03-25"])
    | texts
)


def _seed(runtime: Runtime) -> None:
    add_campaign(runtime, provider="bytehand", messages=[("submitted", "bh-1")])
    add_campaign(runtime, provider="timetochat", messages=[("in_doubt", "ttc-1")])


bytehand_queries = st.fixed_dictionaries(
    {
        "id": st.just(BYTEHAND_ID) | texts,
        "key": st.just(BYTEHAND_KEY[-8:]) | texts,
        "action": st.sampled_from(["outgoingStatus", "incomingSms", "ussd"]) | texts,
    },
    optional={
        "message": ids,
        "description": st.sampled_from(["DELIVERED", "ACCEPTED", "NEW"]) | texts,
        "error_code": st.integers().map(str) | texts,
        "updated_at": st.just("2024-03-25 14:32:25") | texts,
        "posted_at": st.just("2024-03-25 14:32:25") | texts,
        "to": texts,
        "from": texts,
        "text": texts,
    },
)


@FUZZ
@given(query=bytehand_queries, extra=st.dictionaries(texts, texts, max_size=3))
def test_bytehand_callback_never_500(
    client: httpx.Client, runtime: Runtime, query: dict[str, str], extra: dict[str, str]
) -> None:
    """Any query string: 200, 400 or 403."""
    if not runtime.__dict__.get("_seeded"):
        _seed(runtime)
        runtime.__dict__["_seeded"] = True
    answer = client.get("/webhooks/bytehand", params={**extra, **query})
    assert answer.status_code in {200, 400, 403}, answer.text


push_items = st.fixed_dictionaries(
    {},
    optional={
        "to": texts | json_values,
        "from": texts,
        "date": dates,
        "call_id": ids | json_values,
        "ref_externe": ids,
        "status": st.sampled_from(["SENT", "RECEIVED", "ERROR", "INCOMING", "ANSWERED"]) | texts,
        "status_list": st.lists(st.dictionaries(texts, json_values, max_size=3), max_size=2)
        | json_values,
        "info": texts | json_values,
    },
)
push_bodies = st.one_of(
    st.builds(
        lambda username, sms: {"status_report": {"username": username, "sms": sms}},
        st.just(SERVICE_ID) | texts,
        st.lists(push_items, max_size=3) | json_values,
    ),
    json_values,
)


@FUZZ
@given(body=push_bodies, secret=st.just(WEBHOOK_SECRET) | st.text(min_size=1, max_size=20))
def test_push_cra_never_500(client: httpx.Client, runtime: Runtime, body: Any, secret: str) -> None:
    """Any JSON to any secret path: 200, 400 or 403 (404 for paths the router cannot match)."""
    if not runtime.__dict__.get("_seeded"):
        _seed(runtime)
        runtime.__dict__["_seeded"] = True
    answer = client.post("/webhooks/timetochat/" + quote(secret, safe=""), json=body)
    # 307: the router's redirect of a path ending in "/" (a decoded %2F) to the one without.
    assert answer.status_code in {200, 307, 400, 403, 404, 405}, answer.text


@FUZZ
@given(raw=st.binary(max_size=200))
def test_push_cra_raw_bytes_never_500(client: httpx.Client, raw: bytes) -> None:
    """Arbitrary bytes as a Push_CRA body: never a 500."""
    answer = client.post(f"/webhooks/timetochat/{WEBHOOK_SECRET}", content=raw)
    assert answer.status_code in {200, 400, 403}, answer.text


@FUZZ
@given(
    campaign=st.integers(min_value=-(2**70), max_value=2**70).map(str) | texts,
    params=st.dictionaries(
        st.sampled_from(["state", "limit", "offset", "x"]), texts | st.integers().map(str)
    ),
    route=st.sampled_from(["", "/messages", "/in-doubt"]),
)
def test_api_reads_never_500(
    api: httpx.Client, campaign: str, params: dict[str, str], route: str
) -> None:
    """Any id and query on the read routes: a 4xx or 200."""
    answer = api.get("/campaigns/" + quote(campaign, safe="") + route, params=params)
    # 307: FastAPI's redirect of "/campaigns/" to "/campaigns".
    assert answer.status_code in ALLOWED | {307}, answer.text
    assert answer.status_code < 400 or "error" in answer.json()


@FUZZ
@given(body=json_values, action=st.sampled_from(["start", "pause", "resolve-in-doubt"]))
def test_api_writes_never_500(api: httpx.Client, runtime: Runtime, body: Any, action: str) -> None:
    """Any JSON to the lifecycle routes: a 4xx or 200."""
    if not runtime.__dict__.get("_seeded"):
        _seed(runtime)
        runtime.__dict__["_seeded"] = True
    answer = api.post(f"/campaigns/1/{action}", json=body)
    assert answer.status_code in ALLOWED, answer.text


@FUZZ
@given(fields=st.dictionaries(texts, texts, max_size=6), content=st.binary(max_size=300))
def test_upload_never_500(api: httpx.Client, fields: dict[str, str], content: bytes) -> None:
    """Any form fields and file bytes: a 4xx or 201."""
    answer = api.post("/campaigns", data=fields, files={"file": ("f.csv", content)})
    assert answer.status_code in ALLOWED, answer.text
