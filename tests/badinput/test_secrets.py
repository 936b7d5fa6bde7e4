"""Secrets never leak: a real campaign at DEBUG, then every byte it wrote is searched.

Also: production configuration refuses to start without its secrets, and the Procfile's Flower
line refuses to start without basic auth.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from dispatcher.config import load_settings
from dispatcher.constants import token_key
from dispatcher.demo import generate_recipients
from dispatcher.errors import ConfigError
from dispatcher.export import export_messages
from dispatcher.loader import create_campaign
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack, StackOptions
from dispatcher.logs import install_log_redaction

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = (
    "DISPATCHER_API_TOKEN",
    "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET",
    "DISPATCHER_BYTEHAND_KEY",
    "DISPATCHER_TIMETOCHAT_PASSWORD",
)


def _redis_dump(client: redis.Redis, skip: set[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """Every key of the database with its value(s) as bytes (lists, hashes, sets, zsets)."""
    for key in client.scan_iter(count=1000):
        if key in skip:
            continue
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [b"%s=%s" % pair for pair in client.hgetall(key).items()]
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        else:
            values = [kind]
        for value in values:
            yield key, value


def _wait_reported(stack: LocalStack, campaign_ids: list[int], timeout: float = 25) -> None:
    """Until every message was sent and most have a delivery report (callbacks ran)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = [stack.report(cid)["counts"] for cid in campaign_ids]
        unsent = sum(c.get(s, 0) for c in counts for s in ("pending", "queued", "sending"))
        if not unsent and all(c.get("delivered", 0) >= 40 for c in counts):
            return
        time.sleep(0.3)
    raise TimeoutError(f"campaigns not reported after {timeout} s: {counts}")


@pytest.mark.processes
def test_a_debug_campaign_writes_no_secret(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both providers, DEBUG in every process: logs, database, export and Redis hold no secret."""
    monkeypatch.setenv("DISPATCHER_LOG_LEVEL", "DEBUG")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    directory = tmp_path / "stack"
    with LocalStack(directory, StackOptions(redis_url=redis_url)) as stack:
        ids = {}
        for provider, sender in (
            ("bytehand", "SMSINFO"),
            ("timetochat", TIMETOCHAT_ACCOUNT.senders[0]),
        ):
            path = generate_recipients(tmp_path / f"{provider}.csv", 50, seed=len(provider))
            ids[provider] = create_campaign(
                stack.runtime.engine,
                stack.settings,
                path,
                provider=provider,
                sender=sender,
                template="Bonjour {first_name} !",
            ).id
        # The API and the console see their token; a callback sees the webhook secret.
        web = f"http://127.0.0.1:{stack.web_port}"
        bearer = {"Authorization": f"Bearer {stack.api_token}"}
        assert httpx.get(f"{web}/campaigns", headers=bearer).status_code == 200
        signed_in = httpx.post(f"{web}/console/sign-in", data={"token": stack.api_token})
        assert signed_in.status_code == 303
        for campaign_id in ids.values():
            stack.start_campaign(campaign_id)
        _wait_reported(stack, list(ids.values()))
        tokens = {client.get(token_key(TIMETOCHAT_ACCOUNT.service_id))}
        assert tokens != {None}, "TimeToChat was never called with a token"
        secrets = {name: stack.env[name].encode() for name in SECRET_NAMES}
        secrets |= {f"token {n}": t for n, t in enumerate(tokens) if t is not None}
        for provider, campaign_id in ids.items():
            export_messages(stack.runtime.engine, campaign_id, directory / f"{provider}.csv")
        # The token cache is where the fleet shares the token by design; nothing else may.
        skip = {token_key(TIMETOCHAT_ACCOUNT.service_id).encode()}
        stored = list(_redis_dump(client, skip))
    logs = list((directory / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"web", "worker0", "beat", "sandbox-bytehand"}
    assert b"DEBUG" in (directory / "logs" / "worker0.log").read_bytes()
    assert b"HTTP Request" in (directory / "logs" / "worker0.log").read_bytes()
    leaks = []
    # sandbox/ is the simulated providers' own account store: they hold the credentials.
    files = [p for p in directory.rglob("*") if p.is_file() and p.parent != directory / "sandbox"]
    assert directory / "dispatcher.db" in files
    for name, secret in secrets.items():
        leaks += [
            f"{name} in {p.relative_to(directory)}" for p in files if secret in p.read_bytes()
        ]
        leaks += [f"{name} in Redis key {k!r}" for k, v in stored if secret in k or secret in v]
    assert not leaks
    client.flushdb()
    client.close()


def test_httpx_url_objects_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """httpx logs the request URL as an object, not a str: its ``key=`` is still hidden."""
    install_log_redaction()
    url = httpx.URL("https://bytehand.example/v2/sms?id=1&key=s3cr3t-key")
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "GET", url, "200 OK")
        logging.getLogger("httpcore.http11").info("request %s", url)
    assert caplog.messages and all("s3cr3t" not in m for m in caplog.messages)
    assert "key=***" in caplog.messages[0]


def test_exception_text_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """A traceback quoting a URL (httpx.HTTPStatusError does) is redacted too."""
    install_log_redaction()
    try:
        raise RuntimeError("failed: /webhooks/timetochat/s3cr3t-path?key=s3cr3t")
    except RuntimeError:
        logging.getLogger("dispatcher.test").exception("boom")
    assert "s3cr3t" not in caplog.text


def test_log_level_setting() -> None:
    """DISPATCHER_LOG_LEVEL is read, upper-cased and validated; unset means None."""
    assert load_settings({}).log_level is None
    assert load_settings({"DISPATCHER_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(ConfigError, match="DISPATCHER_LOG_LEVEL"):
        load_settings({"DISPATCHER_LOG_LEVEL": "chatty"})


def test_production_config_names_every_missing_secret() -> None:
    """The production example refuses to load without secrets, naming each missing one."""
    production = {"DISPATCHER_CONFIG": str(PROJECT_ROOT / "configs/production.example.toml")}
    with pytest.raises(ConfigError) as raised:
        load_settings(production)
    assert all(name in str(raised.value) for name in SECRET_NAMES)
    some = {**production, "DISPATCHER_API_TOKEN": "t", "DISPATCHER_BYTEHAND_KEY": "k"}
    with pytest.raises(ConfigError) as raised:
        load_settings(some)
    message = str(raised.value)
    assert "DISPATCHER_TIMETOCHAT_PASSWORD" in message and "DISPATCHER_API_TOKEN" not in message
    assert "'t'" not in message and "'k'" not in message
    every = {**production, **dict.fromkeys(SECRET_NAMES, "x")}
    assert load_settings(every).api_token
    assert load_settings({}).api_token.reveal() == ""  # the laptop default still needs none


def _procfile_line(name: str) -> str:
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.partition(":")[2].strip()
    raise AssertionError(f"no {name} line in the Procfile")


def test_flower_refuses_to_start_without_basic_auth(tmp_path: Path) -> None:
    """The Procfile's flower line exits 2 before running Celery when FLOWER_BASIC_AUTH is unset."""
    command = _procfile_line("flower")
    assert "FLOWER_BASIC_AUTH" in command.split(";")[0]
    # A fake celery first on PATH records whether it ran; the guard must stop before it.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "celery").write_text(f"#!/bin/sh\ntouch {shlex.quote(str(tmp_path / 'ran'))}\n")
    (fake / "celery").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    refused = subprocess.run(["bash", "-c", command], env=env, capture_output=True, check=False)
    assert refused.returncode == 2 and b"FLOWER_BASIC_AUTH" in refused.stderr
    assert not (tmp_path / "ran").exists()
    allowed = subprocess.run(
        ["bash", "-c", command], env={**env, "FLOWER_BASIC_AUTH": "u:p"}, check=False
    )
    assert allowed.returncode == 0 and (tmp_path / "ran").exists()


def test_secret_shapes_are_redacted() -> None:
    """The shapes secrets travel in; ordinary text is untouched."""
    from dispatcher.logs import redact

    line = "GET /webhooks/bytehand?id=1&key=abc&x=2 /webhooks/timetochat/zz?token=t 'q'"
    assert re.findall(r"\*\*\*", redact(line)) == ["***"] * 3
    assert redact("/campaigns?limit=1") == "/campaigns?limit=1"
