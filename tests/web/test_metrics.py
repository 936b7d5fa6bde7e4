"""``GET /metrics``: behind the API token unless public, figures read from the database and
Redis at scrape time, webhook calls counted by our answer."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.runtime import Runtime
from dispatcher.sandbox.server import serve_in_thread
from dispatcher.web import create_app
from tests.web.helpers import API_TOKEN, BYTEHAND_ID, BYTEHAND_KEY, WEBHOOK_SECRET, add_campaign


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(api: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = api.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


def test_metrics_need_the_api_token(client: httpx.Client) -> None:
    """Without the bearer token the metrics answer 401; with it, 200."""
    assert client.get("/metrics").status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200


@pytest.fixture
def public_client(runtime: Runtime) -> Iterator[httpx.Client]:
    """The app with ``DISPATCHER_METRICS_PUBLIC=true``, no auth header."""
    settings = dataclasses.replace(runtime.settings, metrics_public=True)
    public = Runtime(settings)
    with serve_in_thread(create_app(public)) as server, httpx.Client(base_url=server.url) as http:
        yield http
    public.close()


def test_public_metrics_need_no_token(public_client: httpx.Client) -> None:
    """With DISPATCHER_METRICS_PUBLIC=true a scraper without the token is served."""
    assert public_client.get("/metrics").status_code == 200
    assert public_client.get("/campaigns").status_code == 401


def test_gauges_count_the_database(api: httpx.Client, runtime: Runtime) -> None:
    """Messages by provider and state, in-doubt and campaigns by state, as stored now."""
    add_campaign(runtime, messages=[("in_doubt", None), ("in_doubt", None), ("delivered", "1")])
    add_campaign(runtime, provider="timetochat", state="paused", messages=[("pending", None)])
    figures = scrape(api)
    bh = ("provider", "bytehand")
    assert figures[("dispatcher_in_doubt", (bh,))] == 2
    assert figures[("dispatcher_in_doubt", (("provider", "timetochat"),))] == 0
    assert figures[("dispatcher_messages", (bh, ("state", "delivered")))] == 1
    assert figures[("dispatcher_messages", (("provider", "timetochat"), ("state", "pending")))] == 1
    assert figures[("dispatcher_campaigns", (("state", "running"),))] == 1
    assert figures[("dispatcher_campaigns", (("state", "paused"),))] == 1
    assert figures[("dispatcher_campaigns", (("state", "draft"),))] == 0


def test_queue_length_reads_the_broker(api: httpx.Client, redis_client: redis.Redis) -> None:
    """Task messages waiting in a queue's Redis lists, priority lists included."""
    redis_client.rpush("send.bytehand", "a", "b")
    redis_client.rpush("send.bytehand\x06\x163", "c")
    figures = scrape(api)
    assert figures[("dispatcher_queue_length", (("queue", "send.bytehand"),))] == 3
    assert figures[("dispatcher_queue_length", (("queue", "status"),))] == 0


def test_no_queue_length_when_the_broker_is_elsewhere(
    runtime: Runtime, redis_client: redis.Redis
) -> None:
    """With ``BROKER_URL`` (RabbitMQ) the Redis lists are not the queues: no length is shown."""
    redis_client.rpush("send.bytehand", "a")
    settings = dataclasses.replace(
        runtime.settings, broker_url="amqp://guest:guest@127.0.0.1:5672//", metrics_public=True
    )
    elsewhere = Runtime(settings)
    with (
        serve_in_thread(create_app(elsewhere)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        figures = scrape(http)
    elsewhere.close()
    assert not [key for key in figures if key[0] == "dispatcher_queue_length"]
    assert ("dispatcher_campaigns", (("state", "running"),)) in figures


def test_callbacks_counted_by_answer(api: httpx.Client, redis_client: redis.Redis) -> None:
    """Webhook calls counted per provider: accepted, refused (bad credentials), malformed."""
    good = {"id": BYTEHAND_ID, "key": BYTEHAND_KEY[-8:], "action": "outgoingStatus"}
    status = {"message": "x", "description": "DELIVERED", "error_code": "0"}
    api.get("/webhooks/bytehand", params={**good, **status, "updated_at": "2024-03-25 14:32:25"})
    api.get("/webhooks/bytehand", params={**good, "key": "wrong-key"})
    api.get("/webhooks/bytehand", params=good)
    api.post("/webhooks/timetochat/not-the-secret", json=[])
    api.post(f"/webhooks/timetochat/{WEBHOOK_SECRET}", content=b"{")
    figures = scrape(api)

    def count(provider: str, result: str) -> float:
        key = ("dispatcher_callbacks_total", (("provider", provider), ("result", result)))
        return figures.get(key, 0)

    assert count("bytehand", "accepted") == 1
    assert count("bytehand", "refused") == 1
    assert count("bytehand", "malformed") == 1
    assert count("timetochat", "refused") == 1
    assert count("timetochat", "malformed") == 1


def test_limiter_wait_histogram_is_exposed(
    api: httpx.Client, runtime: Runtime, redis_client: redis.Redis
) -> None:
    """The limiter's waits appear as a histogram per provider, even before any call."""
    runtime.meter.limiter_wait("bytehand", 0.03)
    figures = scrape(api)
    bh = ("provider", "bytehand")
    assert figures[("dispatcher_limiter_wait_seconds_count", (bh,))] == 1
    assert figures[("dispatcher_limiter_wait_seconds_bucket", (("le", "0.05"), bh))] == 1
    assert figures[("dispatcher_limiter_wait_seconds_bucket", (("le", "0.025"), bh))] == 0
    tc = ("provider", "timetochat")
    assert figures[("dispatcher_limiter_wait_seconds_count", (tc,))] == 0


def test_alert_rules_use_only_exposed_metrics(api: httpx.Client, redis_client: redis.Redis) -> None:
    """Every metric the alert rules of docs/operations.md query is one /metrics serves."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    [rules] = re.findall(r"```yaml\n(groups:.*?)```", doc, re.DOTALL)
    exprs = [rule["expr"] for group in yaml.safe_load(rules)["groups"] for rule in group["rules"]]
    queried = {name for expr in exprs for name in re.findall(r"\b(?:dispatcher|celery)_\w+", expr)}
    answer = api.get("/metrics")  # on an empty fleet: families with no sample count too
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    served = {
        family.name + suffix
        for family in text_string_to_metric_families(answer.text)
        for suffix in ("", *suffixes.get(family.type, ()))
    }
    assert len(exprs) >= 5
    assert queried <= served, queried - served
