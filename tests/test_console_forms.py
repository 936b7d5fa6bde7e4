"""The console's form fields become the API's: local times get the reader's zone."""

from __future__ import annotations

import pytest

from dispatcher.console.forms import campaign_fields, local_time
from dispatcher.errors import InputError


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026-12-01T09:00", "Europe/Paris", "2026-12-01T09:00:00+01:00"),
        ("2026-07-01T09:00", "Europe/Paris", "2026-07-01T09:00:00+02:00"),
        ("2026-12-01T09:00", "UTC", "2026-12-01T09:00:00+00:00"),
        ("2026-12-01T09:00:00+03:00", "Europe/Paris", "2026-12-01T09:00:00+03:00"),
        ("", "Europe/Paris", ""),
        ("tomorrow", "Europe/Paris", "tomorrow"),
    ],
)
def test_local_time(value: str, zone: str, expected: str) -> None:
    """A datetime-local value is read in the reader's zone; anything else is passed on."""
    assert local_time(value, zone) == expected


def test_unknown_zone_is_an_input_error() -> None:
    """A zone that does not exist is refused, not guessed."""
    with pytest.raises(InputError):
        local_time("2026-12-01T09:00", "Mars/Olympus")


def test_campaign_fields() -> None:
    """Only the API's fields are kept; a ticked box is true; empty times are left out."""
    fields = {
        "csrf": "x",
        "timezone": "Europe/Paris",
        "provider": "bytehand",
        "sender": "SHOP",
        "text": "Hi",
        "start_at": "2026-12-01T09:00",
        "validity": "",
        "smart_encoding": "on",
        "priority": "low",
    }
    assert campaign_fields(fields) == {
        "provider": "bytehand",
        "sender": "SHOP",
        "text": "Hi",
        "priority": "low",
        "start_at": "2026-12-01T09:00:00+01:00",
        "smart_encoding": "true",
    }
