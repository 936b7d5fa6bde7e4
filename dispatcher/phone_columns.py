"""Whole-column number normalisation: :class:`~dispatcher.phones.PhoneNormalizer`'s answers for
a column of cells at once, with pyarrow compute (RE2) instead of one Python call a row.

The port covers the shape nearly every cell has: ASCII digits with the punctuation people type
(spaces, dots, dashes, parentheses, a leading ``+``), no spreadsheet damage. For those cells it
replays :meth:`PhoneNormalizer._fast` step by step as column operations, with the same metadata
patterns (a Python ``re.match`` is a leftmost-first match, as RE2's): international prefix,
country code, national prefix, length classes, and the number-type cascade, evaluated per
(country, length) group so each type's possible lengths are a plain filter. Every cell the port
does not decide (another shape, a non-geographic or unknown country code, a national prefix
with a transform rule, a region whose patterns RE2 refuses) is answered by
:meth:`PhoneNormalizer.normalize` itself, so the answers are the same by construction for
those, and checked equal for the rest by ``tests/test_phone_columns.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from dispatcher.phones import INVALID, MISSING, NOT_MOBILE, PhoneNormalizer

__all__ = ["normalize_column"]

# The shape the port handles, edges not blank (reading strips cells; Python strips more).
_SHAPE = r"^\(*[( \t\x{a0}]*\+?[0-9][0-9 \t\x{a0}().\-/]*$"
_BLANK_EDGE = r"^[ \t\x{a0}]|[ \t\x{a0}]$"
_FLOAT_TAIL = r"^[0-9]+\.0+$"  # undo_spreadsheet's business
_MARKS = ("+", " ", "(", ")", "-", ".", "/", "\t", "\xa0")  # all a shaped cell holds but digits
_MAX_INPUT = 250
_MIN_NSN = 2
_MAX_NSN = 17
# length_check's classes; the fast path keeps the unstripped number for the first three.
_SHORT, _LOCAL, _INVALID, _POSSIBLE, _LONG = range(5)
_EARLY_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_UNDECIDED, _OK, _NOT_MOBILE, _NO_TYPE = range(4)

Bools = np.ndarray[Any, np.dtype[np.bool_]]


def _match(values: pa.Array, pattern: str) -> Bools:
    return np.asarray(pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False))


def _full(values: pa.Array, pattern: str | None) -> Bools:
    if not pattern:
        return np.zeros(len(values), dtype=bool)
    return _match(values, f"^(?:{pattern})$")


def _lengths(values: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.asarray(pc.utf8_length(values).to_numpy(zero_copy_only=False), dtype=np.int64)


class _Meta:
    """One region's pattern sources, checked to compile under RE2."""

    def __init__(self, code: str) -> None:
        md: Any = PhoneMetadata.metadata_for_region(code, None)
        if md is None:
            raise LookupError(code)
        general = md.general_desc
        self.general: str = general.national_number_pattern or ""
        self.lengths = tuple(general.possible_length)
        self.local_lengths = tuple(general.possible_length_local_only)
        self.idd: str | None = md.international_prefix or None
        self.prefix: str | None = md.national_prefix_for_parsing or None
        self.transform = bool(md.national_prefix_transform_rule)
        self.leading: str | None = md.leading_digits
        self.same_pattern = bool(md.same_mobile_and_fixed_line_pattern)
        self.early = [self._desc(getattr(md, name)) for name in _EARLY_TYPES]
        self.fixed = self._desc(md.fixed_line)
        self.mobile = self._desc(md.mobile)
        probe = pa.array(["0"])
        for pattern in (self.general, self.idd, self.prefix, self.leading, self.fixed[0]):
            if pattern:
                pc.match_substring_regex(probe, f"^(?:{pattern})")  # raises if RE2 refuses
        for pattern, _lengths_of in (*self.early, self.mobile):
            if pattern:
                pc.match_substring_regex(probe, f"^(?:{pattern})")

    @staticmethod
    def _desc(desc: Any) -> tuple[str | None, tuple[int, ...]]:
        if desc is None or not desc.national_number_pattern:
            return None, ()
        return desc.national_number_pattern, tuple(desc.possible_length)

    def length_class(self, size: int) -> int:
        """``_Region.length_check`` as a class number."""
        if size in self.local_lengths:
            return _LOCAL
        if not self.lengths:
            return _INVALID
        if self.lengths[0] == size:
            return _POSSIBLE
        if self.lengths[0] > size:
            return _SHORT
        if self.lengths[-1] < size:
            return _LONG
        return _POSSIBLE if size in self.lengths[1:] else _INVALID

    def length_classes(self, sizes: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        table = np.array([self.length_class(n) for n in range(_MAX_INPUT + 2)])
        return np.asarray(table[np.minimum(sizes, _MAX_INPUT + 1)])

    def strip_prefix(self, numbers: pa.Array) -> tuple[pa.Array, Bools]:
        """``strip_national_prefix`` of each number, and where a transform rule would apply
        (left to Python)."""
        count = len(numbers)
        if self.prefix is None or count == 0:
            return numbers, np.zeros(count, dtype=bool)
        anchored = f"^(?:{self.prefix})"
        matched = _match(numbers, anchored) & (_lengths(numbers) > 0)
        if self.transform:
            return numbers, matched
        stripped = pc.replace_substring_regex(numbers, anchored, "", max_replacements=1)
        keep = ~matched | (_full(numbers, self.general) & ~_full(stripped, self.general))
        return pc.if_else(pa.array(keep), numbers, stripped), np.zeros(count, dtype=bool)

    def kinds(self, numbers: pa.Array) -> np.ndarray[Any, Any]:
        """The type cascade per number: ``_OK``, ``_NOT_MOBILE`` or ``_NO_TYPE``."""
        sizes = _lengths(numbers)
        result = np.full(len(numbers), _NO_TYPE)
        for size in np.unique(sizes).tolist():
            rows = np.flatnonzero(sizes == size)
            group = numbers.take(pa.array(rows))
            result[rows] = self._kinds_of_size(group, size)
        return result

    def _kinds_of_size(self, numbers: pa.Array, size: int) -> np.ndarray[Any, Any]:
        def fits(desc: tuple[str | None, tuple[int, ...]]) -> str | None:
            pattern, lengths = desc
            return pattern if pattern and (not lengths or size in lengths) else None

        result = np.full(len(numbers), _NO_TYPE)
        general = fits((self.general, self.lengths))
        if general is None:
            return result
        valid = _full(numbers, general)
        early = [p for p in map(fits, self.early) if p]
        is_early = _full(numbers, "|".join(f"(?:{p})" for p in early)) if early else valid & False
        fixed = _full(numbers, fits(self.fixed))
        mobile_pattern = fits(self.mobile)
        if self.same_pattern:
            ok, not_mobile = fixed, valid & False
        else:
            mobile = _full(numbers, mobile_pattern)
            ok, not_mobile = mobile, fixed & ~mobile
        result[valid & ok] = _OK
        result[valid & not_mobile] = _NOT_MOBILE
        result[valid & is_early] = _NOT_MOBILE
        return result


@cache
def _meta(code: str) -> _Meta | None:
    try:
        return _Meta(code)
    except (LookupError, pa.ArrowException):
        return None


def _country_codes() -> dict[str, int]:
    return {str(code): code for code, regions in COUNTRY_CODE_TO_REGION_CODE.items()}


_CODES = _country_codes()
_GEOGRAPHIC = pa.array([c for c, n in _CODES.items() if COUNTRY_CODE_TO_REGION_CODE[n][0] != "001"])
_ALL_CODES = pa.array(list(_CODES))


def normalize_column(
    normalizer: PhoneNormalizer, cells: pa.Array
) -> tuple[pa.Array, dict[int, str]]:
    """``normalizer.normalize`` of every cell: the E.164 numbers (null where refused) and the
    reason of each refused position."""
    count = len(cells)
    cells = pc.cast(cells, pa.string())
    home = _meta(normalizer.region)
    numbers: pa.Array = pa.nulls(count, pa.string())
    reasons: dict[int, str] = {}
    if home is None:
        return _python(normalizer, cells, np.ones(count, dtype=bool), numbers, reasons)
    sizes = _lengths(cells)
    for row in np.flatnonzero(sizes == 0).tolist():
        reasons[row] = MISSING
    plain = _match(cells, r"^\+?[0-9]+$")  # nearly every cell: no punctuation to take out
    digits = pc.if_else(pa.array(_match(cells, r"^\+")), pc.utf8_slice_codeunits(cells, 1), cells)
    shaped = plain.copy()
    other = np.flatnonzero(~plain & (sizes > 0) & (sizes <= _MAX_INPUT))
    if len(other):
        cut = cells.take(pa.array(other))
        fits = _match(cut, _SHAPE) & ~_match(cut, _BLANK_EDGE) & ~_match(cut, _FLOAT_TAIL)
        shaped[other] = fits
        cleaned = cut
        for mark in _MARKS:  # literal replaces: 3x faster than one "[^0-9]" regex
            cleaned = pc.replace_substring(cleaned, mark, "")
        digits = pc.replace_with_mask(digits, pa.array(np.isin(np.arange(count), other)), cleaned)
    shaped &= _lengths(digits) >= 3
    rows = np.flatnonzero(shaped)
    port = _Port(normalizer, home, cells.take(pa.array(rows)), digits.take(pa.array(rows)))
    decided = port.status != _UNDECIDED
    decided &= ~port.left
    ok = decided & (port.status == _OK)
    if ok.any():
        mask = np.zeros(count, dtype=bool)
        mask[rows[ok]] = True
        numbers = pc.replace_with_mask(numbers, pa.array(mask), port.e164.filter(pa.array(ok)))
    for position in np.flatnonzero(decided & ~ok).tolist():
        reasons[int(rows[position])] = _REASONS[int(port.status[position])]
    left = np.ones(count, dtype=bool)
    left[rows[decided]] = False
    left[sizes == 0] = False
    return _python(normalizer, cells, left, numbers, reasons)


_REASONS = {_NO_TYPE: INVALID, _NOT_MOBILE: NOT_MOBILE}


def _python(
    normalizer: PhoneNormalizer,
    cells: pa.Array,
    left: Bools,
    numbers: pa.Array,
    reasons: dict[int, str],
) -> tuple[pa.Array, dict[int, str]]:
    """The rows the port left undecided, one :meth:`PhoneNormalizer.normalize` call each."""
    rows = np.flatnonzero(left)
    if not len(rows):
        return numbers, reasons
    found: list[str] = []
    accepted = np.zeros(len(cells), dtype=bool)
    values = cells.take(pa.array(rows)).to_pylist()
    answers: dict[str, tuple[str | None, str | None]] = {}  # junk cells repeat ("n/a")
    for row, value in zip(rows.tolist(), values, strict=True):
        answer = answers.get(value)
        if answer is None:
            answer = answers[value] = normalizer.normalize(value)
        number, reason = answer
        if number is None:
            reasons[row] = reason or INVALID
        else:
            accepted[row] = True
            found.append(number)
    if found:
        numbers = pc.replace_with_mask(numbers, pa.array(accepted), pa.array(found, pa.string()))
    return numbers, reasons


def _patch(base: pa.Array, rows: np.ndarray[Any, Any], values: pa.Array) -> pa.Array:
    """``base`` with ``values`` at ``rows`` (ascending, one value each)."""
    if not len(rows):
        return base
    mask = np.zeros(len(base), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(base, pa.array(mask), values)


def _split_country(numbers: pa.Array) -> tuple[np.ndarray[Any, Any], pa.Array, Bools]:
    """``_country_code`` of international digit strings: codes, national parts, and the rows
    it leaves to phonenumbers (a leading 0, a non-geographic or unknown code)."""
    count = len(numbers)
    codes = np.zeros(count, dtype=np.int64)
    national = numbers
    left = _match(numbers, "^0")
    assigned = left.copy()
    for size in (1, 2, 3):
        head = pc.utf8_slice_codeunits(numbers, 0, size)
        known = np.asarray(pc.is_in(head, _ALL_CODES).to_numpy(zero_copy_only=False))
        hit = known & ~assigned
        geographic = np.asarray(pc.is_in(head, _GEOGRAPHIC).to_numpy(zero_copy_only=False))
        left |= hit & ~geographic
        chosen = hit & geographic
        if chosen.any():
            values = np.asarray(pc.cast(pc.if_else(pa.array(chosen), head, "0"), pa.int64()))
            codes[chosen] = values[chosen]
            national = pc.if_else(
                pa.array(chosen), pc.utf8_slice_codeunits(numbers, size), national
            )
        assigned |= hit
    return codes, national, left | ~assigned


class _Port:
    """``_split`` then ``_fast`` over digit strings: a status per row (``left`` for the rows
    that need Python) and the E.164 text of the accepted ones."""

    def __init__(
        self, normalizer: PhoneNormalizer, home: _Meta, cells: pa.Array, digits: pa.Array
    ) -> None:
        count = len(cells)
        self.status = np.full(count, _UNDECIDED)
        self.left = np.zeros(count, dtype=bool)
        international = np.asarray(pc.match_substring(cells, "+").to_numpy(zero_copy_only=False))
        numbers = digits
        if home.idd:
            rows = np.flatnonzero(~international)
            candidates = digits.take(pa.array(rows))
            found = _match(candidates, f"^(?:{home.idd})")
            after = pc.replace_substring_regex(
                candidates.filter(pa.array(found)), f"^(?:{home.idd})", "", max_replacements=1
            )
            dialled = ~_match(after, "^0")
            rows = rows[found][dialled]
            international[rows] = True
            numbers = _patch(numbers, rows, after.filter(pa.array(dialled)))
        sizes = _lengths(numbers)
        self.status[international & (sizes <= _MIN_NSN)] = _NO_TYPE
        countries = np.zeros(count, dtype=np.int64)
        national = numbers
        rows = np.flatnonzero(international & (sizes > _MIN_NSN))
        if len(rows):
            codes, tails, left = _split_country(numbers.take(pa.array(rows)))
            countries[rows] = codes
            self.left[rows] = left
            national = _patch(national, rows, tails)
        # Home numbers written with the country code but no "+" (a spreadsheet ate it).
        countries[~international] = normalizer.home.country_code
        prefix = str(normalizer.home.country_code)
        rows = np.flatnonzero(~international)
        domestic = numbers.take(pa.array(rows))
        with_code = np.asarray(pc.starts_with(domestic, prefix).to_numpy(zero_copy_only=False))
        if with_code.any():
            rows, domestic = rows[with_code], domestic.filter(pa.array(with_code))
            candidate, transformed = home.strip_prefix(
                pc.utf8_slice_codeunits(domestic, len(prefix))
            )
            self.left[rows[transformed]] = True
            swap = (~_full(domestic, home.general) & _full(candidate, home.general)) | (
                home.length_classes(sizes[rows]) == _LONG
            )
            national = _patch(national, rows[swap], candidate.filter(pa.array(swap)))
        self.numbers = numbers
        self.national = national
        self.countries = countries
        open_rows = (self.status == _UNDECIDED) & ~self.left
        self.e164: pa.Array = pa.nulls(count, pa.string())
        for code in np.unique(countries[open_rows]).tolist():
            self._country(int(code), np.flatnonzero(open_rows & (countries == code)))

    def _country(self, code: int, rows: np.ndarray[Any, Any]) -> None:
        regions: Sequence[str] = COUNTRY_CODE_TO_REGION_CODE[code]
        metas = [_meta(region) for region in regions]
        if any(meta is None for meta in metas):
            self.left[rows] = True
            return
        first = metas[0]
        assert first is not None
        national = self.national.take(pa.array(rows))
        sizes = _lengths(national)
        short = sizes < _MIN_NSN
        stripped, transformed = first.strip_prefix(national)
        keep = np.isin(first.length_classes(_lengths(stripped)), (_SHORT, _LOCAL, _INVALID))
        national = pc.if_else(pa.array(keep), national, stripped)
        sizes = _lengths(national)
        kinds = np.full(len(rows), _UNDECIDED)
        if len(metas) == 1:  # one region: its cascade, whatever its leading digits
            kinds = first.kinds(national)
        for meta in metas if len(metas) > 1 else ():
            assert meta is not None
            open_rows = kinds == _UNDECIDED
            if meta.leading is not None:
                hit = open_rows & _match(national, f"^(?:{meta.leading})")
                if hit.any():
                    kinds[hit] = meta.kinds(national.filter(pa.array(hit)))
            else:
                found = meta.kinds(national.filter(pa.array(open_rows)))
                sub = kinds[open_rows]
                sub[found != _NO_TYPE] = found[found != _NO_TYPE]
                kinds[open_rows] = sub
        kinds[kinds == _UNDECIDED] = _NO_TYPE
        kinds[sizes > _MAX_NSN] = _NO_TYPE
        kinds[short] = _NO_TYPE
        self.status[rows] = kinds
        self.left[rows[transformed & ~short]] = True
        joined = pc.binary_join_element_wise(f"+{code}", national, "")
        mask = np.zeros(len(self.status), dtype=bool)
        mask[rows] = True
        self.e164 = pc.replace_with_mask(self.e164, pa.array(mask), joined)
