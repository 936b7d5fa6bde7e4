"""Quiet hours: pure functions of `now`, holidays from the `holidays` tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.errors import InputError
from dispatcher.windows import (
    SendRules,
    count_closed,
    next_opening,
    opening_for,
    parse_days,
    parse_window,
    zone_of,
)

PARIS = SendRules()  # 08:00-20:00, mon-sat, holidays closed, Europe/Paris


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Tuesday 2026-12-01 10:00 Paris (09:00 UTC): open.
        (utc(2026, 12, 1, 9, 0), utc(2026, 12, 1, 9, 0)),
        # Tuesday 20:30 Paris: next opening Wednesday 08:00 Paris (07:00 UTC).
        (utc(2026, 12, 1, 19, 30), utc(2026, 12, 2, 7, 0)),
        # Tuesday 06:00 Paris: opens at 08:00 the same day.
        (utc(2026, 12, 1, 5, 0), utc(2026, 12, 1, 7, 0)),
        # Saturday 2026-12-05 21:00 Paris: Sunday closed, Monday 08:00.
        (utc(2026, 12, 5, 20, 0), utc(2026, 12, 7, 7, 0)),
        # Summer time: Monday 2026-07-13 21:00 Paris; 14 July is a holiday; Wednesday 08:00 CEST.
        (utc(2026, 7, 13, 19, 0), utc(2026, 7, 15, 6, 0)),
    ],
)
def test_next_opening_in_paris(now: datetime, expected: datetime) -> None:
    """The window, the closed Sunday and the French holidays, across DST."""
    assert next_opening(now, PARIS, "Europe/Paris", "FR") == expected


def test_holidays_come_from_the_recipients_country() -> None:
    """1 May is closed in France; 9 May (Victory Day) in Russia, not in France."""
    may_first = utc(2026, 5, 1, 10, 0)  # a Friday
    assert next_opening(may_first, PARIS, "Europe/Paris", "FR") == utc(2026, 5, 2, 6, 0)
    victory = utc(2026, 5, 9, 10, 0)  # a Saturday
    assert next_opening(victory, PARIS, "Europe/Paris", "FR") == victory
    moscow = SendRules(timezone="Europe/Moscow")
    assert next_opening(victory, moscow, "Europe/Moscow", "RU") > victory


def test_holidays_can_be_ignored() -> None:
    """skip_public_holidays = false opens on 14 July."""
    rules = SendRules(skip_public_holidays=False)
    now = utc(2026, 7, 14, 10, 0)
    assert next_opening(now, rules, "Europe/Paris", "FR") == now


def test_zone_of_a_recipient() -> None:
    """The file's zone first, else the number's single zone, else the campaign's."""
    assert zone_of("+33612345678", "America/Cayenne", "Europe/Paris") == "America/Cayenne"
    assert zone_of("+33612345678", None, "UTC") == "Europe/Paris"
    assert zone_of("+12015550123", None, "Europe/Paris") == "America/New_York"
    # Russian mobiles span eleven zones: the campaign's zone decides.
    assert zone_of("+79161234567", None, "Europe/Moscow") == "Europe/Moscow"
    assert zone_of("+33612345678", "Not/AZone", "UTC") == "Europe/Paris"


def test_two_zones_one_open_one_closed() -> None:
    """At 09:30 Paris, a Paris recipient is open, a New York one (03:30) waits for 08:00 EST."""
    now = utc(2026, 12, 1, 8, 30)
    assert opening_for(now, PARIS, "+33612345678", None) == now
    assert opening_for(now, PARIS, "+12015550123", None) == utc(2026, 12, 1, 13, 0)
    assert count_closed(now, PARIS, ["+33612345678", "+12015550123"], None) == 1


@pytest.mark.parametrize(
    ("text", "days"),
    [("mon-sat", {0, 1, 2, 3, 4, 5}), ("mon,wed,fri", {0, 2, 4}), ("fri-mon", {4, 5, 6, 0})],
)
def test_parse_days(text: str, days: set[int]) -> None:
    """Ranges, lists and wrapping ranges."""
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["8-20", "20:00-08:00", "25:00-26:00", ""])
def test_bad_windows_are_refused(text: str) -> None:
    """A window must be HH:MM-HH:MM and end after it starts."""
    with pytest.raises(InputError):
        parse_window(text)
