"""Storing a campaign: one transaction, accepted messages only, schedules checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dispatcher.config import load_settings
from dispatcher.errors import InputError
from dispatcher.loader import create_campaign
from dispatcher.models import Campaign, Message, Suppression

SETTINGS = load_settings({})


def _file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "recipients.csv"
    path.write_text("\n".join(["phone;first_name", *lines]) + "\n", encoding="utf-8")
    return path


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_stores_messages_and_estimate(db_engine: Engine, tmp_path: Path) -> None:
    """Valid, deduplicated, unsuppressed recipients become pending messages."""
    with Session(db_engine) as session:
        session.add(Suppression(phone="+33601020305"))
        session.commit()
    path = _file(tmp_path, ["0601020304;Anne", "+33601020304;Dup", "0601020305;Opt", "x;Bad"])
    summary = create_campaign(
        db_engine, SETTINGS, path, provider="bytehand", sender="SHOP", template="Hi {first_name}"
    )
    with Session(db_engine) as session:
        campaign = session.get(Campaign, summary.id)
        assert campaign is not None and campaign.state == "draft"
        assert campaign.estimate["valid"] == 1 and campaign.estimate["suppressed"] == 1
        message = session.scalars(select(Message)).one()
    assert (message.line, message.phone, message.text) == (1, "+33601020304", "Hi Anne")
    assert (message.state, message.ext_ref, message.parts) == ("pending", f"c{summary.id}-1", 1)
    assert message.updated_at.tzinfo == UTC


def test_error_mid_file_leaves_nothing(db_engine: Engine, tmp_path: Path) -> None:
    """A malformed record after the campaign row is written rolls the whole campaign back."""
    good = [f"06010{i:05d};A" for i in range(300)]
    path = _file(tmp_path, [*good, "0601020399;A;extra;fields", *good])
    with pytest.raises(InputError):
        create_campaign(
            db_engine,
            SETTINGS,
            path,
            provider="bytehand",
            sender="S",
            template="Hi",
        )
    assert _count(db_engine, Campaign) == 0 and _count(db_engine, Message) == 0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"start_at": "2020-01-01T00:00:00Z"}, "past"),
        ({"start_at": "2099-01-01T10:00:00"}, "time zone"),
        ({"start_at": "2099-01-02T00:00:00Z", "validity": "2099-01-01T00:00:00Z"}, "not after"),
        ({"provider": "other"}, "unknown provider"),
    ],
)
def test_bad_campaign_input(
    db_engine: Engine, tmp_path: Path, options: dict[str, str], match: str
) -> None:
    """Bad schedules and providers are input errors and store nothing."""
    path = _file(tmp_path, ["0601020304;A"])
    kwargs = {"provider": "bytehand", "sender": "S", "template": "Hi", **options}
    with pytest.raises(InputError, match=match):
        create_campaign(db_engine, SETTINGS, path, **kwargs)  # type: ignore[arg-type]
    assert _count(db_engine, Campaign) == 0


def test_no_valid_recipient(db_engine: Engine, tmp_path: Path) -> None:
    """A file with no valid number is refused and leaves no campaign."""
    with pytest.raises(InputError, match="no valid recipient"):
        create_campaign(
            db_engine,
            SETTINGS,
            _file(tmp_path, ["junk;A"]),
            provider="bytehand",
            sender="S",
            template="Hi",
        )
    assert _count(db_engine, Campaign) == 0


def test_schedule_stored_aware(db_engine: Engine, tmp_path: Path) -> None:
    """An offset schedule is stored as the same instant."""
    start = datetime.now(UTC) + timedelta(days=1)
    summary = create_campaign(
        db_engine,
        SETTINGS,
        _file(tmp_path, ["0601020304;A"]),
        provider="timetochat",
        sender="0936000000",
        template="Hi",
        start_at=start.isoformat(),
    )
    with Session(db_engine) as session:
        campaign = session.get(Campaign, summary.id)
        assert campaign is not None and campaign.start_at == start


@pytest.mark.parametrize("zoned", [True, False])
def test_multi_row_inserts_keep_every_row_in_file_order(
    db_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zoned: bool
) -> None:
    """Rows written several per statement (whole statements and a shorter tail) all arrive,
    with their own line, number, text, zone and extRef, ids in the order of the lines."""
    monkeypatch.setattr("dispatcher.loader._SQLITE_ROWS", 7)
    zones = ["Asia/Tokyo" if i % 3 else None for i in range(23)]
    rows = [f"06010{i:05d};N{i}" + (f";{zones[i] or ''}" if zoned else "") for i in range(23)]
    header = "phone;first_name;timezone" if zoned else "phone;first_name"
    path = tmp_path / "recipients.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    summary = create_campaign(
        db_engine, SETTINGS, path, provider="bytehand", sender="S", template="Hi {first_name}"
    )
    with Session(db_engine) as session:
        stored = session.execute(
            select(
                Message.line, Message.phone, Message.text, Message.timezone, Message.ext_ref
            ).order_by(Message.id)
        ).all()
    assert [tuple(row) for row in stored] == [
        (
            i + 1,
            f"+336010{i:05d}",
            f"Hi N{i}",
            zones[i] if zoned else None,
            f"c{summary.id}-{i + 1}",
        )
        for i in range(23)
    ]
