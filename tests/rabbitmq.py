"""RabbitMQ for the tests: a vhost of its own per test on the machine's broker, so parallel runs
never share a queue; a private node for the test that restarts its broker (restarting the
machine's one would cut every other run). With ``CI=true`` a missing broker fails the run
instead of skipping."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.embedded import free_port

__all__ = ["RABBITMQ_HOST", "RABBITMQ_PORT", "RabbitNode", "rabbitmq_vhost"]

RABBITMQ_HOST = "127.0.0.1"
RABBITMQ_PORT = int(os.environ.get("TEST_RABBITMQ_PORT", "5672"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"RabbitMQ is required with CI=true: {reason}")
    pytest.skip(f"RabbitMQ tests need a broker on {RABBITMQ_HOST}:{RABBITMQ_PORT}: {reason}")


def _ctl(*args: str, node: str | None = None) -> None:
    where = ["-n", node] if node else []
    subprocess.run(
        ["rabbitmqctl", "-q", *where, *args], check=True, capture_output=True, timeout=60
    )


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A fresh vhost for guest on the local broker (its AMQP URL), deleted afterwards."""
    try:
        socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=2).close()
    except OSError as exc:
        _unavailable(str(exc))
    if shutil.which("rabbitmqctl") is None:
        _unavailable("rabbitmqctl (to make a vhost per test) is not on PATH")
    vhost = f"dispatcher-test-{uuid.uuid4().hex[:12]}"
    try:
        _ctl("add_vhost", vhost)
        _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"rabbitmqctl add_vhost failed (run as root or a RabbitMQ admin): {exc}")
    try:
        yield f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"
    finally:
        _ctl("delete_vhost", vhost)


class RabbitNode:
    """A RabbitMQ node of the test's own (node name, port, data under ``directory``), started
    with ``rabbitmq-server``: its broker can be restarted without touching anyone else's.
    The server runs as the ``rabbitmq`` user: ``directory`` must be reachable by it (pytest's
    own temporary directories are not)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.node = f"dispatcher-test-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@{RABBITMQ_HOST}:{port}//"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> RabbitNode:
        if shutil.which("rabbitmq-server") is None or os.geteuid() != 0:
            _unavailable("a private node needs rabbitmq-server, started as root")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = {RABBITMQ_HOST}:{self.port}\n"
        )
        (self.directory / "plugins").write_text("[].\n")
        shutil.chown(self.directory, "rabbitmq", "rabbitmq")  # the server drops to that user
        for path in self.directory.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.directory / "feature_flags"),
            "RABBITMQ_QUORUM_DIR": str(self.directory / "quorum"),
        }
        log = (self.directory / "server.log").open("ab")
        self._process = subprocess.Popen(
            ["rabbitmq-server"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_listening(timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                tail = (self.directory / "server.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"RabbitMQ node {self.node} exited:\n{tail}")
            try:
                socket.create_connection((RABBITMQ_HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"RabbitMQ node {self.node} not listening after {timeout:.0f} s")

    def restart(self, down_s: float) -> None:
        """Stop the broker application (every connection cut) and start it ``down_s`` later;
        durable quorum queues come back with their messages."""
        _ctl("stop_app", node=self.node)
        time.sleep(down_s)
        _ctl("start_app", node=self.node)
        self._wait_listening(60)

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _ctl("stop", node=self.node)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None
