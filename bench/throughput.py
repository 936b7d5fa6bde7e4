"""Sustained provider calls/s with 1, 2 and 4 worker processes, ours beside Celery rate_limit.

For each worker count, one run of the real pipeline (a TimeToChat campaign of 600 recipients,
then a ByteHand campaign of 40,000, each with the whole fleet; sustained calls/s is the busiest
ten seconds, so the campaign must last well beyond ten), then the same
worker count running the naive ``rate_limit="20/s"`` task (bench/naive_app.py) for 600
TimeToChat sends. Figures come from the simulators' ledgers and statistics.

The "two providers at once" rows: the TimeToChat and ByteHand campaigns started together on two
workers of ``--both-threads`` threads each (one row per count); each account's accepted
messages/s over the seconds both sent, less the last two (the TimeToChat campaign's last
recipients, handed back for want of a slot, go a tick or more later: its end, not its share),
and over all of them (goal: TimeToChat ≥ 19 beside ByteHand at its own budget).

The SMPP row: a TimeToChat campaign of ``--smpp`` recipients over the SMPP transport (two
workers feeding, one gateway) against the independent peer (tests/smpp/peer, Node.js), judged
by the peer's ledger: sustained submits/s over the busiest ten seconds (goal 19.8 of 20), the
most requests in any one second, and the refusals (ESME_RTHROTTLED). Prints JSON.

    .venv/bin/python bench/throughput.py [--workers 1 2 4] [--ttc 600] [--bytehand 40000]
                                         [--smpp 600] [--no-both] [--both-threads 4 8]
                                         (--workers with no value: SMPP and both rows only)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatcher.demo import generate_recipients  # noqa: E402
from dispatcher.fleet import WORKER_THREADS  # noqa: E402
from dispatcher.loader import create_campaign  # noqa: E402
from dispatcher.localstack import TIMETOCHAT_ACCOUNT, LocalStack, StackOptions  # noqa: E402
from dispatcher.sandbox import Lifecycle  # noqa: E402
from dispatcher.sandbox.ratewindow import rates_over_overlap  # noqa: E402
from tests.smpp.peer_process import install_peer, running_peer  # noqa: E402


def _wait_sent(stack: LocalStack, campaign_ids: list[int], timeout: float) -> None:
    """Until nothing is left to send (delivery reports may still be on their way)."""
    deadline = time.monotonic() + timeout
    unsent = ("pending", "queued", "sending")
    while any(
        stack.report(cid)["counts"].get(state, 0) for cid in campaign_ids for state in unsent
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("campaigns not sent in time")
        time.sleep(0.2)


def run_ours(directory: Path, workers: int, ttc: int, bytehand: int) -> dict[str, Any]:
    """One campaign per provider, one after the other: each account gets the whole fleet."""
    options = StackOptions(workers=workers, lifecycle=Lifecycle(0.2, 0.3))
    results: dict[str, Any] = {}
    with LocalStack(directory, options) as stack:
        for provider, rows, sender in (
            ("timetochat", ttc, TIMETOCHAT_ACCOUNT.senders[0]),
            ("bytehand", bytehand, "SMSINFO"),
        ):
            path = generate_recipients(directory / f"{provider}.csv", rows, seed=rows)
            campaign_id = create_campaign(
                stack.runtime.engine, stack.settings, path, provider=provider,
                sender=sender, template="Bonjour {first_name}", name=f"bench {provider}",
            ).id  # fmt: skip
            started = time.monotonic()
            stack.start_campaign(campaign_id)
            _wait_sent(stack, [campaign_id], timeout=900)
            sandbox = stack.timetochat if provider == "timetochat" else stack.bytehand
            results[provider] = {
                **sandbox.throughput(),
                "wall_s": round(time.monotonic() - started, 1),
            }
    return results


def run_two_providers(directory: Path, ttc: int, bytehand: int, threads: int) -> dict[str, Any]:
    """Both accounts at once on two workers of ``threads`` threads: a ByteHand campaign of
    ``bytehand`` recipients and a TimeToChat one of ``ttc`` started together; each account's
    accepted messages/s while both were sending (goal: TimeToChat ≥ 19 of 20)."""
    options = StackOptions(workers=2, lifecycle=Lifecycle(0.2, 0.3), concurrency=threads)
    ids: dict[str, int] = {}
    with LocalStack(directory, options) as stack:
        for provider, rows, sender in (
            ("bytehand", bytehand, "SMSINFO"),
            ("timetochat", ttc, TIMETOCHAT_ACCOUNT.senders[0]),
        ):
            path = generate_recipients(directory / f"{provider}.csv", rows, seed=rows + 1)
            ids[provider] = create_campaign(
                stack.runtime.engine, stack.settings, path, provider=provider,
                sender=sender, template="Bonjour {first_name}", name=f"bench both {provider}",
            ).id  # fmt: skip
        for campaign_id in ids.values():
            stack.start_campaign(campaign_id)
        _wait_sent(stack, [ids["timetochat"]], timeout=900)
        streams = {
            provider: sorted(entry.accepted_at.timestamp() for entry in sandbox.ledger)
            for provider, sandbox in (
                ("bytehand", stack.bytehand),
                ("timetochat", stack.timetochat),
            )
        }
        refused = {
            "bytehand": next(iter(stack.bytehand.stats().values())).rate_limited,
            "timetochat": next(iter(stack.timetochat.stats().values())).rate_limited,
        }
    seconds, rates = rates_over_overlap(streams, drop_last_s=2.0)
    _, whole = rates_over_overlap(streams)
    return {
        "threads_per_worker": threads,
        "overlap_s": round(seconds, 1),
        "timetochat_messages_per_s": round(rates["timetochat"], 2),
        "bytehand_messages_per_s": round(rates["bytehand"], 1),
        "bytehand_calls_per_s": round(rates["bytehand"] / 100, 2),
        "timetochat_messages_per_s_to_the_end": round(whole["timetochat"], 2),
        "goal_timetochat_per_s": 19,
        "refused_rate_limited": refused,
    }


def run_naive(directory: Path, workers: int, ttc: int) -> dict[str, Any]:
    options = StackOptions(workers=0, beat=False)
    with LocalStack(directory, options) as stack:
        env_python = {"PYTHONPATH": str(ROOT)}
        stack.fleet.env.update(env_python)
        for index in range(workers):
            stack.fleet.add(
                f"naive{index}",
                # A user's worker: Celery's default pool, one task at a time (with a thread
                # pool, rate_limit parks tasks on timers and managed 3.5 calls/s here).
                [sys.executable, "-m", "celery", "-A", "bench.naive_app", "worker", "-c", "1",
                 "-n", f"naive{index}@%h", "--without-gossip", "--without-mingle"],
            )  # fmt: skip
            stack.fleet.start(f"naive{index}")
        from bench import naive_app

        sender = TIMETOCHAT_ACCOUNT.senders[0]
        started = time.monotonic()
        with naive_app.app.connection_for_write(stack.env["REDIS_URL"]) as connection:
            for index in range(ttc):
                # Ending in 1: no number with a special outcome in the simulator.
                naive_app.send_one.apply_async(
                    (f"+3361{index:06d}1", sender, "Bonjour"), connection=connection
                )
        deadline, seen, quiet_since = time.monotonic() + 180, -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 5:
            stats = next(iter(stack.timetochat.stats().values()), None)
            done = stats.accepted + stats.rate_limited if stats else 0
            if done >= ttc:
                break
            if done != seen:
                seen, quiet_since = done, time.monotonic()
            time.sleep(0.5)
        return {"timetochat": stack.timetochat.throughput(), "wall_s": time.monotonic() - started}


def _busiest(arrivals_ms: list[int], window_ms: int) -> int:
    """The most arrivals within any ``window_ms`` (a sliding window)."""
    arrivals, most, start = sorted(arrivals_ms), 0, 0
    for end, at in enumerate(arrivals):
        while at - arrivals[start] >= window_ms:
            start += 1
        most = max(most, end - start + 1)
    return most


def run_smpp(directory: Path, recipients: int) -> dict[str, Any]:
    """A TimeToChat campaign over SMPP: two workers feed, one gateway binds to the peer."""
    install_peer()
    sender = TIMETOCHAT_ACCOUNT.senders[0]
    peer_options = {"systemId": "bench", "password": "bench", "allowedSources": [sender]}
    with running_peer(peer_options | {"autoReceipt": "DELIVRD"}) as peer:
        options = StackOptions(
            workers=2,
            env={
                "DISPATCHER_TIMETOCHAT_TRANSPORT": "smpp",
                "DISPATCHER_TIMETOCHAT_SMPP_URL": f"smpp://127.0.0.1:{peer.port}",
                "DISPATCHER_TIMETOCHAT_SMPP_SYSTEM_ID": "bench",
                "DISPATCHER_TIMETOCHAT_SMPP_PASSWORD": "bench",
            },
        )
        with LocalStack(directory, options) as stack:
            stack.fleet.add("smpp", [sys.executable, "-m", "dispatcher", "smpp-gateway"])
            stack.fleet.start("smpp")
            path = generate_recipients(directory / "smpp.csv", recipients, seed=recipients)
            campaign_id = create_campaign(
                stack.runtime.engine, stack.settings, path, provider="timetochat",
                sender=sender, template="Bonjour {first_name}", name="bench smpp",
            ).id  # fmt: skip
            started = time.monotonic()
            stack.start_campaign(campaign_id)
            _wait_sent(stack, [campaign_id], timeout=900)
            wall_s = time.monotonic() - started
        ledger = peer.ledger()
    submits = [entry["at"] for entry in ledger["submits"]]
    return {
        "submits": len(submits),
        "sustained_submits_per_s": round(_busiest(submits, 10_000) / 10, 2),
        "goal_per_s": 19.8,
        "max_requests_in_any_second": _busiest(ledger["requests"], 1000),
        "refused_throttled": ledger["throttled"],
        "duplicates": len(submits) - len({entry["destination"] for entry in ledger["submits"]}),
        "wall_s": round(wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--ttc", type=int, default=600)
    parser.add_argument("--bytehand", type=int, default=40000)
    parser.add_argument("--smpp", type=int, default=600, help="0: no SMPP row")
    parser.add_argument(
        "--both", action=argparse.BooleanOptionalAction, default=True,
        help="the two-providers-at-once row (--ttc TimeToChat beside --bytehand ByteHand)",
    )  # fmt: skip
    parser.add_argument(
        "--both-threads", type=int, nargs="+", default=[WORKER_THREADS],
        help="threads per worker of the two-providers rows, one row per count",
    )  # fmt: skip
    args = parser.parse_args()
    results: dict[str, Any] = {"ours": {}, "celery_rate_limit": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            base = Path(tmp) / f"w{workers}"
            results["ours"][workers] = run_ours(base / "ours", workers, args.ttc, args.bytehand)
            results["celery_rate_limit"][workers] = run_naive(base / "naive", workers, args.ttc)
            print(
                json.dumps(
                    {
                        "workers": workers,
                        "ours": results["ours"][workers],
                        "naive": results["celery_rate_limit"][workers],
                    }
                ),
                file=sys.stderr,
            )
        if args.both:
            results["two_providers_at_once"] = [
                run_two_providers(Path(tmp) / f"both{threads}", args.ttc, args.bytehand, threads)
                for threads in args.both_threads
            ]
        if args.smpp:
            results["smpp"] = run_smpp(Path(tmp) / "smpp", args.smpp)
    results["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
