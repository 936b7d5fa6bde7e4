"""Why a recipient failed: the provider's own code and a plain-language label."""

from __future__ import annotations

import pytest

from dispatcher.reasons import SILENT, explain


@pytest.mark.parametrize(
    ("state", "provider", "last_error", "provider_state", "code", "label"),
    [
        (
            "failed",
            "bytehand",
            "bytehand:12 The phone number does not exist.",
            None,
            "bytehand:12",
            "the number does not exist",
        ),
        (
            "failed",
            "timetochat",
            "timetochat:INVALID_RECIPIENT HTTP 400: bad to",
            None,
            "timetochat:INVALID_RECIPIENT",
            "the number was refused as malformed",
        ),
        (
            "undeliverable",
            "timetochat",
            None,
            "CRA_SMS_WRONGNUMBER",
            "CRA_SMS_WRONGNUMBER",
            "the number's format is invalid",
        ),
        ("undeliverable", "bytehand", None, "REJECTED", "REJECTED", "rejected by the operator"),
        ("unknown", "bytehand", None, "UNKNOWN", "UNKNOWN", SILENT),
        ("unknown", "timetochat", None, None, "", SILENT),
        ("in_doubt", "bytehand", "timeout after sending", None, "", "timeout after sending"),
        ("failed", "bytehand", "bytehand:99 Odd.", None, "bytehand:99", "Odd."),
    ],
)
def test_explain(*, state, provider, last_error, provider_state, code, label) -> None:
    """Stored fields give the provider's code and what it means."""
    reason = explain(state, provider, last_error, provider_state)
    assert (reason.code, reason.label) == (code, label)
