"""Start web, worker and beat together on a fresh state directory; print what a user sees.

Run by ``test_fresh_database.py`` inside :func:`tests.offline.run_offline`: no service of the
machine, no ``REDIS_URL`` or ``DATABASE_URL`` (the embedded Redis and SQLite), and no command
run beforehand. Prints one JSON object: the dashboard's status, the answer to starting a
campaign through the API (which kicks the feeder) and every process's log.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from dispatcher.embedded import free_port
from dispatcher.fleet import Fleet, beat_command, web_command, worker_command

TOKEN = "fresh-fleet-token"


def main(state: Path) -> None:
    port = free_port()
    env = {"DISPATCHER_STATE_DIR": str(state), "DISPATCHER_API_TOKEN": TOKEN}
    with Fleet(state / "logs", env) as fleet:
        fleet.add("web", web_command(port))
        fleet.add("worker", worker_command("w0", concurrency=2))
        fleet.add("beat", beat_command(state / "beat-schedule"))
        # The ByteHand simulator on its default port: a start's pre-start checks ask it.
        fleet.add("sandbox", [sys.executable, "-m", "dispatcher", "sandbox", "--only", "bytehand"])
        fleet.start_all()
        fleet.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        page = httpx.get(f"http://127.0.0.1:{port}/?token={TOKEN}", follow_redirects=True)
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        created = api.post(
            "/campaigns",
            data={"provider": "bytehand", "sender": "SMSINFO", "text": "Bonjour"},
            files={"file": ("r.csv", b"phone\n0601020304\n", "text/csv")},
        )
        started = api.post(f"/campaigns/{created.json()['id']}/start").json()
        api.close()
        worker_log = state / "logs" / "worker.log"
        deadline = time.monotonic() + 60
        while "dispatcher.tick" not in worker_log.read_text() or "succeeded" not in (
            worker_log.read_text()
        ):
            fleet.check_alive()
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        logs = {name: (state / "logs" / f"{name}.log").read_text() for name in fleet.commands}
    print(
        json.dumps(
            {"dashboard": page.status_code, "page": page.text, "start": started, "logs": logs}
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
