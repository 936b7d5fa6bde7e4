"""What counting costs a provider call: the same HTTP requests with and without the metered gate.

Each round makes ``--calls`` GET requests to a local HTTP server through
:func:`dispatcher.providers.base.request`, once through the bare gate and once through
:class:`dispatcher.meter.MeteredGate` (one ``HINCRBY`` on the embedded Redis per call),
alternating so that the machine's load falls on both alike; the median of the rounds is kept.

    .venv/bin/python bench/meter.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatcher.embedded import EmbeddedRedis  # noqa: E402
from dispatcher.meter import Meter, MeteredGate  # noqa: E402
from dispatcher.providers.base import CallGate, no_gate, request  # noqa: E402
from dispatcher.sandbox.server import serve_in_thread  # noqa: E402


async def _ok(_: Request) -> Response:
    return Response(b"{}", media_type="application/json")


def _round(http: httpx.Client, url: str, gate: CallGate, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        request(http, gate, "send", "GET", url, provider="bytehand", idempotent=False)
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    app = Starlette(routes=[Route("/", _ok)])
    with (
        tempfile.TemporaryDirectory() as directory,
        EmbeddedRedis(Path(directory)) as server,
        serve_in_thread(app) as web,
        httpx.Client() as http,
    ):
        client: redis.Redis[Any] = redis.Redis.from_url(server.url)
        metered = MeteredGate(no_gate, Meter(client), "bytehand")
        bare_ms, metered_ms = [], []
        _round(http, web.url, no_gate, 200)  # warm the connection pools
        _round(http, web.url, metered, 200)
        for _ in range(args.rounds):
            bare_ms.append(_round(http, web.url, no_gate, args.calls))
            metered_ms.append(_round(http, web.url, metered, args.calls))
        client.close()
    bare, with_meter = statistics.median(bare_ms), statistics.median(metered_ms)
    print(
        json.dumps(
            {
                "calls_per_round": args.calls,
                "rounds": args.rounds,
                "bare_ms_per_call": round(bare, 3),
                "metered_ms_per_call": round(with_meter, 3),
                "added_ms_per_call": round(with_meter - bare, 3),
                "ratio": round(with_meter / bare, 3),
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            }
        )
    )


if __name__ == "__main__":
    main()
