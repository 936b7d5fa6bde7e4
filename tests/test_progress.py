"""Progress as handed over and final, and the sentence that says where a campaign is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatcher.progress import describe

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _describe(state: str, counts: dict[str, int], **times: datetime | None):
    values = {"start_at": None, "paused_at": None, "awaiting_until": None} | times
    return describe(state, counts, pause_reason="quota", now=NOW, **values)


def test_awaiting_reports_says_until_when() -> None:
    """All handed over, reports still due: 'sent; awaiting N delivery reports until ...'."""
    until = NOW + timedelta(hours=48)
    progress = _describe("running", {"delivered": 972, "sent": 28}, awaiting_until=until)
    assert (progress.handed_over, progress.final) == (1000, 972)
    assert progress.phase == "awaiting_reports"
    assert (
        progress.summary == f"sent; awaiting 28 delivery reports until {until:%Y-%m-%dT%H:%M}+00:00"
    )


def test_cancelled_is_not_a_full_handed_over_bar() -> None:
    """Cancelled messages are final but were never handed over."""
    progress = _describe("cancelled", {"delivered": 10, "cancelled": 90})
    assert progress.final_percent == 100.0
    assert progress.handed_over_percent == 10.0
    assert progress.summary == "cancelled: 10 of 100 handed over"


def test_scheduled_says_when_it_starts() -> None:
    """A scheduled campaign shows its start time."""
    start = NOW + timedelta(days=1)
    progress = _describe("scheduled", {"pending": 5}, start_at=start)
    assert progress.summary == f"scheduled: starts at {start.isoformat(timespec='minutes')}"


def test_paused_says_why_and_since_when() -> None:
    """A paused campaign shows its reason and time."""
    progress = _describe("paused", {"pending": 5}, paused_at=NOW)
    assert progress.summary == f"paused since {NOW.isoformat(timespec='minutes')}: quota"


def test_sending_counts_both_figures() -> None:
    """While sending, failures refused at send count as handed over and final."""
    progress = _describe("running", {"pending": 5, "submitted": 3, "failed": 2})
    assert (progress.handed_over, progress.final, progress.phase) == (5, 2, "sending")
