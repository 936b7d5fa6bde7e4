"""``/metrics`` scraped during a real campaign run by two worker processes: the fleet's counters
add up to what the simulators themselves counted."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.demo import generate_recipients
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack

pytestmark = pytest.mark.slow


def _scrape(stack: LocalStack) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    answer = httpx.get(
        f"http://127.0.0.1:{stack.web_port}/metrics",
        headers={"Authorization": f"Bearer {stack.api_token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    figures: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            figures[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return figures


def _total(samples: dict[tuple[tuple[str, str], ...], float], **match: str) -> float:
    return sum(
        value
        for labels, value in samples.items()
        if all(dict(labels).get(k) == v for k, v in match.items())
    )


def _simulator(stack: LocalStack, provider: str) -> dict[str, Any]:
    remote = stack.bytehand if provider == "bytehand" else stack.timetochat
    answer = remote.http.get(f"{remote.url}/_control/stats")
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


def _mismatches(stack: LocalStack) -> list[str]:
    """What differs between our counters and the simulators' (empty: they agree)."""
    figures = _scrape(stack)
    calls = figures["dispatcher_provider_calls_total"]
    callbacks = figures["dispatcher_callbacks_total"]
    wrong = []
    for provider in ("bytehand", "timetochat"):
        simulator = _simulator(stack, provider)
        [account] = simulator["accounts"].values()
        received = account["calls_served"] + account["rate_limited"]
        reached = _total(calls, provider=provider) - _total(
            calls, provider=provider, outcome="unavailable"
        )
        if reached != received:
            wrong.append(f"{provider}: we counted {reached} calls, it received {received}")
        throttled = _total(calls, provider=provider, outcome="throttled")
        if throttled != account["rate_limited"]:
            wrong.append(f"{provider}: {throttled} throttled, it refused {account['rate_limited']}")
        sent = simulator["callbacks"]
        answered = _total(callbacks, provider=provider)
        if (
            answered != sent["attempts"]
            or _total(callbacks, provider=provider, result="accepted") != sent["delivered"]
        ):
            wrong.append(f"{provider}: callbacks {dict(callbacks)} vs simulator {sent}")
    return wrong


def test_metrics_add_up_across_two_workers(
    stack_factory: Callable[..., LocalStack], tmp_path: Path
) -> None:
    """Provider calls, throttles and callbacks summed over two worker processes and the web
    app equal the simulators' counts; task counters and gauges follow the campaign."""
    stack = stack_factory(workers=2)
    ids = []
    for provider, size, sender in (
        ("bytehand", 600, "SMSINFO"),
        ("timetochat", 120, TIMETOCHAT_ACCOUNT.senders[0]),
    ):
        path = generate_recipients(tmp_path / f"{provider}.csv", size, seed=7)
        summary = create_campaign(
            stack.runtime.engine,
            stack.settings,
            path,
            provider=provider,
            sender=sender,
            template="Bonjour {first_name} !",
            name=f"metrics {provider}",
        )
        ids.append(summary.id)
        stack.start_campaign(summary.id)

    during = _scrape(stack)
    deadline = time.monotonic() + 60
    while _total(during["dispatcher_provider_calls_total"], kind="send") == 0:
        assert time.monotonic() < deadline, "no send counted while the campaigns ran"
        time.sleep(0.5)
        during = _scrape(stack)
    assert _total(during["dispatcher_campaigns"], state="running") >= 1

    stack.wait_done(ids, timeout=150)
    deadline = time.monotonic() + 20  # late callbacks (duplicates, retries) may still arrive
    while wrong := _mismatches(stack):
        assert time.monotonic() < deadline, wrong
        time.sleep(1)

    after = _scrape(stack)
    bytehand_messages, timetochat_messages = (
        sum(stack.report(cid)["counts"].values()) for cid in ids
    )
    sends = _total(after["celery_task_succeeded_total"], name="dispatcher.send_timetochat")
    # One unit send task per recipient at least: a send that finds its account's budget spent
    # hands its recipient back, to be fed again (dispatcher.fairshare); the provider calls
    # themselves add up exactly (_mismatches, above).
    assert sends >= timetochat_messages
    assert _total(after["celery_task_sent_total"], name="dispatcher.tick") > 0
    assert _total(after["celery_task_received_total"], name="dispatcher.tick") > 0
    assert _total(after["celery_task_started_total"], name="dispatcher.tick") > 0
    assert _total(after["celery_task_succeeded_total"], name="dispatcher.send_bytehand_batch") > 0
    assert _total(after["dispatcher_limiter_wait_seconds_count"], provider="bytehand") > 0
    messages = after["dispatcher_messages"]
    assert _total(messages, provider="bytehand") == bytehand_messages
    assert _total(messages, provider="timetochat", state="delivered") > 0
    assert _total(after["dispatcher_in_doubt"]) == 0
    assert _total(after["dispatcher_campaigns"], state="completed") == 2
