"""Secrets in paths and queries never reach the logs (dispatcher.logs)."""

from __future__ import annotations

import logging

import pytest

from dispatcher.logs import RedactSecrets, install_log_redaction, redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/webhooks/timetochat/s3cr3t", "/webhooks/timetochat/***"),
        ("/webhooks/bytehand?id=1&key=abcdefgh&x=1", "/webhooks/bytehand?id=1&key=***&x=1"),
        ("/?token=tok", "/?token=***"),
        ("/campaigns?limit=1", "/campaigns?limit=1"),
        ('"GET /webhooks/bytehand?key=k HTTP/1.1"', '"GET /webhooks/bytehand?key=*** HTTP/1.1"'),
    ],
)
def test_redact(line: str, expected: str) -> None:
    """Secrets become *** and nothing else changes."""
    assert redact(line) == expected


def test_access_log_record_is_redacted() -> None:
    """Uvicorn's access record (path as an argument) is rewritten before formatting."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s"',
        ("1.2.3.4", "POST", "/webhooks/timetochat/s3cr3t"),
        None,
    )
    RedactSecrets().filter(record)
    assert "s3cr3t" not in record.getMessage()


def test_install_is_idempotent() -> None:
    """Installing twice wraps the record factory once, and every logger's records are redacted."""
    install_log_redaction()
    factory = logging.getLogRecordFactory()
    install_log_redaction()
    assert logging.getLogRecordFactory() is factory
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s", ("/?token=tok",), None
    )
    assert record.getMessage() == "/?token=***"
