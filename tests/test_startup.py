"""Each process's start-up lines: one per provider, configured or which settings are unset."""

from __future__ import annotations

import logging
from pathlib import Path

from dispatcher.config import load_settings
from dispatcher.startup import provider_lines

CREDENTIALS = {
    "DISPATCHER_BYTEHAND_ID": "4242",
    "DISPATCHER_BYTEHAND_KEY": "bh-key-SECRET",
    "DISPATCHER_TIMETOCHAT_SERVICE_ID": "777",
    "DISPATCHER_TIMETOCHAT_PASSWORD": "ttc-pass-SECRET",
    "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET": "hook-SECRET",
}


def test_configured_providers_are_info_lines_without_secrets(tmp_path: Path) -> None:
    """Every credential set: two INFO lines naming the accounts, no secret in them."""
    lines = provider_lines(load_settings(CREDENTIALS | {"DISPATCHER_STATE_DIR": str(tmp_path)}))
    assert [level for level, _ in lines] == [logging.INFO, logging.INFO]
    assert lines[0][1] == "bytehand: configured, account 4242 at http://127.0.0.1:3800"
    assert lines[1][1].startswith("timetochat: configured, service 777 at http://127.0.0.1:3900")
    assert not any("SECRET" in line for _, line in lines)


def test_missing_credentials_are_warnings_naming_them(tmp_path: Path) -> None:
    """Nothing set: one WARNING per provider naming the unset variables."""
    lines = provider_lines(load_settings({"DISPATCHER_STATE_DIR": str(tmp_path)}))
    assert lines == [
        (
            logging.WARNING,
            "bytehand: not configured (DISPATCHER_BYTEHAND_ID, DISPATCHER_BYTEHAND_KEY unset)",
        ),
        (
            logging.WARNING,
            "timetochat: not configured "
            "(DISPATCHER_TIMETOCHAT_SERVICE_ID, DISPATCHER_TIMETOCHAT_PASSWORD unset)",
        ),
    ]


def test_missing_webhook_secret_is_a_warning_on_the_provider_line(tmp_path: Path) -> None:
    """Credentials but no webhook secret: TimeToChat's one line warns reports are refused."""
    env = CREDENTIALS | {"DISPATCHER_STATE_DIR": str(tmp_path)}
    del env["DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET"]
    level, line = provider_lines(load_settings(env))[1]
    assert level == logging.WARNING
    assert line.endswith(
        "DISPATCHER_TIMETOCHAT_WEBHOOK_SECRET unset: its delivery reports are refused "
        "and messages settle by polling only"
    )
