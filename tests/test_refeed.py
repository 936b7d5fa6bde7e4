"""A tick redelivered after its worker died enqueues again what is queued (SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from dispatcher.config import load_settings
from dispatcher.pipeline import refeed_queued
from dispatcher.runtime import Runtime
from dispatcher.states import CampaignState, MessageState
from tests.conftest import Seed

M = MessageState


def test_refeed_enqueues_every_queued_message_of_running_campaigns(
    db_engine: Engine, db_url: str, seed: Seed, tmp_path: Path
) -> None:
    """Queued messages of running campaigns go to the broker again, in batches; nothing else."""
    bytehand, bytehand_ids = seed(M.QUEUED, M.QUEUED, M.PENDING, M.SENDING)
    timetochat, timetochat_ids = seed(M.QUEUED, M.QUEUED, campaign={"provider": "timetochat"})
    seed(M.QUEUED, campaign={"state": CampaignState.PAUSED})
    runtime = Runtime(
        load_settings({"DATABASE_URL": db_url, "DISPATCHER_STATE_DIR": str(tmp_path)})
    )
    enqueued: list[tuple[str, int, list[list[int]]]] = []

    refed = refeed_queued(runtime, lambda *task: enqueued.append(task))

    assert refed == {bytehand: 2, timetochat: 2}
    assert sorted(enqueued) == [
        ("bytehand", bytehand, [bytehand_ids[:2]]),
        ("timetochat", timetochat, [[timetochat_ids[0]], [timetochat_ids[1]]]),
    ]
