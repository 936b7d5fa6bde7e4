"""What a user would otherwise write: Celery's ``rate_limit="20/s"`` on the send task.

Celery enforces ``rate_limit`` per worker process (a token bucket in each consumer), so N
workers offer N × 20 calls/s to an account that accepts 20. Used by ``bench/throughput.py``
beside the real pipeline, against the same simulator.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import redis
from celery import Celery

from dispatcher.config import Secret
from dispatcher.errors import ProviderError
from dispatcher.providers.base import build_http_client
from dispatcher.providers.timetochat import TimeToChatClient, TtcOutgoing
from dispatcher.providers.tokens import RedisTokenStore

app = Celery("naive", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)


@functools.cache
def _client() -> TimeToChatClient:
    service = os.environ["DISPATCHER_TIMETOCHAT_SERVICE_ID"]
    return TimeToChatClient(
        os.environ["DISPATCHER_TIMETOCHAT_URL"],
        service,
        Secret(os.environ["DISPATCHER_TIMETOCHAT_PASSWORD"]),
        build_http_client(3.0, 5.0),
        RedisTokenStore(redis.Redis.from_url(os.environ["REDIS_URL"]), service),
    )


@app.task(name="naive.send_one", rate_limit="20/s")  # type: ignore[untyped-decorator]
def send_one(to: str, sender: str, text: str) -> Any:
    """One TimeToChat send, no fleet limiter: a refusal is simply counted as failed."""
    try:
        return _client().send(TtcOutgoing(to, sender, text, None, None, unicode=False))
    except ProviderError as error:
        return error.reason
