"""Campaign creation and estimates: suppression scopes, quiet hours, the opt-out mention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dispatcher import suppressions
from dispatcher.config import load_settings
from dispatcher.loader import create_campaign, default_send_rules, estimate
from dispatcher.models import Campaign, Message

SETTINGS = load_settings({})
TUESDAY_0930_PARIS = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def _file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "recipients.csv"
    path.write_text("\n".join(["phone;timezone", *lines]) + "\n", encoding="utf-8")
    return path


def test_suppressed_number_is_counted_and_excluded_by_scope(
    db_engine: Engine, tmp_path: Path
) -> None:
    """A ByteHand-account opt-out excludes the number from the next ByteHand campaign only."""
    with Session(db_engine) as session:
        suppressions.add(
            session,
            "+33601020305",
            scope=suppressions.scope_for("bytehand", SETTINGS.bytehand.client_id),
            source="keyword",
            reason="STOP",
            now=TUESDAY_0930_PARIS,
        )
        session.commit()
    path = _file(tmp_path, "0601020304;", "0601020305;")
    kept = {}
    for provider, sender in (("bytehand", "SMSINFO"), ("timetochat", "0938000001")):
        summary = create_campaign(
            db_engine, SETTINGS, path, provider=provider, sender=sender, template="Hi STOP au 36111"
        )
        with Session(db_engine) as session:
            phones = session.scalars(select(Message.phone).where(Message.campaign_id == summary.id))
            kept[provider] = (summary.estimate.suppressed, sorted(phones))
    assert kept == {
        "bytehand": (1, ["+33601020304"]),
        "timetochat": (0, ["+33601020304", "+33601020305"]),
    }


def test_french_campaign_without_mention_warns(tmp_path: Path) -> None:
    """French recipients and no "STOP au 36xxx": one warning; with the mention: none."""
    path = _file(tmp_path, "0601020304;")
    bare = estimate(SETTINGS, path, provider="bytehand", template="Promo -20%")
    assert len(bare.warnings) == 1 and "STOP au 36111" in bare.warnings[0]
    fine = estimate(SETTINGS, path, provider="bytehand", template="Promo -20% STOP au 36111")
    assert fine.warnings == []
    russian = _file(tmp_path, "+79161234567;")
    assert estimate(SETTINGS, russian, provider="bytehand", template="Акция").warnings == []


def test_appended_mention_counts_in_parts(db_engine: Engine, tmp_path: Path) -> None:
    """The appended mention is part of the text: 150 characters + it make two parts."""
    path = _file(tmp_path, "0601020304;")
    summary = create_campaign(
        db_engine,
        SETTINGS,
        path,
        provider="bytehand",
        sender="SMSINFO",
        template="x" * 150,
        append_optout=True,
    )
    with Session(db_engine) as session:
        message = session.scalars(select(Message)).one()
    assert message.text == "x" * 150 + " STOP au 36111"
    assert (message.parts, summary.estimate.parts, summary.estimate.warnings) == (2, 2, [])


def test_estimate_counts_recipients_outside_their_window(db_engine: Engine, tmp_path: Path) -> None:
    """At 09:30 Paris a New York number (03:30) and a file zone of Asia/Tokyo (17:30, open)."""
    path = _file(tmp_path, "0601020304;", "+12015550123;", "0601020306;Asia/Tokyo")
    rules = default_send_rules(SETTINGS)
    figures = estimate(
        SETTINGS,
        path,
        provider="bytehand",
        template="Hi STOP au 36111",
        send_rules=rules,
        now=TUESDAY_0930_PARIS,
    )
    assert figures.outside_window == 1
    summary = create_campaign(
        db_engine,
        SETTINGS,
        path,
        provider="bytehand",
        sender="SMSINFO",
        template="Hi STOP au 36111",
        send_rules=rules,
        now=TUESDAY_0930_PARIS,
    )
    with Session(db_engine) as session:
        campaign = session.get(Campaign, summary.id)
        assert campaign is not None and campaign.send_rules == rules.to_json()  # type: ignore[union-attr]
        zones = sorted(z or "" for z in session.scalars(select(Message.timezone)))
    assert zones == ["", "", "Asia/Tokyo"]
