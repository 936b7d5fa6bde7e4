"""``dispatcher suppressions ...`` and ``dispatcher replies`` through click, on both databases."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dispatcher import runtime as runtimes
from dispatcher.cli import main
from dispatcher.models import Campaign, InboundMessage, Message, utcnow
from dispatcher.states import MessageState
from tests.conftest import Seed


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A runner whose commands use this test's database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("DISPATCHER_STATE_DIR", str(tmp_path / "state"))
    runtimes.reset()
    yield CliRunner()
    runtimes.current().close()
    runtimes.reset()


def _run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_add_list_remove(cli: CliRunner, seed: Seed, db_engine: Engine) -> None:
    """An ops entry suppresses the number's pending message, is listed with its source, and
    is lifted by remove."""
    _, [mid] = seed(MessageState.PENDING, phone="+33612345678")
    assert "suppressed for *" in _run(cli, "suppressions", "add", "06 12 34 56 78")
    [entry] = [
        json.loads(line) for line in _run(cli, "suppressions", "list", "--json").splitlines()
    ]
    assert (entry["phone"], entry["scope"], entry["source"]) == ("+33612345678", "*", "ops")
    with Session(db_engine) as session:
        assert session.get(Message, mid).state == MessageState.SUPPRESSED  # type: ignore[union-attr]
    assert "1 suppression(s) removed" in _run(cli, "suppressions", "remove", "+33612345678")
    assert _run(cli, "suppressions", "list") == ""


def test_import_then_export(cli: CliRunner, tmp_path: Path) -> None:
    """A CSV of numbers is imported (bad cells counted) and exported with its source."""
    source = tmp_path / "in.csv"
    source.write_text("phone;reason\n0612345678;plainte\n+79161234567;\nnot a number;\n")
    assert "2 numbers suppressed, 1 cells" in _run(cli, "suppressions", "import", str(source))
    out = tmp_path / "out.csv"
    _run(cli, "suppressions", "export", str(out))
    lines = out.read_text().splitlines()
    assert lines[0] == "phone,scope,source,reason,reply_text,created_at"
    assert sorted(line.split(",")[:4] for line in lines[1:]) == [
        ["+33612345678", "*", "import", "plainte"],
        ["+79161234567", "*", "import", "imported"],
    ]


def test_replies_of_one_campaign(cli: CliRunner, seed: Seed, db_engine: Engine) -> None:
    """`replies --campaign` lists only the MOs linked to that campaign's messages."""
    campaign_id, [mid] = seed(MessageState.SENT)
    now = utcnow()
    with Session(db_engine) as session:
        session.add_all(
            [
                InboundMessage(
                    provider="timetochat",
                    from_number="+33612345678",
                    to_number="0938000001",
                    text="Merci c'est super",
                    reply_to_id=mid,
                    dedup_key="a",
                    received_at=now,
                ),
                InboundMessage(
                    provider="timetochat",
                    from_number="+33699999999",
                    to_number="0938000001",
                    text="Qui est-ce ?",
                    dedup_key="b",
                    received_at=now - timedelta(hours=2),
                ),
            ]
        )
        session.commit()
    lines = _run(cli, "replies", "--campaign", str(campaign_id), "--json").splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["Merci c'est super"]
    assert len(_run(cli, "replies", "--since", "1h").splitlines()) == 1


def test_export_has_the_reply(
    cli: CliRunner, seed: Seed, db_engine: Engine, tmp_path: Path
) -> None:
    """`campaign export` carries the latest reply linked to each recipient's message."""
    campaign_id, [answered, _silent] = seed(MessageState.SENT, MessageState.SENT)
    with Session(db_engine) as session:
        for key, text in (("x", "first"), ("y", "Merci c'est super")):
            session.add(
                InboundMessage(
                    provider="bytehand",
                    from_number="+33612345678",
                    to_number="SMSINFO",
                    text=text,
                    reply_to_id=answered,
                    dedup_key=key,
                    received_at=utcnow() + timedelta(seconds=len(key + text)),
                )
            )
        session.commit()
    out = tmp_path / "export.csv"
    _run(cli, "campaign", "export", str(campaign_id), "--out", str(out))

    with out.open() as handle:
        rows = {int(r["line"]): r["reply"] for r in csv.DictReader(handle)}
    assert rows == {0: "Merci c'est super", 1: ""}


def test_cli_start_refused_exits_non_zero(cli: CliRunner, seed: Seed, db_engine: Engine) -> None:
    """A TimeToChat sender that is not a number of the service: one line, exit 2, still draft."""
    campaign_id, [mid] = seed(
        MessageState.PENDING,
        campaign={"state": "draft", "provider": "timetochat", "sender": "0937000000"},
    )
    result = cli.invoke(main, ["campaign", "start", str(campaign_id)])
    assert result.exit_code == 2
    assert "is not a number of the service" in result.output
    with Session(db_engine) as session:
        assert session.get(Campaign, campaign_id).state == "draft"  # type: ignore[union-attr]
        assert session.get(Message, mid).state == MessageState.PENDING  # type: ignore[union-attr]
