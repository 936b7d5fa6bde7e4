"""A test send: the campaign's message to one number, before the campaign goes out.

The test is a campaign of its own (one recipient, the same provider, sender and template,
named ``test of #<id>: <name>``), started at once: it goes through the same claims, limiter
and tracking as any campaign, so what the tester receives is what recipients will receive,
and its delivery can be watched on its page. Placeholders are filled from the first row of
the campaign's kept file (:mod:`dispatcher.sources`), whose number is replaced by the test
number in a ``phone`` column (the name the phone-column search ranks first).
"""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime
from pathlib import Path

from dispatcher import campaigns
from dispatcher.db import session_scope
from dispatcher.errors import InputError
from dispatcher.loader import CampaignSummary, create_campaign
from dispatcher.reading import open_table
from dispatcher.runtime import Runtime
from dispatcher.states import CampaignState

__all__ = ["send_test"]


def _first_row(source: str) -> dict[str, str]:
    path = Path(source) if source else None
    if path is None or not path.is_file():
        return {}
    for chunk in open_table(path, chunk_rows=1).chunks:
        if len(chunk.frame):
            return {str(k): str(v) for k, v in chunk.frame.iloc[0].items()}
    return {}


def send_test(runtime: Runtime, campaign_id: int, phone: str, now: datetime) -> CampaignSummary:
    """Create and start a one-recipient copy of the campaign for ``phone``."""
    with session_scope(runtime.sessions) as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        provider, sender, template = campaign.provider, campaign.sender, campaign.template
        name, source = campaign.name, campaign.source_file
    row = {**_first_row(source), "phone": phone.strip()}
    if not row["phone"]:
        raise InputError("give the number to send the test to", code="no_recipients")
    with tempfile.TemporaryDirectory(prefix="dispatcher-test-send-") as directory:
        path = Path(directory) / "test.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(row))
            writer.writerow(list(row.values()))
        summary = create_campaign(
            runtime.engine,
            runtime.settings,
            path,
            provider=provider,
            sender=sender,
            template=template,
            name=f"test of #{campaign_id}: {name}"[:200],
            phone_column="phone",
            now=now,
        )
    with session_scope(runtime.sessions) as session:
        state = campaigns.start(session, summary.id, now)
    if state != CampaignState.RUNNING:
        raise InputError(f"the test campaign {summary.id} is {state}", code="conflict")
    return summary
