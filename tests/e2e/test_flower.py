"""Flower as the Procfile runs it: basic auth or nothing, the fleet in view, task arguments ids.

The ``flower`` line of the Procfile runs as written (``sh -c``) on a free loopback port against
the real test Redis, beside one real Celery worker. Task events are on in the Celery app
(``worker_send_task_events``, ``task_send_sent_event``: :mod:`workers.app`), so Flower shows
every task with its arguments; this test sends a send task of each provider the way the feeder
does (``apply_async`` with ids), under an environment full of secrets, and reads them back.

The Redis may be shared with other stacks (other test runs use the same database): the worker
here reads a queue of its own and is named uniquely, so it neither takes their tasks nor lets
them take its own, and every assertion is about this test's worker and tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from dispatcher.db import make_engine, migrate
from dispatcher.embedded import free_port
from dispatcher.fleet import Fleet, worker_command
from dispatcher.models import Message
from dispatcher.states import CampaignState, MessageState
from tests.conftest import insert_campaign

pytestmark = pytest.mark.processes

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"
CREDENTIALS = ("user", "pw")

SECRETS = {
    "DISPATCHER_BYTEHAND_KEY": "bh-key-must-not-show-3f9a",
    "DISPATCHER_TIMETOCHAT_PASSWORD": "ttc-password-must-not-show-7c1e",
    "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET": "push-secret-must-not-show-b2d4",
    "DISPATCHER_API_TOKEN": "api-token-must-not-show-9e0f",
}

_SEND = """
import sys
import workers
from tasks.send import send_bytehand_batch, send_timetochat

queue = sys.argv[1]
print(send_timetochat.apply_async((7, 42), queue=queue).id)
print(send_bytehand_batch.apply_async((7, [42, 43]), queue=queue).id)
"""
"""The feeder's calls (:func:`tasks.send.enqueue`), to this test's queue."""


def procfile_line(name: str) -> str:
    """The command of one Procfile process, as a shell runs it."""
    for line in PROCFILE.read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise AssertionError(f"no {name!r} line in {PROCFILE}")


def environment(redis_url: str, state: Path, **extra: str) -> dict[str, str]:
    """The Procfile's environment: broker, database, secrets; no ``FLOWER_*`` of the caller's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
    database = f"sqlite:///{state / 'dispatcher.db'}"
    migrate(make_engine(database))
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        REDIS_URL=redis_url,
        DATABASE_URL=database,
        DISPATCHER_STATE_DIR=str(state),
        HOST="127.0.0.1",
        **SECRETS,
        **extra,
    )
    return env


def seed_failures(database: str) -> tuple[int, int, int]:
    """A completed campaign with one transient and one permanent failure: (campaign, ids)."""
    failures = [
        {"state": MessageState.FAILED, "error_transient": True, "last_error": "HTTP 500"},
        {"state": MessageState.FAILED, "error_transient": False, "last_error": "refused"},
    ]
    with Session(make_engine(database)) as session:
        campaign, (transient, permanent) = insert_campaign(
            session, failures, state=CampaignState.COMPLETED
        )
        session.commit()
    return campaign, transient, permanent


def wait_for(what: str, probe: Callable[[], Any], fleet: Fleet, timeout: float = 15.0) -> Any:
    """``probe()``'s first truthy value, while every process stays alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fleet.check_alive()
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def test_flower_line_refuses_to_start_without_basic_auth(redis_url: str, tmp_path: Path) -> None:
    """No ``FLOWER_BASIC_AUTH``: exit 2 with a message saying what to set, nothing served."""
    port = free_port()
    env = environment(redis_url, tmp_path, FLOWER_PORT=str(port))
    done = subprocess.run(
        ["sh", "-c", procfile_line("flower")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "FLOWER_BASIC_AUTH=user:password is required" in done.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_flower_behind_basic_auth_shows_workers_and_task_ids(
    redis_url: str, tmp_path: Path
) -> None:
    """401 without or with wrong credentials; with them, our worker and our tasks, whose
    arguments are ids and nothing else."""
    port = free_port()
    queue = f"flower-test-{uuid.uuid4().hex[:8]}"
    node = f"{queue}@127.0.0.1"
    env = environment(
        redis_url,
        tmp_path,
        FLOWER_PORT=str(port),
        FLOWER_BASIC_AUTH=":".join(CREDENTIALS),
    )
    worker = worker_command(queue)  # the Procfile's worker, on a queue and node of its own
    worker[worker.index("-Q") + 1] = queue
    worker[worker.index("-n") + 1] = node
    base = f"http://127.0.0.1:{port}"
    with Fleet(tmp_path / "logs", env) as fleet:
        fleet.env = env  # exactly this environment: no FLOWER_* of the caller's
        fleet.add("flower", ["sh", "-c", procfile_line("flower")])
        fleet.add("worker", worker)
        fleet.start_all()
        fleet.wait_http(f"{base}/healthcheck", timeout=20)
        with httpx.Client(base_url=base, timeout=5) as anonymous:
            for path in ("/api/workers", "/api/tasks", "/workers", "/tasks"):
                assert anonymous.get(path).status_code == 401, path
            for wrong in (("user", "nope"), ("nobody", "pw"), ("", "")):
                assert anonymous.get("/api/workers", auth=wrong).status_code == 401, wrong
        with httpx.Client(base_url=base, timeout=5, auth=CREDENTIALS) as flower:
            assert flower.get("/workers").status_code == 200

            def worker_listed() -> dict[str, Any] | None:
                answer = flower.get("/api/workers", params={"refresh": 1})
                assert answer.status_code == 200
                workers: dict[str, Any] = answer.json()
                return workers if node in workers else None

            workers = wait_for(f"{node} in /api/workers", worker_listed, fleet)
            assert queue in json.dumps(workers[node].get("active_queues", []))

            sent = subprocess.run(
                [sys.executable, "-c", _SEND, queue],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            ttc_id, bytehand_id = sent.stdout.split()

            def finished(task_id: str) -> Callable[[], dict[str, Any] | None]:
                def probe() -> dict[str, Any] | None:
                    answer = flower.get(f"/api/task/info/{task_id}")
                    if answer.status_code != 200:
                        return None
                    info: dict[str, Any] = answer.json()
                    return info if info.get("state") == "SUCCESS" else None

                return probe

            ttc = wait_for("the TimeToChat task done", finished(ttc_id), fleet)
            bytehand = wait_for("the ByteHand task done", finished(bytehand_id), fleet)
            assert (ttc["name"], ttc["args"], ttc["kwargs"]) == (
                "dispatcher.send_timetochat",
                "(7, 42)",
                "{}",
            )
            assert (bytehand["name"], bytehand["args"], bytehand["kwargs"]) == (
                "dispatcher.send_bytehand_batch",
                "(7, [42, 43])",
                "{}",
            )
            assert ttc["worker"] == bytehand["worker"] == node
            shown = [
                flower.get("/api/tasks", params={"workername": node}).text,
                flower.get(f"/api/task/info/{ttc_id}").text,
                flower.get(f"/api/task/info/{bytehand_id}").text,
                flower.get("/api/workers", params={"workername": node}).text,
            ]
            for name, secret in SECRETS.items():
                assert not any(secret in text for text in shown), f"{name} shown by Flower"

            # Ops retry a campaign's transient failures from Flower's API.
            campaign_id, transient, permanent = seed_failures(env["DATABASE_URL"])
            applied = flower.post(
                "/api/task/async-apply/dispatcher.retry_failed",
                json={"args": [campaign_id], "queue": queue},
            )
            assert applied.status_code == 200, applied.text
            retried = wait_for("retry_failed done", finished(applied.json()["task-id"]), fleet)
            assert retried["result"] == "1"
            with Session(make_engine(env["DATABASE_URL"])) as session:
                assert session.get(Message, transient).state == MessageState.PENDING  # type: ignore[union-attr]
                assert session.get(Message, permanent).state == MessageState.FAILED  # type: ignore[union-attr]


def test_flower_stays_on_loopback_when_host_is_public(redis_url: str, tmp_path: Path) -> None:
    """``HOST=0.0.0.0`` (webhooks exposed) leaves Flower on 127.0.0.1: it has its own
    ``FLOWER_HOST``, loopback by default."""
    import psutil

    port = free_port()
    env = environment(
        redis_url, tmp_path, FLOWER_PORT=str(port), FLOWER_BASIC_AUTH=":".join(CREDENTIALS)
    )
    env["HOST"] = "0.0.0.0"
    with Fleet(tmp_path / "logs", env) as fleet:
        fleet.add("flower", ["sh", "-c", procfile_line("flower")])
        shell = fleet.start("flower")

        def listening() -> list[str]:
            family = psutil.Process(shell.pid)
            return [
                connection.laddr.ip
                for process in (family, *family.children(recursive=True))
                for connection in process.net_connections(kind="tcp")
                if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
            ]

        addresses = wait_for("Flower listening", listening, fleet, timeout=30)
    assert addresses == ["127.0.0.1"]
