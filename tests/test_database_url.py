"""A mistyped ``DATABASE_URL`` is refused at start-up with its password hidden."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.config import load_settings
from dispatcher.errors import ConfigError
from dispatcher.logs import redact, redact_url

PASSWORD = "hunter2-must-not-show"

MISTYPED = [
    f"postgresql+psycopg//ops:{PASSWORD}@db.internal/dispatcher",  # lost its colon
    f"postgres://ops:{PASSWORD}@db.internal/dispatcher",  # a dialect SQLAlchemy lacks
    f"postgresql+psycopg://ops:{PASSWORD}@db.internal:54x2/dispatcher",  # a bad port
    f"mysql://ops:{PASSWORD}@db.internal/dispatcher",  # a driver not installed
]


@pytest.mark.parametrize("url", MISTYPED)
def test_mistyped_database_url_is_refused_without_its_password(url: str) -> None:
    """The error names DATABASE_URL and shows the URL with *** for the password."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": url})
    message = str(caught.value)
    assert message.startswith("DATABASE_URL: ")
    assert PASSWORD not in message
    error = caught.value  # no chained exception whose message could quote the URL
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql+psycopg//u:pw@h/db", "postgresql+psycopg//u:***@h/db"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///state/dispatcher.db", "sqlite:///state/dispatcher.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """The password goes, whatever else is wrong with the URL; the rest stays readable."""
    assert redact_url(url) == shown


def test_log_lines_hide_url_passwords() -> None:
    """A URL with a password quoted in a log line or a traceback is redacted too."""
    line = "could not connect to redis://:s3cret@10.0.0.5:6379/0: refused"
    assert redact(line) == "could not connect to redis://:***@10.0.0.5:6379/0: refused"


def test_cli_error_hides_the_password(tmp_path: Path) -> None:
    """`dispatcher campaign status` with a mistyped URL: one line on stderr, no password."""
    env = {**os.environ, "DATABASE_URL": MISTYPED[0], "DISPATCHER_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", "campaign", "status", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
