"""Quiet hours: when a recipient may receive a campaign, in the recipient's own time zone.

Pure: every function takes ``now`` (an aware datetime) and does no I/O, so the rules are tested
as tables. A campaign's :class:`SendRules` (stored as JSON on the campaign; ``None`` means any
time, for transactional messages) say which hours of which weekdays are open, whether public
holidays of the recipient's country are closed, and which zone to assume when the number does
not tell.

The recipient's zone, in order: the file's ``timezone`` cell (an IANA name); else the number's
zone when :func:`phonenumbers.timezone.time_zones_for_number` gives exactly one; else the
campaign's zone. Russian mobile numbers (+79...) are not tied to a region and give eleven zones,
so they take the campaign's zone (Europe/Moscow for a Russian campaign): the window is then kept
in Moscow time, the zone of most recipients; a file with a ``timezone`` column does better.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers import timezone as phone_zones
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from dispatcher.errors import InputError

__all__ = [
    "DAY_NAMES",
    "SendRules",
    "count_closed",
    "country_of",
    "is_open",
    "next_opening",
    "opening_for",
    "openings",
    "parse_days",
    "parse_window",
    "zone_of",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_SEARCH_DAYS = 400
"""How far :func:`next_opening` looks (a year of holidays and closed days at most)."""


@functools.lru_cache(maxsize=256)
def parse_window(text: str) -> tuple[time, time]:
    """``"08:00-20:00"`` → (08:00, 20:00); the end is exclusive and after the start."""
    found = _WINDOW.match(text)
    if not found:
        raise InputError(f"send window {text!r}: expected HH:MM-HH:MM", code="bad_window")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if h2 == 24 and m2 == 0:
        h2, m2 = 23, 59
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise InputError(f"send window {text!r}: not a time of day", code="bad_window")
    start, end = time(h1, m1), time(h2, m2)
    if end <= start:
        raise InputError(f"send window {text!r}: must end after it starts", code="bad_window")
    return start, end


@functools.lru_cache(maxsize=256)
def parse_days(text: str) -> frozenset[int]:
    """``"mon-sat"`` or ``"mon,wed,fri"`` (or both) → weekday numbers (Monday 0)."""
    days: set[int] = set()
    for item in text.lower().replace(" ", "").split(","):
        first, _, last = item.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise InputError(
                f"send days {text!r}: use mon..sun, e.g. mon-sat or mon,wed,fri",
                code="bad_window",
            )
        a, b = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"time zone {name!r}: not an IANA name", code="bad_window") from exc


@dataclasses.dataclass(frozen=True)
class SendRules:
    """A campaign's quiet hours: open ``window`` on ``days``, closed on holidays if asked."""

    window: str = "08:00-20:00"
    days: str = "mon-sat"
    timezone: str = "Europe/Paris"
    skip_public_holidays: bool = True

    def __post_init__(self) -> None:
        parse_window(self.window)
        parse_days(self.days)
        _zone(self.timezone)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SendRules | None:
        """The stored rules; ``None`` (any time) stays ``None``."""
        return None if data is None else cls(**data)


def country_of(phone: str) -> str | None:
    """The region (ISO 3166 alpha-2) of an E.164 number, or ``None``."""
    return _facts(phone)[1]


@functools.cache
def _key_length(country_code: str) -> int:
    """How many leading digits decide zone and country for one country calling code: its
    longest prefix in ``phonenumbers``' zone table (2 for +33, 4 for +7, 7 for +1)."""
    lengths = [len(k) for k in TIMEZONE_DATA if k.startswith(country_code)]
    return max(lengths, default=len(country_code))


def _prefix(phone: str) -> str:
    """The leading digits under which every number has the same zones and country, so results
    are cached per prefix: a few thousand look-ups for a million recipients, not a million."""
    digits = phone.lstrip("+")
    for size in (1, 2, 3):
        if int(digits[:size] or 0) in COUNTRY_CODE_TO_REGION_CODE:
            return digits[: _key_length(digits[:size])]
    return digits[:TIMEZONE_LONGEST_PREFIX]


def _prefix_facts(phone: str) -> tuple[str | None, str | None]:
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return None, None
    zones = phone_zones.time_zones_for_number(number)
    zone = zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else None
    return zone, phonenumbers.region_code_for_number(number) or None


def _facts(phone: str) -> tuple[str | None, str | None]:
    """(the number's single zone or None, its country), cached per :func:`_prefix`; the
    prefix's length is itself cached per first four digits (they hold the country code)."""
    head = phone[1:5]
    size = _HEAD_SIZES.get(head)
    if size is None:
        size = _HEAD_SIZES[head] = len(_prefix(phone))
    key = phone[1 : 1 + size]
    cached = _PREFIXES.get(key)
    if cached is None:
        cached = _PREFIXES[key] = _prefix_facts(phone)
    return cached


_HEAD_SIZES: dict[str, int] = {}
_PREFIXES: dict[str, tuple[str | None, str | None]] = {}


def zone_of(phone: str, explicit: str | None, default: str) -> str:
    """The recipient's IANA zone: the file's cell, else the number's if it has exactly one,
    else the campaign's ``default``. An unknown name in the file falls back the same way."""
    if explicit and _known_zone(explicit):
        return explicit
    return _facts(phone)[0] or default


@functools.lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year))
    except NotImplementedError:
        return frozenset()


def _open_day(day: date, rules: SendRules, country: str | None) -> bool:
    if day.weekday() not in parse_days(rules.days):
        return False
    return not (rules.skip_public_holidays and country and day in _holidays(country, day.year))


def is_open(now: datetime, rules: SendRules, zone: str, country: str | None) -> bool:
    """Whether a recipient in ``zone`` (of ``country``) may receive a message at ``now``."""
    return next_opening(now, rules, zone, country) == now


def opening_for(now: datetime, rules: SendRules, phone: str, explicit_zone: str | None) -> datetime:
    """:func:`next_opening` for one recipient: zone and country found from the number."""
    zone = zone_of(phone, explicit_zone, rules.timezone)
    return next_opening(now, rules, zone, country_of(phone))


def next_opening(now: datetime, rules: SendRules, zone: str, country: str | None) -> datetime:
    """``now`` if the window is open for that recipient, else the next moment it opens (UTC)."""
    start, end = parse_window(rules.window)
    tz = _zone(zone)
    local = now.astimezone(tz)
    day = local.date()
    for offset in range(_SEARCH_DAYS):
        current = day + timedelta(days=offset)
        if not _open_day(current, rules, country):
            continue
        opens = datetime.combine(current, start, tz)
        closes = datetime.combine(current, end, tz)
        if offset == 0 and opens <= local < closes:
            return now
        if local < opens:
            return opens.astimezone(now.tzinfo)
    raise InputError(f"send window {rules.window} {rules.days} never opens", code="bad_window")


def openings(
    now: datetime, rules: SendRules, phones: Sequence[str], zones: Sequence[str | None] | None
) -> list[datetime]:
    """:func:`next_opening` of each recipient (``now`` when open), computed once per distinct
    (zone, country), not once per recipient."""
    known: dict[tuple[str, str | None], datetime] = {}
    found = []
    for phone, zone in zip(phones, zones or repeat(None), strict=False):
        number_zone, country = _facts(phone)
        if zone and _known_zone(zone):
            number_zone = zone
        key = (number_zone or rules.timezone, country)
        opening = known.get(key)
        if opening is None:
            opening = known[key] = next_opening(now, rules, *key)
        found.append(opening)
    return found


def count_closed(
    now: datetime, rules: SendRules, phones: Sequence[str], zones: Sequence[str | None] | None
) -> int:
    """How many of these recipients are outside their window at ``now`` (for the estimate)."""
    return sum(opening != now for opening in openings(now, rules, phones, zones))
