"""The CLI on a machine with none of the development machine's services (see tests.offline)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

BIN = Path(sys.executable).parent
Offline = Callable[..., subprocess.CompletedProcess[str]]

# Run inside the namespace, after `campaign start`: the tasks waiting on the embedded Redis.
_QUEUED_TASKS = """
import json, pathlib, redis
port = pathlib.Path("state/redis/port").read_text().strip()
client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
print(json.dumps([json.loads(m)["headers"]["task"] for m in client.lrange("default", 0, -1)]))
"""


def stranger_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: no REDIS_URL, DATABASE_URL or broker; state under ``tmp_path``."""
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DISPATCHER_STATE_DIR": str(tmp_path / "state"),
    }


def with_bytehand_sandbox(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the ByteHand simulator's account: a start's pre-start checks ask it."""
    from dispatcher.localstack import BYTEHAND_ACCOUNT

    return env | {
        "DISPATCHER_BYTEHAND_ID": BYTEHAND_ACCOUNT.client_id,
        "DISPATCHER_BYTEHAND_KEY": BYTEHAND_ACCOUNT.key,
    }


# Inside the namespace (its own loopback): the ByteHand simulator on its default port.
START_SANDBOX = (
    "dispatcher sandbox --only bytehand > sandbox.log 2>&1 &\n"
    "python -c 'import socket, time\n"
    "for _ in range(300):\n"
    '    try: socket.create_connection(("127.0.0.1", 3800), 1).close(); break\n'
    "    except OSError: time.sleep(0.1)'\n"
)


@pytest.fixture
def recipients(tmp_path: Path) -> Path:
    path = tmp_path / "recipients.csv"
    path.write_text("phone;first_name\n0601020304;Anne\n0601020305;Bruno\n", encoding="utf-8")
    return path


def test_start_kicks_the_feeder_on_our_broker(
    offline: Offline, tmp_path: Path, recipients: Path
) -> None:
    """`campaign start` with no AMQP broker on localhost exits 0; its tick waits on our Redis."""
    script = (
        "set -e\n"
        + START_SANDBOX
        + f"dispatcher campaign create {recipients} --provider bytehand --sender SMSINFO"
        " --text 'Bonjour {first_name}' --json > created.json\n"
        'id=$(python -c \'import json; print(json.load(open("created.json"))["id"])\')\n'
        "dispatcher campaign start $id\n"
        f"python -c '{_QUEUED_TASKS}'\n"
    )
    env = with_bytehand_sandbox(stranger_env(tmp_path))
    result = offline(["sh", "-c", script], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    started, queued = result.stdout.strip().splitlines()[-2:]
    assert started.endswith("now running")
    assert json.loads(queued) == ["dispatcher.tick"]
