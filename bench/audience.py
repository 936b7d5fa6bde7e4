"""Audience-care benchmark: what opt-outs and quiet hours cost, side by side.

Prints one JSON object:

* ``phone_index``: ``create_campaign`` of the same file into SQLite as migrated (only sent
  messages indexed by phone) and with a full index on ``messages.phone``, best of two
  alternated runs each, and their ratio: why the index is partial;
* ``opt_out``: one keyword opt-out (:func:`dispatcher.suppressions.add`) while the whole
  campaign is pending, i.e. the scan of its unsent messages, and one ByteHand reply linked
  (:func:`dispatcher.replies.latest_sent_to`) once every message was sent;
* ``windows``: microseconds per recipient of :func:`dispatcher.windows.openings` (zone, country
  and next opening of each recipient, the claim-time check and the estimate's
  ``outside_window``), beside a plain loop over the same numbers;
* ``claim_gate``: one feeder window (6,000 queued ids, ByteHand's three seconds of budget)
  through :func:`dispatcher.gates.screen`, with quiet hours and without.

    .venv/bin/python bench/audience.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import TEMPLATE, generate  # noqa: E402
from dispatcher import gates, suppressions  # noqa: E402
from dispatcher.config import load_settings  # noqa: E402
from dispatcher.db import make_engine, migrate  # noqa: E402
from dispatcher.loader import create_campaign  # noqa: E402
from dispatcher.models import Campaign, Message  # noqa: E402
from dispatcher.replies import latest_sent_to  # noqa: E402
from dispatcher.states import MessageState  # noqa: E402
from dispatcher.windows import SendRules, openings  # noqa: E402

NOW = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)  # a Tuesday, 09:30 in Paris
WINDOW = 6000


def _ingest(path: Path, directory: Path, *, with_index: bool, run: int) -> tuple[float, str]:
    url = f"sqlite:///{directory / f'{with_index}-{run}.db'}"
    engine = make_engine(url)
    migrate(engine)
    if with_index:
        with engine.begin() as connection:
            connection.execute(text("CREATE INDEX ix_messages_phone_full ON messages (phone)"))
    started = time.perf_counter()
    create_campaign(
        engine, load_settings({}), path, provider="bytehand", sender="SMSINFO", template=TEMPLATE
    )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, url


def _windows(phones: list[str]) -> dict[str, float]:
    rules = SendRules()
    started = time.perf_counter()
    openings(NOW, rules, phones, None)
    checked = time.perf_counter() - started
    started = time.perf_counter()
    plain = [phone[:8] for phone in phones]
    baseline = time.perf_counter() - started
    assert len(plain) == len(phones)
    per = 1e6 / len(phones)
    return {
        "recipients": len(phones),
        "openings_us_per_recipient": round(checked * per, 3),
        "plain_loop_us_per_recipient": round(baseline * per, 3),
        "ratio": round(checked / baseline, 1),
    }


def _opt_out(url: str) -> dict[str, float]:
    engine = make_engine(url)
    with Session(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        campaign.state = "running"
        phone = session.scalars(select(Message.phone).order_by(Message.id.desc()).limit(1)).one()
        started = time.perf_counter()
        suppressions.add(session, phone, scope="*", source="keyword", reason="STOP", now=NOW)
        opt_out_ms = (time.perf_counter() - started) * 1000
        session.execute(update(Message).values(submitted_at=NOW))
        started = time.perf_counter()
        linked = latest_sent_to(session, "bytehand", phone, NOW - timedelta(days=3))
        link_ms = (time.perf_counter() - started) * 1000
        assert linked is not None
        session.rollback()
    engine.dispose()
    return {"opt_out_ms": round(opt_out_ms, 1), "reply_link_ms": round(link_ms, 2)}


def _claim_gate(url: str) -> dict[str, float]:
    engine = make_engine(url)
    timings = {}
    with Session(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        ids = list(session.scalars(select(Message.id).order_by(Message.id).limit(WINDOW)))
        for label, rules in (("any_time", None), ("quiet_hours", SendRules().to_json())):
            campaign.send_rules = rules
            session.execute(
                update(Message).where(Message.id.in_(ids)).values(state=MessageState.QUEUED)
            )
            session.flush()
            started = time.perf_counter()
            gates.screen(session, campaign, ids, "bytehand", NOW)
            timings[f"{label}_ms"] = round((time.perf_counter() - started) * 1000, 1)
        session.rollback()
    engine.dispose()
    timings["ratio"] = round(timings["quiet_hours_ms"] / timings["any_time_ms"], 1)
    return {"window": WINDOW, **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    csv_path, _parquet = generate(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # Alternated, best of two each: the machine is shared and its load moves.
        bare, indexed = [], []
        for run in range(2):
            elapsed, url = _ingest(csv_path, directory, with_index=False, run=run)
            bare.append(elapsed)
            indexed.append(_ingest(csv_path, directory, with_index=True, run=run)[0])
        bare_s, indexed_s = min(bare), min(indexed)
        engine = make_engine(url)
        with engine.connect() as connection:
            phones = list(connection.scalars(select(Message.phone)))
        engine.dispose()
        random.Random(1).shuffle(phones)
        result = {
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
            "phone_index": {
                "rows": args.rows,
                "as_migrated_s": round(bare_s, 2),
                "full_phone_index_s": round(indexed_s, 2),
                "ratio": round(indexed_s / bare_s, 2),
            },
            "windows": _windows(phones),
            "claim_gate": _claim_gate(url),
            "opt_out": _opt_out(url),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
