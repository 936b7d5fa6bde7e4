"""Run a command the way a stranger's machine would: no service listening on localhost.

The development machine runs RabbitMQ, Redis and PostgreSQL on 127.0.0.1; a user's does not. A
command run by :func:`run_offline` gets its own network namespace with only a loopback
interface (nothing of the host's listens there) and its own PID namespace, so whatever it
starts in the background (the embedded Redis) is killed when the command ends. It needs
``unshare`` to be permitted (root, or unprivileged user namespaces): elsewhere the test is
skipped with the reason, and under ``CI=true`` it fails.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["offline_unavailable", "run_offline"]

_UNSHARE = ("unshare", "--net", "--pid", "--fork")
_LOOPBACK_UP = 'ip link set lo up && exec "$@"'


@functools.cache
def offline_unavailable() -> str | None:
    """Why commands cannot be run offline here, or ``None`` when they can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "no unshare or ip command (util-linux, iproute2)"
    probe = subprocess.run(
        [*_UNSHARE, "sh", "-c", _LOOPBACK_UP, "sh", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare of a network namespace is not permitted: {probe.stderr.strip()}"
    return None


def run_offline(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with nothing but its own loopback; every process it left is then killed."""
    environment = dict(os.environ if env is None else env)
    command = [*_UNSHARE, "sh", "-c", _LOOPBACK_UP, "sh", *argv]
    return subprocess.run(
        command,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
