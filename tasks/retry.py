"""The one retry policy of tasks: infrastructure hiccups (database, broker) only.

Provider errors never reach Celery's retry: :mod:`dispatcher.outcomes` decides those per
recipient. A short Celery countdown is fine here (seconds, not the long ETAs that the Redis
visibility timeout turns into duplicates).
"""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy.exc import OperationalError

RETRY_ON_INFRASTRUCTURE: dict[str, Any] = {
    "autoretry_for": (OperationalError, redis.ConnectionError),
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 20,
}
