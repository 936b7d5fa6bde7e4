"""Broker memory stays flat: Redis ``used_memory`` while dispatching 10,000 vs 1,000,000.

The feeder keeps at most a few seconds of budget per campaign on the broker, so the peak should
not depend on the campaign's size. Each campaign runs on the stack's own Redis (nothing else in
it); ``used_memory`` is sampled every 0.1 s during the first ``--seconds`` of dispatch (at 20
calls/s × 100 per batch a million recipients take over 8 minutes: the window is what matters).

    .venv/bin/python bench/broker_memory.py [--small 10000] [--large 1000000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatcher.demo import generate_recipients  # noqa: E402
from dispatcher.loader import create_campaign  # noqa: E402
from dispatcher.localstack import LocalStack, StackOptions  # noqa: E402
from dispatcher.sandbox import Lifecycle  # noqa: E402


def measure(directory: Path, rows: int, seconds: float) -> dict[str, Any]:
    # Messages never settle within the window (long lifecycle): callbacks do not add load.
    options = StackOptions(workers=2, lifecycle=Lifecycle(30.0, 30.0))
    with LocalStack(directory, options) as stack:
        path = generate_recipients(directory / "recipients.csv", rows, seed=rows)
        started = time.monotonic()
        summary = create_campaign(
            stack.runtime.engine, stack.settings, path, provider="bytehand",
            sender="SMSINFO", template="Bonjour {first_name}", name=f"memory {rows}",
        )  # fmt: skip
        ingest_s = time.monotonic() - started
        client = redis.Redis.from_url(stack.env["REDIS_URL"])
        baseline = int(client.info("memory")["used_memory"])
        stack.start_campaign(summary.id)
        peak, peak_queued, deadline = baseline, 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            peak = max(peak, int(client.info("memory")["used_memory"]))
            peak_queued = max(peak_queued, sum(
                int(client.llen(q)) for q in ("send.bytehand", "default", "status")
            ))  # fmt: skip
            time.sleep(0.1)
        sent = stack.bytehand.throughput()["accepted"]
        client.close()
        return {
            "recipients": summary.estimate.valid,
            "ingest_s": round(ingest_s, 1),
            "sampled_s": seconds,
            "accepted_while_sampled": sent,
            "baseline_used_memory_mb": round(baseline / 2**20, 2),
            "peak_used_memory_mb": round(peak / 2**20, 2),
            "peak_growth_mb": round((peak - baseline) / 2**20, 2),
            "peak_tasks_on_broker": peak_queued,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = measure(Path(tmp) / "small", args.small, args.seconds)
        large = measure(Path(tmp) / "large", args.large, args.seconds)
    ratio = large["peak_growth_mb"] / max(small["peak_growth_mb"], 0.01)
    print(
        json.dumps(
            {"small": small, "large": large, "growth_ratio_large_to_small": round(ratio, 2)},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
