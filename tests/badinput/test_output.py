"""Marketer-supplied names and texts are shown literally by the CLI: rich markup is not run.

(The console's HTML escaping is tests/web/test_console.py::test_names_are_escaped.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatcher.cli import main

NAME = "[red]Soldes[/red] [/oops] [link=http://evil]x[/link]"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite database of this test, and a file named with markup."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("DISPATCHER_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "[bold]list[red].csv"
    path.write_text("phone;first_name\n0601020304;Ann\n", encoding="utf-8")
    return path


def _create(path: Path) -> CliRunner:
    result = CliRunner().invoke(
        main,
        [
            *("campaign", "create", str(path), "--provider", "bytehand", "--sender", "SHOP"),
            *("--text", "Hi {first_name}", "--name", NAME),
        ],
    )
    assert result.exit_code == 0, result.output
    return result


def test_create_prints_the_name_literally(cli_env: Path) -> None:
    """The estimate table's title keeps the brackets (a stray [/oops] used to crash it)."""
    result = _create(cli_env)
    # The centred title may wrap; words are kept whole and no character is lost.
    assert NAME in " ".join(result.stdout.split())


def test_estimate_prints_the_file_name_literally(cli_env: Path) -> None:
    """A file name with brackets is shown as written."""
    result = CliRunner().invoke(
        main, ["estimate", str(cli_env), "--provider", "bytehand", "--text", "Hi"]
    )
    assert result.exit_code == 0, result.output
    assert "[bold]list[red].csv" in result.stdout


def test_status_prints_the_name_literally(cli_env: Path) -> None:
    """``campaign status`` shows the name as stored."""
    _create(cli_env)
    result = CliRunner().invoke(main, ["campaign", "status", "1"])
    assert result.exit_code == 0, result.output
    assert NAME in result.stdout
