"""Recipient numbers: raw cell text → E.164, or a rejection reason.

The answer is defined by :func:`reference_normalize`: undo what spreadsheets do to numbers
(``6.01020304E8``, ``33601020304.0``), then ``phonenumbers.parse`` with the default region,
``is_valid_number`` and ``number_type``. Only numbers that can receive an SMS are kept:

=====================  ==================================================================
reason                 meaning
=====================  ==================================================================
``missing_number``     the cell is empty
``ambiguous_number``   a spreadsheet turned the number into ``3.36012E+10``: digits lost
``invalid_number``     not a number, or not a valid number of its country
``not_a_mobile``       valid, but a landline, toll-free, premium, VoIP... line: in France
                       (and most countries) those cannot receive SMS. Types phonenumbers
                       cannot tell apart (``FIXED_LINE_OR_MOBILE``, e.g. the US) are kept.
=====================  ==================================================================

``phonenumbers`` costs ~50 µs a number, 50 s for a million-row file. :class:`PhoneNormalizer`
gives the same answers in a few µs for the shapes files are made of (digits with spaces,
dots, dashes, parentheses, an optional leading ``+``): it is a port of the few steps of
``parse`` such input goes through, with the metadata's regular expressions compiled once and
the number-type cascade folded into one regular expression per region. Anything outside that
shape (letters, extensions, unknown country codes, non-geographic codes) falls back to
:func:`reference_normalize`. ``tests/test_phones.py`` checks fast == reference on random
and property-generated numbers.
"""

from __future__ import annotations

import re
from typing import Any, Final

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType

__all__ = [
    "AMBIGUOUS",
    "INVALID",
    "MISSING",
    "NOT_MOBILE",
    "PhoneNormalizer",
    "reference_normalize",
    "undo_spreadsheet",
]

MISSING: Final = "missing_number"
AMBIGUOUS: Final = "ambiguous_number"
INVALID: Final = "invalid_number"
NOT_MOBILE: Final = "not_a_mobile"

Result = tuple[str | None, str | None]
"""``(e164, None)`` for a number we can text, ``(None, reason)`` otherwise."""

_SMS_TYPES: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_SCIENTIFIC = re.compile(r"([0-9]+)(?:[.,]([0-9]*))?[eE]\+?([0-9]{1,2})")
_FLOAT_TAIL = re.compile(r"([0-9]+)\.0+")
# The shape the fast path handles: digits and the punctuation people type between them.
_SHAPE = re.compile(r"[(\s]*(\+?)[0-9][0-9\s().\-/]*")
_PUNCTUATION = str.maketrans("", "", " \t\u00a0().-/")
_MAX_INPUT = 250  # phonenumbers refuses longer strings outright
_MIN_NSN = 2
_MAX_NSN = 17


def undo_spreadsheet(raw: str) -> str | None:
    """Undo a spreadsheet's number formatting; ``None`` when digits were lost.

    ``6.01020304E8`` is exactly 601020304 (as many decimals as the exponent), so it is
    recovered; ``3.36012E+10`` was rounded by Excel's display and cannot be, and a float
    tail ``601020304.0`` (a float column) is dropped.
    """
    text = raw.strip()
    if not text or not ("e" in text or "E" in text or "." in text):
        return text
    match = _SCIENTIFIC.fullmatch(text)
    if match:
        whole, decimals, exponent = match.group(1), match.group(2) or "", int(match.group(3))
        if len(decimals) > exponent:
            if decimals[exponent:].strip("0"):
                return text  # not an integer: phonenumbers will refuse it
            decimals = decimals[:exponent]
        if len(decimals) < exponent:
            return None  # the display kept fewer digits than the number has
        return whole + decimals
    match = _FLOAT_TAIL.fullmatch(text)
    return match.group(1) if match else text


def reference_normalize(raw: str, region: str) -> Result:
    """The definition of the answer, one ``phonenumbers`` call chain per number (slow)."""
    text = undo_spreadsheet(raw)
    if text is None:
        return None, AMBIGUOUS
    if not text:
        return None, MISSING
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, INVALID
    if not phonenumbers.is_valid_number(number):
        return None, INVALID
    if phonenumbers.number_type(number) not in _SMS_TYPES:
        return None, NOT_MOBILE
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


class _Fallback(Exception):
    """The fast path meets a case it does not port: ask phonenumbers."""


def _desc_regex(desc: Any) -> str | None:
    """One number description (pattern + possible lengths) as a regular expression."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = "|".join(f".{{{n}}}" for n in desc.possible_length)
    guard = f"(?=(?:{lengths})\\Z)" if lengths else ""
    return f"{guard}(?:{desc.national_number_pattern})\\Z"


_CASCADE: Final = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


class _Region:
    """One region's metadata, with every pattern compiled once."""

    def __init__(self, code: str) -> None:
        md: Any = PhoneMetadata.metadata_for_region(code, None)
        if md is None:
            raise _Fallback(code)
        self.code = code
        self.country_code: int = md.country_code
        general = md.general_desc
        self.general = re.compile(general.national_number_pattern or "(?!)")
        self.lengths: tuple[int, ...] = tuple(general.possible_length)
        self.local_lengths: tuple[int, ...] = tuple(general.possible_length_local_only)
        self.idd = re.compile(md.international_prefix or "NonMatch")
        self.prefix = (
            re.compile(md.national_prefix_for_parsing or "")
            if (md.national_prefix_for_parsing)
            else None
        )
        self.transform: str | None = md.national_prefix_transform_rule or None
        self.leading = re.compile(md.leading_digits) if md.leading_digits is not None else None
        self.types = self._cascade(md)

    @staticmethod
    def _cascade(md: Any) -> re.Pattern[str]:
        """``_number_type_helper`` as one regex: the first alternative that matches wins,
        exactly as the helper tests the types in order."""
        alternatives: list[str] = []
        for name, _kind in _CASCADE:
            regex = _desc_regex(getattr(md, name))
            if regex:
                alternatives.append(f"(?P<{name}>{regex})")
        fixed, mobile = _desc_regex(md.fixed_line), _desc_regex(md.mobile)
        if fixed:
            if md.same_mobile_and_fixed_line_pattern:
                alternatives.append(f"(?P<fixed_or_mobile>{fixed})")
            else:
                if mobile:
                    alternatives.append(f"(?P<fixed_or_mobile>(?={fixed}){mobile})")
                alternatives.append(f"(?P<fixed_line>{fixed})")
        if mobile and not md.same_mobile_and_fixed_line_pattern:
            alternatives.append(f"(?P<mobile>{mobile})")
        general = _desc_regex(md.general_desc) or "(?!)"
        return re.compile(f"(?={general})(?:{'|'.join(alternatives) or '(?!)'})")

    def number_type(self, nsn: str) -> str | None:
        """The cascade's winner (``mobile``, ``fixed_line``...), ``None`` for invalid."""
        match = self.types.match(nsn)
        return match.lastgroup if match else None

    def length_check(self, number: str) -> str:
        """``_test_number_length`` for the general description."""
        size = len(number)
        if size in self.local_lengths:
            return "local"
        if not self.lengths:
            return "invalid"
        if self.lengths[0] == size:
            return "possible"
        if self.lengths[0] > size:
            return "short"
        if self.lengths[-1] < size:
            return "long"
        return "possible" if size in self.lengths[1:] else "invalid"

    def strip_national_prefix(self, number: str) -> str:
        """``_maybe_strip_national_prefix_carrier_code``, keeping only the number."""
        if not number or self.prefix is None:
            return number
        match = self.prefix.match(number)
        if not match:
            return number
        viable = self.general.fullmatch(number) is not None
        groups = match.groups()
        if not self.transform or not groups or groups[-1] is None:
            stripped = number[match.end() :]
        else:
            stripped = self.prefix.sub(self.transform, number, count=1)
        if viable and self.general.fullmatch(stripped) is None:
            return number
        return stripped


_TYPE_OK: Final = frozenset({"mobile", "fixed_or_mobile"})
_COUNTRY_REGIONS: Final = phonenumbers.COUNTRY_CODE_TO_REGION_CODE


class PhoneNormalizer:
    """Normalise raw cells for one default region, fast, with ``phonenumbers``' answers."""

    def __init__(self, region: str) -> None:
        self.region = region.upper()
        self._regions: dict[str, _Region] = {}
        self.home = self._region(self.region)
        self._home_cc = str(self.home.country_code)

    def _region(self, code: str) -> _Region:
        found = self._regions.get(code)
        if found is None:
            found = self._regions[code] = _Region(code)
        return found

    def normalize(self, raw: str | None) -> Result:
        """E.164 or the reason the cell cannot be texted (see the module table)."""
        if raw is None:
            return None, MISSING
        text = undo_spreadsheet(raw)
        if text is None:
            return None, AMBIGUOUS
        if not text:
            return None, MISSING
        if text.isascii() and len(text) <= _MAX_INPUT:
            try:
                if text.isdigit() and len(text) >= 3:
                    return self._fast(text, plus=False)
                if text[0] == "+" and text[1:].isdigit() and len(text) >= 4:
                    return self._fast(text[1:], plus=True)
            except _Fallback:
                return reference_normalize(raw, self.region)
        shape = _SHAPE.fullmatch(text) if len(text) <= _MAX_INPUT else None
        if shape is not None:
            digits = text.translate(_PUNCTUATION)
            plus = shape.group(1) == "+"
            if plus:
                digits = digits[digits.index("+") + 1 :]
            if digits.isdigit() and len(digits) >= 3:
                try:
                    return self._fast(digits, plus=plus)
                except _Fallback:
                    pass
        return reference_normalize(raw, self.region)

    def _fast(self, digits: str, *, plus: bool) -> Result:
        """``parse`` + ``is_valid_number`` + ``number_type`` for a string of digits."""
        split = self._split(digits, plus=plus)
        if split is None:
            return None, INVALID
        country, national = split
        regions = _COUNTRY_REGIONS[country]
        metadata = self._region(regions[0])
        if len(national) < _MIN_NSN:
            return None, INVALID
        stripped = metadata.strip_national_prefix(national)
        if metadata.length_check(stripped) not in ("short", "local", "invalid"):
            national = stripped
        if len(national) > _MAX_NSN:
            return None, INVALID
        kind = self._number_type(regions, national)
        if kind is None:
            return None, INVALID
        if kind not in _TYPE_OK:
            return None, NOT_MOBILE
        return f"+{country}{national}", None

    def _split(self, digits: str, *, plus: bool) -> tuple[int, str] | None:
        """``_maybe_extract_country_code``: (country code, national number), ``None`` if too
        short after an international prefix."""
        home = self.home
        international = plus
        if not plus:
            idd = home.idd.match(digits)
            if idd and digits[idd.end() : idd.end() + 1] != "0":
                digits = digits[idd.end() :]
                international = True
        if international:
            return self._country_code(digits) if len(digits) > _MIN_NSN else None
        if digits.startswith(self._home_cc):
            candidate = home.strip_national_prefix(digits[len(self._home_cc) :])
            if (
                home.general.fullmatch(digits) is None
                and home.general.fullmatch(candidate) is not None
            ) or home.length_check(digits) == "long":
                return home.country_code, candidate
        return home.country_code, digits

    @staticmethod
    def _country_code(digits: str) -> tuple[int, str]:
        """``_extract_country_code``; an unknown or non-geographic code is left to phonenumbers."""
        if digits[0] != "0":
            for size in (1, 2, 3):
                code = int(digits[:size])
                regions = _COUNTRY_REGIONS.get(code)
                if regions is not None:
                    if regions[0] == "001":
                        raise _Fallback(code)
                    return code, digits[size:]
        raise _Fallback(digits)

    def _number_type(self, regions: tuple[str, ...], nsn: str) -> str | None:
        """``region_code_for_number`` then the type cascade of that region."""
        if len(regions) == 1:
            return self._region(regions[0]).number_type(nsn)
        for code in regions:
            region = self._region(code)
            if region.leading is not None:
                if region.leading.match(nsn):
                    return region.number_type(nsn)
            else:
                kind = region.number_type(nsn)
                if kind is not None:
                    return kind
        return None
