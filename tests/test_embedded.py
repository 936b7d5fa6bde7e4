"""The embedded Redis outlives the process that started it, until ``dispatcher stop``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis

from dispatcher.embedded import EmbeddedRedis, stop_embedded_redis

_START = (
    "from dispatcher.config import load_settings\n"
    "from dispatcher.runtime import redis_url_for\n"
    "print(redis_url_for(load_settings()))\n"
)


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["DISPATCHER_STATE_DIR"] = str(state)
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )


def test_dispatcher_stop_shuts_down_the_embedded_redis(tmp_path: Path) -> None:
    """Started by a process that has exited, the server runs on; `dispatcher stop` ends it,
    and a second stop finds nothing to stop."""
    url = _run(tmp_path, "-c", _START).stdout.strip()
    pid = int((tmp_path / "redis" / "redis.pid").read_text())
    try:
        assert redis.Redis.from_url(url).ping()
        assert psutil.Process(pid).name().startswith("redis-server")

        stopped = _run(tmp_path, "-m", "dispatcher", "stop")
        assert f"pid {pid}" in stopped.stdout
        assert _gone(pid)
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        again = _run(tmp_path, "-m", "dispatcher", "stop")
        assert "nothing to stop" in again.stdout
    finally:
        if not _gone(pid):
            os.kill(pid, 9)


def test_stop_leaves_a_redis_that_is_not_ours(tmp_path: Path) -> None:
    """A port file naming another server's port (the port was reused) stops nothing."""
    with EmbeddedRedis(tmp_path / "someone-else") as foreign:
        (tmp_path / "state" / "redis").mkdir(parents=True)
        (tmp_path / "state" / "redis" / "port").write_text(str(foreign.port))
        assert stop_embedded_redis(tmp_path / "state") is None
        assert redis.Redis.from_url(foreign.url).ping()
