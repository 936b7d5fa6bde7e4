"""Processes the project starts in the background, recorded so that ``dispatcher stop`` can end
the ones a crash left behind.

A local stack (``make demo``, :mod:`dispatcher.localstack`) starts each process in a session of
its own, so that it can be killed with its children; if the stack's own process dies without
stopping them (SIGKILL, a closed terminal), they run on with no parent. Each one is therefore
recorded as ``<name>.running`` beside its log: its pid and the kernel's start time of that pid, so
that a pid reused by an unrelated process after a reboot is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["forget", "record", "start_time", "stop_recorded"]

_SUFFIX = ".running"


def start_time(pid: int) -> str | None:
    """When the kernel started ``pid`` (clock ticks since boot), or ``None`` if it is gone.

    Linux only (``/proc``); elsewhere every recording looks stale and nothing is signalled.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    if fields[0] == "Z":
        return None  # exited; only its parent's wait() is missing
    return fields[19]


def record(directory: Path, name: str, pid: int) -> None:
    """Note that ``pid`` (``name``) was started by the project and leads its own session."""
    stamp = start_time(pid) or ""
    (directory / f"{name}{_SUFFIX}").write_text(f"{pid} {stamp}\n")


def forget(directory: Path, name: str) -> None:
    """``name`` was stopped on purpose."""
    (directory / f"{name}{_SUFFIX}").unlink(missing_ok=True)


def _alive(pid: int, stamp: str) -> bool:
    return bool(stamp) and start_time(pid) == stamp


def stop_recorded(root: Path, timeout: float = 15.0) -> list[int]:
    """SIGTERM every recorded process under ``root`` that still runs (its whole session),
    SIGKILL those still there after ``timeout``; the pids stopped. Every record is removed."""
    running: dict[int, str] = {}
    for path in root.rglob(f"*{_SUFFIX}"):
        pid_text, _, stamp = path.read_text().strip().partition(" ")
        path.unlink(missing_ok=True)
        with contextlib.suppress(ValueError):
            if _alive(int(pid_text), stamp):
                running[int(pid_text)] = stamp
    for pid in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid, stamp) for pid, stamp in running.items()):
        if time.monotonic() > deadline:
            for pid, stamp in running.items():
                if _alive(pid, stamp):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    return sorted(running)
