"""``dispatcher --help`` starts fast: nothing heavy is imported to render it."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from dispatcher.cli import main

HEAVY = ("pandas", "pyarrow", "celery", "sqlalchemy", "fastapi", "httpx", "redis", "phonenumbers")

_PROBE = f"""
import sys
from click.testing import CliRunner
from dispatcher.cli import main
result = CliRunner().invoke(main, ["--help"])
assert result.exit_code == 0, result.output
assert "campaign" in result.output and "stop" in result.output, result.output
print(" ".join(name for name in {HEAVY!r} if name in sys.modules))
"""


def test_help_imports_nothing_heavy() -> None:
    """Importing the CLI and rendering its help loads none of the heavy libraries."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


def test_campaign_group_still_lists_its_commands() -> None:
    """The campaign group loads its sub-commands when asked for them."""
    result = CliRunner().invoke(main, ["campaign", "--help"])
    assert result.exit_code == 0, result.output
    for name in ("create", "start", "pause", "resume", "status", "resolve-in-doubt", "export"):
        assert name in result.output
