"""Everything on one machine: Redis, database, both simulators, workers, beat and the web app.

The demo, the end-to-end and fault tests and the benchmarks all run campaigns through this one
stack, so what they measure is what ``make demo`` shows. The simulators run as their own
process (like real providers), the fleet as real OS processes with the
Procfile's command lines; the ledgers are read through the simulators' control endpoints.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from dispatcher import campaigns
from dispatcher.config import Settings, load_settings
from dispatcher.db import migrate, session_scope
from dispatcher.embedded import EmbeddedRedis, free_port
from dispatcher.fleet import WORKER_THREADS, Fleet, beat_command, web_command, worker_command
from dispatcher.models import utcnow
from dispatcher.runtime import Runtime
from dispatcher.sandbox import ByteHandAccount, Faults, Lifecycle, TimeToChatAccount
from dispatcher.sandbox.remote import RemoteSandbox
from dispatcher.states import FINAL_MESSAGE_STATES, CampaignState

__all__ = ["LocalStack", "StackOptions"]

BYTEHAND_ACCOUNT = ByteHandAccount()
TIMETOCHAT_ACCOUNT = TimeToChatAccount()


@dataclasses.dataclass(frozen=True)
class StackOptions:
    """What to run. ``redis_url``/``database_url`` None: the embedded Redis and SQLite."""

    workers: int = 2
    concurrency: int = WORKER_THREADS
    beat: bool = True
    redis_url: str | None = None
    broker_url: str | None = None
    """``BROKER_URL`` of every process (RabbitMQ); ``None``: the broker is the Redis."""
    database_url: str | None = None
    lifecycle: Lifecycle = Lifecycle(sent_after_s=0.3, final_after_s=0.7)
    faults: Faults = Faults()
    token_lifetime_s: float = 1800.0
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra environment for every process (e.g. the SMPP transport's settings)."""
    timetochat: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Extra ``[timetochat]`` settings."""
    callbacks: bool = False
    """Aim the simulators' callbacks (ByteHand handler, TimeToChat Push_CRA) at the stack's
    web process; without them statuses come from polls and MOs never arrive."""
    dispatch: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: {
            "poll_after_s": 20,
            "poll_max_interval_s": 20,
            "poll_deadline_s": 60,
            "sending_timeout_s": 30,
            "queued_timeout_s": 60,
            "http_read_timeout_s": 5,
        }
    )


def _toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {value!r}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


class LocalStack:
    """Start with ``with LocalStack(directory, options) as stack:``; all stopped on exit."""

    def __init__(self, directory: Path, options: StackOptions | None = None) -> None:
        self.directory = directory
        self.options = options or StackOptions()
        self.web_port = free_port()
        self.webhook_secret = secrets.token_urlsafe(16)
        self.api_token = secrets.token_urlsafe(16)
        self._redis: EmbeddedRedis | None = None
        self.env: dict[str, str] = {}
        self.fleet = Fleet(directory / "logs", {})

    # -- start and stop -------------------------------------------------------------------

    def _simulator_command(self, provider: str, port: int) -> list[str]:
        web = f"http://127.0.0.1:{self.web_port}"
        options, lifecycle = self.options, self.options.lifecycle
        return [
            sys.executable, "-m", "dispatcher", "sandbox", "--only", provider,
            f"--{provider}-port", str(port),
            "--callback-url-bytehand", f"{web}/webhooks/bytehand",
            "--callback-url-timetochat", f"{web}/webhooks/timetochat/{self.webhook_secret}",
            "--sent-after-s", str(lifecycle.sent_after_s),
            "--final-after-s", str(lifecycle.final_after_s),
            "--token-lifetime-s", str(options.token_lifetime_s),
            "--accounts", str(self._accounts_file()),
        ]  # fmt: skip

    def _accounts_file(self) -> Path:
        """The default sandbox accounts, with a ByteHand balance no benchmark can exhaust.

        Kept under ``sandbox/``: the providers' side, which holds these credentials by nature.
        """
        path = self.directory / "sandbox" / "accounts.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        bytehand = {
            "client_id": BYTEHAND_ACCOUNT.client_id,
            "key": BYTEHAND_ACCOUNT.key,
            "signatures": [s.text for s in BYTEHAND_ACCOUNT.signatures if s.state == "ACCEPTED"],
            "balance": "1000000000",
        }
        timetochat = {
            "service_id": TIMETOCHAT_ACCOUNT.service_id,
            "password": TIMETOCHAT_ACCOUNT.password,
            "senders": list(TIMETOCHAT_ACCOUNT.senders),
        }
        if self.options.callbacks:
            web = f"http://127.0.0.1:{self.web_port}/webhooks"
            bytehand["callback_url"] = f"{web}/bytehand"
            timetochat["push_url"] = f"{web}/timetochat/{self.webhook_secret}"
        path.write_text(json.dumps({"bytehand": [bytehand], "timetochat": [timetochat]}))
        return path

    def _start_simulators(self) -> tuple[str, str]:
        """Each simulator in its own process, like real providers; faults set at once."""
        bytehand_port, timetochat_port = free_port(), free_port()
        for provider, port in (("bytehand", bytehand_port), ("timetochat", timetochat_port)):
            self.fleet.add(f"sandbox-{provider}", self._simulator_command(provider, port))
            self.fleet.start(f"sandbox-{provider}")
        bytehand_url = f"http://127.0.0.1:{bytehand_port}"
        timetochat_url = f"http://127.0.0.1:{timetochat_port}"
        self.bytehand = RemoteSandbox(bytehand_url)
        self.timetochat = RemoteSandbox(timetochat_url)
        faults = {k: v for k, v in vars(self.options.faults).items() if v != getattr(Faults(), k)}
        for url, remote in ((bytehand_url, self.bytehand), (timetochat_url, self.timetochat)):
            self.fleet.wait_http(f"{url}/_control/stats")
            if faults:
                remote.set_faults(**faults)
        return bytehand_url, f"{timetochat_url}/mug/api/V1"

    def start(self) -> LocalStack:
        self.directory.mkdir(parents=True, exist_ok=True)
        redis_url = self.options.redis_url
        if redis_url is None:
            self._redis = EmbeddedRedis(self.directory / "redis")
            self._redis.start()
            redis_url = self._redis.url
        self.fleet = Fleet(self.directory / "logs", {})
        bytehand_url, timetochat_url = self._start_simulators()
        config = self.directory / "dispatcher.toml"
        tables: dict[str, Mapping[str, Any]] = {"dispatch": self.options.dispatch}
        if self.options.timetochat:
            tables["timetochat"] = self.options.timetochat
        config.write_text(_toml(tables))
        self.env = {
            "DISPATCHER_CONFIG": str(config),
            "DISPATCHER_STATE_DIR": str(self.directory),
            "REDIS_URL": redis_url,
            **({"BROKER_URL": self.options.broker_url} if self.options.broker_url else {}),
            "DATABASE_URL": self.options.database_url
            or f"sqlite:///{self.directory / 'dispatcher.db'}",
            "DISPATCHER_BYTEHAND_URL": bytehand_url,
            "DISPATCHER_BYTEHAND_ID": BYTEHAND_ACCOUNT.client_id,
            "DISPATCHER_BYTEHAND_KEY": BYTEHAND_ACCOUNT.key,
            "DISPATCHER_TIMETOCHAT_URL": timetochat_url,
            "DISPATCHER_TIMETOCHAT_SERVICE_ID": TIMETOCHAT_ACCOUNT.service_id,
            "DISPATCHER_TIMETOCHAT_PASSWORD": TIMETOCHAT_ACCOUNT.password,
            "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET": self.webhook_secret,
            "DISPATCHER_API_TOKEN": self.api_token,
            **self.options.env,
        }
        self.settings: Settings = load_settings(self.env)
        self.runtime = Runtime(self.settings)
        migrate(self.runtime.engine)
        self.fleet.env.update(self.env)
        self.fleet.add("web", web_command(self.web_port))
        for index in range(self.options.workers):
            self.fleet.add(
                f"worker{index}", worker_command(f"w{index}", concurrency=self.options.concurrency)
            )
        if self.options.beat:
            self.fleet.add("beat", beat_command(self.directory / "beat-schedule"))
        for name in self.fleet.commands:
            if not name.startswith("sandbox"):
                self.fleet.start(name)
        self.fleet.wait_http(f"http://127.0.0.1:{self.web_port}/healthz")
        return self

    def stop(self) -> None:
        self.fleet.stop_all()
        if "runtime" in vars(self):
            self.runtime.close()
        if self._redis is not None:
            self._redis.stop()

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- campaigns --------------------------------------------------------------------------

    def start_campaign(self, campaign_id: int) -> None:
        """Start now; the next beat tick (within a second) begins feeding."""
        with session_scope(self.runtime.sessions) as session:
            campaigns.start(session, campaign_id, utcnow())

    def report(self, campaign_id: int) -> dict[str, Any]:
        with session_scope(self.runtime.sessions) as session:
            return campaigns.report(session, campaign_id)

    def restart_redis(self, down_s: float) -> None:
        """Stop the stack's own Redis (losing every broker message and limiter window) and
        start it again on the same port ``down_s`` later."""
        if self._redis is None:
            raise RuntimeError("restart_redis needs the stack's own Redis (redis_url=None)")
        self._redis.stop()
        time.sleep(down_s)
        self._redis.start()

    def unsettled(self, campaign_id: int) -> int:
        """Messages neither final nor in doubt: work still in the pipeline."""
        counts = self.report(campaign_id)["counts"]
        return sum(n for s, n in counts.items() if s not in FINAL_MESSAGE_STATES | {"in_doubt"})

    def wait_settled(self, campaign_ids: list[int], timeout: float) -> None:
        """Wait until every message is final or in doubt (raises on timeout, or at once if a
        process of the stack exited: its log's tail says why)."""
        deadline = time.monotonic() + timeout
        while any(self.unsettled(cid) for cid in campaign_ids):
            if time.monotonic() > deadline:
                reports = {cid: self.report(cid)["counts"] for cid in campaign_ids}
                raise TimeoutError(f"not settled after {timeout:.0f} s: {reports}")
            self.fleet.check_alive()
            time.sleep(0.5)

    def wait_done(self, campaign_ids: list[int], timeout: float) -> dict[int, dict[str, Any]]:
        """Wait until every campaign is completed; their reports (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            reports = {cid: self.report(cid) for cid in campaign_ids}
            if all(r["state"] == CampaignState.COMPLETED for r in reports.values()):
                return reports
            if time.monotonic() > deadline:
                raise TimeoutError(f"campaigns not done after {timeout:.0f} s: {reports}")
            self.fleet.check_alive()
            time.sleep(0.5)
