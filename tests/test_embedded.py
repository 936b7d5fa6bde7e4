"""What the project starts in the background outlives the process that started it, until
``dispatcher stop``: the embedded Redis, and a killed local stack's processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis

from dispatcher import pidfiles
from dispatcher.embedded import EmbeddedRedis, stop_embedded_redis
from dispatcher.fleet import Fleet

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
        assert f"stopped the embedded Redis (pid {pid})" in stopped.stdout
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
        assert stop_embedded_redis(tmp_path / "state") == []
        assert redis.Redis.from_url(foreign.url).ping()


_SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_stop_ends_the_processes_of_a_killed_stack(tmp_path: Path) -> None:
    """A stack's process that died without stopping its fleet: `dispatcher stop` ends the
    fleet's processes and its Redis, found anywhere under the state directory."""
    stack = tmp_path / "demo-1"
    fleet = Fleet(stack / "logs", {})
    fleet.add("worker0", _SLEEP)
    worker = fleet.start("worker0")
    server = EmbeddedRedis(stack / "redis")
    server.start()
    try:
        # The stack's process is killed here: nothing calls fleet.stop_all() or server.stop().
        stopped = _run(tmp_path, "-m", "dispatcher", "stop").stdout
        assert f"stopped process {worker.pid}" in stopped
        assert worker.wait(timeout=10) == -15  # SIGTERM
        assert server.process is not None
        assert server.process.wait(timeout=10) is not None
        assert f"stopped the embedded Redis (pid {server.process.pid})" in stopped
    finally:
        fleet.stop_all()
        server.stop()


def test_stop_never_signals_a_reused_pid(tmp_path: Path) -> None:
    """A record whose pid now belongs to another process (another start time) is dropped."""
    other = subprocess.Popen(_SLEEP, start_new_session=True)
    try:
        (tmp_path / "logs").mkdir()
        (tmp_path / "logs" / "worker0.running").write_text(f"{other.pid} 12345\n")
        assert pidfiles.stop_recorded(tmp_path) == []
        assert other.poll() is None
        assert not (tmp_path / "logs" / "worker0.running").exists()
    finally:
        other.kill()
        other.wait()
