"""Callbacks refused for their credentials: one WARNING per cause, saying why, no secret."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from dispatcher.config import load_settings
from dispatcher.runtime import Runtime
from dispatcher.sandbox.server import serve_in_thread
from dispatcher.web import create_app
from tests.conftest import sqlite_url
from tests.web.helpers import env_for


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "refused" in r.getMessage()
    ]


def _serve(tmp_path: Path, redis_url: str, **overrides: str) -> Runtime:
    return Runtime(load_settings(env_for(sqlite_url(tmp_path), redis_url, tmp_path, **overrides)))


def test_refused_callbacks_log_one_warning_with_the_cause(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Five posts with a guessed secret: one WARNING naming the cause, not the guess."""
    runtime = _serve(tmp_path, redis_url)
    caplog.set_level(logging.WARNING)
    with serve_in_thread(create_app(runtime)) as server, httpx.Client(base_url=server.url) as http:
        for _ in range(5):
            assert http.post("/webhooks/timetochat/guessed-1234", json={}).status_code == 403
    runtime.close()
    [line] = _refusals(caplog)
    assert "timetochat callback refused (403): wrong webhook secret in the URL" in line
    assert "guessed-1234" not in line


def test_unset_credentials_are_named_as_the_cause(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With no webhook secret or ByteHand key configured, the WARNING says which is unset."""
    runtime = _serve(
        tmp_path,
        redis_url,
        DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET="",
        DISPATCHER_BYTEHAND_KEY="",
    )
    caplog.set_level(logging.WARNING)
    with serve_in_thread(create_app(runtime)) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/webhooks/timetochat/anything", json={}).status_code == 403
        assert http.get("/webhooks/bytehand", params={"id": "1", "key": "k"}).status_code == 403
    runtime.close()
    assert sorted(_refusals(caplog)) == [
        "bytehand callback refused (403): DISPATCHER_BYTEHAND_ID or _KEY is unset: every one is "
        "refused; from 127.0.0.1",
        "timetochat callback refused (403): DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET is unset: every "
        "one is refused; from 127.0.0.1",
    ]
