"""A local fleet of real processes: Celery workers, beat and the web app.

Used by ``dispatcher demo``, the end-to-end and fault tests and the benchmarks, so that all of
them run the same command lines the ``Procfile`` runs, as separate OS processes that can be
killed with SIGKILL and restarted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from dispatcher import pidfiles
from dispatcher.constants import QUEUES

__all__ = ["Fleet", "beat_command", "web_command", "worker_command"]

ALL_QUEUES = ",".join(QUEUES)
"""In priority order: see ``broker_transport_options`` in :mod:`workers.app`."""


WORKER_THREADS = 8
"""Tasks one worker process runs at once. A send spends most of its time waiting on the
provider, the database and Redis, and up to half a tick for its reserved slot; threads overlap
those waits. Two workers of 8 threads kept TimeToChat at 19.92 sends/s beside ByteHand at
18.76 calls/s, each at its own account's budget; with 4 threads ByteHand got 8.5 calls/s
there, the other threads waiting for TimeToChat's slots (bench/throughput.py --both-threads)."""


def worker_command(
    name: str, *, concurrency: int = WORKER_THREADS, pool: str = "threads"
) -> list[str]:
    """A Celery worker on every queue (the Procfile's ``worker`` line, with a node name)."""
    return [
        sys.executable, "-m", "celery", "-A", "workers", "worker",
        "-Q", ALL_QUEUES, "-c", str(concurrency), "-P", pool, "-n", f"{name}@%h",
        "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def beat_command(schedule: Path) -> list[str]:
    """Celery beat with its schedule file under the state directory."""
    return [
        sys.executable, "-m", "celery", "-A", "workers", "beat",
        "-s", str(schedule), "--loglevel", "INFO",
    ]  # fmt: skip


def web_command(port: int) -> list[str]:
    """The web app (webhooks and JSON API) under uvicorn, on loopback."""
    return [
        sys.executable, "-m", "uvicorn", "dispatcher.web.asgi:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


class Fleet:
    """Named child processes sharing one environment; logs under ``directory``."""

    def __init__(self, directory: Path, env: Mapping[str, str]) -> None:
        self.directory = directory
        self.env = {**os.environ, **env}
        self.commands: dict[str, list[str]] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, command: list[str]) -> None:
        self.commands[name] = command

    def start(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("ab")
        process = subprocess.Popen(
            self.commands[name],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        pidfiles.record(self.directory, name, process.pid)  # for `dispatcher stop` after a crash
        return process

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL a process and every child it forked: a crash, not a shutdown."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        pidfiles.forget(self.directory, name)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """A graceful stop (SIGTERM: Celery finishes its current task), then SIGKILL."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        pidfiles.forget(self.directory, name)
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self, timeout: float = 15.0) -> None:
        """Graceful stop of every process at once (each finishes its task), then SIGKILL."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for name in self.processes:
            pidfiles.forget(self.directory, name)
        self.processes.clear()

    def check_alive(self) -> None:
        """Raise if a process died on its own: its log says why."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.directory / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Wait until a started web process answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                httpx.get(url, timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()
