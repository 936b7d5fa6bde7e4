"""``dispatcher estimate`` and ``dispatcher campaign create`` through click."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.cli import main
from dispatcher.db import make_engine
from dispatcher.models import Campaign


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing at a SQLite file of this test."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("DISPATCHER_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "r.csv"
    path.write_text("phone;first_name\n0601020304;Anne\n0601020304;B\nx;C\n", encoding="utf-8")
    return path


def _campaigns(tmp_path: Path) -> int:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Campaign)) or 0
    engine.dispose()
    return count


def test_estimate_json(env: Path) -> None:
    """--json prints one object with the estimate keys."""
    result = CliRunner().invoke(
        main,
        [
            "estimate",
            str(env),
            "--text",
            "Bonjour {first_name}",
            "--provider",
            "bytehand",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert {
        "rows",
        "valid",
        "invalid",
        "duplicates",
        "suppressed",
        "parts",
        "cost",
        "encodings",
        "parts_histogram",
        "ucs2_forcing",
    } <= figures.keys()
    assert (figures["rows"], figures["valid"], figures["duplicates"]) == (3, 1, 1)


def test_estimate_table(env: Path) -> None:
    """Without --json the figures are a table."""
    result = CliRunner().invoke(
        main, ["estimate", str(env), "--text", "Hi", "--provider", "timetochat"]
    )
    assert result.exit_code == 0 and "valid" in result.stdout


def test_create_json(env: Path, tmp_path: Path) -> None:
    """campaign create stores a draft and prints its id."""
    result = CliRunner().invoke(
        main,
        [
            "campaign",
            "create",
            str(env),
            "--provider",
            "bytehand",
            "--sender",
            "SHOP",
            "--text",
            "Hi {first_name}",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] >= 1 and _campaigns(tmp_path) == 1


def test_create_stores_the_priority(env: Path, tmp_path: Path) -> None:
    """``--priority high`` is stored on the campaign (its share of the account's budget)."""
    result = CliRunner().invoke(
        main,
        [
            *("campaign", "create", str(env), "--provider", "bytehand", "--sender", "SHOP"),
            *("--text", "Hi", "--priority", "high", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Session(engine) as session:
        assert session.scalars(select(Campaign.priority)).all() == ["high"]
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "no such file"),
        (["{file}", "--text", "Hi {city}"], "{city}"),
        (["{file}", "--phone-column", "nope"], "no column 'nope'"),
    ],
)
def test_create_errors(env: Path, tmp_path: Path, args: list[str], message: str) -> None:
    """Bad input: one error line, exit 2, nothing stored."""
    args = [a.replace("{file}", str(env)) for a in args]
    if "--text" not in args:
        args += ["--text", "Hi"]
    result = CliRunner().invoke(
        main, ["campaign", "create", *args, "--provider", "bytehand", "--sender", "S"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert _campaigns(tmp_path) == 0


def test_estimate_latin1_names_letters_that_may_show_differently(env: Path) -> None:
    """--encoding latin1: GSM-7 parts, and the table names the ê an operator may render."""
    text = "Bonjour {first_name}, votre fenêtre est confirmée"
    args = ["estimate", str(env), "--text", text, "--provider", "timetochat"]
    result = CliRunner().invoke(main, [*args, "--encoding", "latin1"])
    assert result.exit_code == 0, result.output
    assert "encoding GSM-7" in result.stdout
    assert "may show differently: 'ê'" in result.stdout
    refused = CliRunner().invoke(main, [*args, "--encoding", "latin9"])
    assert refused.exit_code == 2
