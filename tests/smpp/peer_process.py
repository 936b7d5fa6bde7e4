"""Start and drive the SMPP test peer (tests/smpp/peer/peer.js, on the npm package ``smpp``).

The peer's dependencies are installed by ``npm ci`` from the pinned package-lock.json the first
time a test needs them. Without Node.js the tests skip, and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

PEER_DIR = Path(__file__).parent / "peer"


def node_available() -> str | None:
    """Why the peer cannot run here, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js and npm are needed for the SMPP test peer"
    return None


def install_peer() -> None:
    """``npm ci`` once: the exact versions of package-lock.json, nothing fetched after."""
    if not (PEER_DIR / "node_modules" / "smpp").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=PEER_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )


class Peer:
    """A running peer: its SMPP port and its control channel."""

    def __init__(self, process: subprocess.Popen[str], port: int, control: int) -> None:
        self.process = process
        self.port = port
        self.control = httpx.Client(base_url=f"http://127.0.0.1:{control}", timeout=10)

    def ledger(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.control.get("/ledger").raise_for_status().json()
        return answer

    def receipt(self, message_id: str, stat: str = "DELIVRD", err: str = "000") -> bool:
        body = {"message_id": message_id, "stat": stat, "err": err}
        return bool(self.control.post("/receipt", json=body).raise_for_status().json()["sent"])

    def mo(self, sender: str, to: str, text: str) -> bool:
        body = {"from": sender, "to": to, "text": text}
        return bool(self.control.post("/mo", json=body).raise_for_status().json()["sent"])

    def drop(self, down_ms: int = 0) -> None:
        self.control.post("/drop", json={"downMs": down_ms}).raise_for_status()

    def close(self) -> None:
        self.control.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@contextmanager
def running_peer(options: Mapping[str, Any]) -> Iterator[Peer]:
    """A peer with ``options`` (see peer.js), stopped on exit."""
    process = subprocess.Popen(
        ["node", str(PEER_DIR / "peer.js"), json.dumps(dict(options))],
        cwd=PEER_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if not line or line[0] != "READY":
        process.kill()
        raise RuntimeError(f"the SMPP peer did not start: {line}")
    peer = Peer(process, int(line[1]), int(line[2]))
    try:
        yield peer
    finally:
        peer.close()
