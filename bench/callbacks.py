"""ByteHand callbacks absorbed by one web process: the inbox beside today's per-request path.

For each database (SQLite, PostgreSQL), each path (``inbox``: the real app,
``dispatcher.web.asgi:app``; ``per_request``: bench/per_request_app.py, one transaction per
callback in the request) and each number of concurrent senders (8, 32), a fresh database is
seeded with submitted messages and one uvicorn process serves it; the senders, each on one
keep-alive connection on uvloop, send every message's ACCEPTED then its DELIVERED for
``--seconds``.
Reported: callbacks answered per second, p50/p99 latency, the lag from the last answer to the
moment every answered state is in the database, and the web process's CPU per callback. The
senders run in this process, on the same cores as the server (say so beside the figures).

Then, end to end (``--e2e N``, 0 to skip), once per database of ``--e2e-db``: the local stack
(embedded Redis, SQLite or a fresh PostgreSQL schema, both simulators, two workers, the web
app) sends a ByteHand campaign of N recipients with every
callback on; reported: when the last message was handed over, how long after that the last
callback was applied, and how long until every message was final (the simulator gives a few
messages no final callback; polling settles those, at the stack's 60 s polling deadline).

    .venv/bin/python bench/callbacks.py [--seconds 10] [--senders 8 32] [--db sqlite postgres]
                                        [--e2e 40000] [--e2e-db sqlite postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy
import uvloop
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procstat import cpu_seconds  # noqa: E402
from dispatcher.db import make_engine, migrate  # noqa: E402
from dispatcher.localstack import LocalStack  # noqa: E402
from dispatcher.models import Campaign, Message, StatusEvent  # noqa: E402

CLIENT_ID, KEY = "4242", "bench-bytehand-key-0123456789abcdef"
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
APPS = {"inbox": "dispatcher.web.asgi:app", "per_request": "bench.per_request_app:app"}
MESSAGES = 60_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _database(kind: str, directory: Path) -> tuple[str, Any]:
    """A fresh migrated database; its URL and a function dropping it."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        return url, lambda: None
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url, drop


def _seed(url: str, count: int) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        campaign = connection.execute(
            insert(Campaign)
            .values(
                name="bench", provider="bytehand", sender="SMSINFO", template="Hi", state="running"
            )
            .returning(Campaign.id)
        ).scalar_one()
        for start in range(0, count, 5000):
            connection.execute(
                insert(Message),
                [
                    {
                        "campaign_id": campaign, "line": n, "phone": f"+7916{n:07d}", "text": "Hi",
                        "encoding": "GSM-7", "parts": 1, "ext_ref": f"bench-{n}",
                        "state": "submitted", "provider_message_id": f"bh{n}",
                    }
                    for n in range(start, min(count, start + 5000))
                ],
            )  # fmt: skip
    engine.dispose()


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(Message.state, func.count()).group_by(Message.state))
        counts = {state: int(n) for state, n in rows}
    engine.dispose()
    return counts


def _serve(app: str, url: str, directory: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "DISPATCHER_STATE_DIR": str(directory / "state"),
        "DISPATCHER_BYTEHAND_ID": CLIENT_ID,
        "DISPATCHER_BYTEHAND_KEY": KEY,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"{app} did not start")


def _request(message: int, description: str) -> bytes:
    query = urlencode(
        {"id": CLIENT_ID, "key": KEY[-8:], "action": "outgoingStatus", "message": f"bh{message}",
         "description": description, "error_code": "0", "updated_at": "2024-03-25 14:32:25"}
    )  # fmt: skip
    return f"GET /webhooks/bytehand?{query} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def _plan(index: int, senders: int) -> list[tuple[int, str]]:
    """One sender's callbacks: ACCEPTED of message k, then DELIVERED of message k-1, ..."""
    mine = range(index, MESSAGES, senders)
    plan = [(m, "ACCEPTED") for m in mine[:1]]
    for previous, current in itertools.pairwise(mine):
        plan += [(current, "ACCEPTED"), (previous, "DELIVERED")]
    return plan


async def _sender(
    port: int,
    plan: list[tuple[int, str]],
    deadline: float,
    latencies: list[float],
    tally: dict[str, int],
) -> None:
    """One keep-alive connection sending its plan, one request at a time, until ``deadline``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for message, description in plan:
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        writer.write(_request(message, description))
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if head.startswith(b"HTTP/1.1 200"):
            tally[description] += 1
        else:
            tally["errors"] += 1
    tally["last_answer"] = max(tally.get("last_answer", 0), int(time.time() * 1e6))
    writer.close()


async def _load(
    port: int, senders: int, seconds: float
) -> tuple[list[float], dict[str, int], float]:
    latencies: list[float] = []
    tallies = [{"ACCEPTED": 0, "DELIVERED": 0, "errors": 0} for _ in range(senders)]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_sender(port, _plan(i, senders), deadline, latencies, tallies[i]) for i in range(senders))
    )
    elapsed = time.perf_counter() - started
    total = {
        key: sum(t.get(key, 0) for t in tallies) for key in ("ACCEPTED", "DELIVERED", "errors")
    }
    total["last_answer"] = max(t["last_answer"] for t in tallies)
    return latencies, total, elapsed


def _lag(url: str, total: dict[str, int], timeout: float = 120.0) -> float | None:
    """Seconds from the last answer until every answered state is in the database."""
    last_answer = total["last_answer"] / 1e6
    want_delivered = total["DELIVERED"]
    want_sent = total["ACCEPTED"] - total["DELIVERED"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = _counts(url)
        if counts.get("delivered", 0) >= want_delivered and counts.get("sent", 0) >= want_sent:
            return max(0.0, time.time() - last_answer)
        time.sleep(0.02)
    return None


def run_one(kind: str, path: str, senders: int, seconds: float, directory: Path) -> dict[str, Any]:
    url, drop = _database(kind, directory)
    try:
        _seed(url, MESSAGES)
        port = _free_port()
        server = _serve(APPS[path], url, directory, port)
        try:
            cpu_before = cpu_seconds(server.pid)
            # uvloop: the senders share the two cores with the server, so the less CPU they
            # take, the more of the server's own rate the figure shows.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                latencies, total, elapsed = runner.run(_load(port, senders, seconds))
            lag = _lag(url, total)
            cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        drop()
    answered = total["ACCEPTED"] + total["DELIVERED"] + total["errors"]
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "db": kind,
        "path": path,
        "senders": senders,
        "callbacks": answered,
        "errors": total["errors"],
        "per_s": round(answered / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "lag_s": None if lag is None else round(lag, 2),
        "server_cpu_ms_per_callback": round(cpu * 1000 / max(answered, 1), 3),
    }


def _last_callback_applied(url: str) -> datetime:
    """When the applier applied the last callback that moved a message."""
    engine = make_engine(url)
    with engine.connect() as connection:
        last = connection.execute(
            select(func.max(StatusEvent.received_at)).where(
                StatusEvent.source == "callback", StatusEvent.applied.is_(True)
            )
        ).scalar_one()
    engine.dispose()
    return last if last.tzinfo else last.replace(tzinfo=UTC)


def _events_by_source(url: str) -> dict[str, int]:
    """Which channel told us: callbacks, or polls (which start 20 s after a silent send)."""
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(StatusEvent.source, func.count()).group_by(StatusEvent.source)
        )
        counts = {source: int(n) for source, n in rows}
    engine.dispose()
    return counts


def run_e2e(directory: Path, recipients: int, kind: str) -> dict[str, Any]:
    """A ByteHand campaign through the whole local stack on the ``kind`` database; seconds to
    the last send, then to every message final."""
    from dispatcher.localstack import StackOptions
    from dispatcher.sandbox import Lifecycle

    directory.mkdir(parents=True)
    url, drop = _database(kind, directory) if kind == "postgres" else (None, lambda: None)
    options = StackOptions(workers=2, lifecycle=Lifecycle(0.2, 0.3), database_url=url)
    try:
        return _e2e_on(LocalStack(directory, options), directory, recipients, kind)
    finally:
        drop()


def _e2e_on(local_stack: LocalStack, directory: Path, recipients: int, kind: str) -> dict[str, Any]:
    """Start the stack, send the campaign and follow it until every message is final."""
    from dispatcher.demo import generate_recipients
    from dispatcher.loader import create_campaign
    from dispatcher.states import FINAL_MESSAGE_STATES

    unsent = {"pending", "queued", "sending"}
    with local_stack as stack:
        path = generate_recipients(directory / "bytehand.csv", recipients, seed=recipients)
        campaign_id = create_campaign(
            stack.runtime.engine, stack.settings, path, provider="bytehand", sender="SMSINFO",
            template="Bonjour {first_name}", name="bench callbacks",
        ).id  # fmt: skip
        started = time.monotonic()
        stack.start_campaign(campaign_id)
        last_send, last_send_at = None, datetime.now(UTC)
        deadline = started + 1800
        while time.monotonic() < deadline:
            counts = stack.report(campaign_id)["counts"]
            if last_send is None and not any(counts.get(state, 0) for state in unsent):
                last_send, last_send_at = time.monotonic(), datetime.now(UTC)
            if all(state in FINAL_MESSAGE_STATES for state, n in counts.items() if n):
                final = time.monotonic()
                break
            time.sleep(0.2)
        else:
            raise TimeoutError(f"not final after 30 min: {counts}")
        assert last_send is not None
        return {
            "database": kind,
            "recipients": recipients,
            "sent_in_s": round(last_send - started, 1),
            "final_after_last_send_s": round(final - last_send, 1),
            "last_callback_applied_after_last_send_s": round(
                (
                    _last_callback_applied(stack.settings.database_url) - last_send_at
                ).total_seconds(),
                1,
            ),
            "counts": counts,
            "events_by_source": _events_by_source(stack.settings.database_url),
            "sending": stack.bytehand.throughput(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--senders", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--paths", nargs="+", default=["inbox", "per_request"])
    parser.add_argument("--e2e", type=int, default=40_000, help="recipients; 0: skip")
    parser.add_argument("--e2e-db", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db:
            for path in args.paths:
                for senders in args.senders:
                    runs.append(run_one(kind, path, senders, args.seconds, Path(tmp)))
                    print(json.dumps(runs[-1]), file=sys.stderr)
        e2e = [
            run_e2e(Path(tmp) / f"e2e-{kind}", args.e2e, kind)
            for kind in (args.e2e_db if args.e2e else [])
        ]
    ratios = {
        f"{r['db']}/{r['senders']}": round(r["per_s"] / b["per_s"], 1)
        for r in runs
        for b in runs
        if r["path"] == "inbox" and b["path"] == "per_request"
        and (b["db"], b["senders"]) == (r["db"], r["senders"])
    }  # fmt: skip
    print(
        json.dumps(
            {
                "load_average": Path("/proc/loadavg").read_text().split()[:3],
                "cpus": os.cpu_count(),
                "seconds_per_run": args.seconds,
                "runs": runs,
                "inbox_over_per_request": ratios,
                "end_to_end_bytehand": e2e,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
