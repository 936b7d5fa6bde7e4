"""``dispatcher campaign list`` and ``dispatcher campaign delete`` through click."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatcher.cli import main
from dispatcher.runtime import current, reset


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings pointing at a SQLite file of this test, and a small recipient file; the
    process's runtime is rebuilt from them (operator commands use it)."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("DISPATCHER_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "r.csv"
    path.write_text("phone;first_name\n0601020304;Anne\n", encoding="utf-8")
    reset(None)
    yield path
    current().close()
    reset(None)


def _create(path: Path) -> int:
    result = CliRunner().invoke(
        main,
        ["campaign", "create", str(path), "--provider", "bytehand", "--sender", "SHOP",
         "--text", "Bonjour {first_name}", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def test_list_newest_first_with_filters(env: Path) -> None:
    """--json gives the API's page: newest first, filtered by state."""
    first, second = _create(env), _create(env)
    result = CliRunner().invoke(main, ["campaign", "list", "--state", "draft", "--json"])
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert ([item["id"] for item in page["items"]], page["total"]) == ([second, first], 2)
    none = CliRunner().invoke(main, ["campaign", "list", "--state", "running", "--json"])
    assert json.loads(none.stdout)["total"] == 0


def test_delete_removes_the_draft_and_its_kept_file(env: Path, tmp_path: Path) -> None:
    """A deleted draft is gone, with the copy of its file."""
    campaign_id = _create(env)
    kept = tmp_path / "state" / "sources" / f"campaign-{campaign_id}.csv"
    assert kept.is_file()
    result = CliRunner().invoke(main, ["campaign", "delete", str(campaign_id)])
    assert result.exit_code == 0, result.output
    assert not kept.exists()
    listed = CliRunner().invoke(main, ["campaign", "list", "--json"])
    assert json.loads(listed.stdout)["total"] == 0


def test_status_says_where_the_campaign_is(env: Path) -> None:
    """`campaign status` gives progress as handed over and final, and the sentence."""
    campaign_id = _create(env)
    result = CliRunner().invoke(main, ["campaign", "status", str(campaign_id), "--json"])
    assert result.exit_code == 0, result.output
    progress = json.loads(result.stdout)["progress"]
    assert (progress["handed_over"], progress["final"], progress["phase"]) == (0, 0, "draft")
    text = CliRunner().invoke(main, ["campaign", "status", str(campaign_id)]).output
    assert "draft: 1 recipients, not started (0.0% handed over, 0.0% final)" in text
