"""Recipient file → valid, deduplicated, rendered messages, and the estimate of what they cost.

One pipeline serves the estimate (nothing stored) and the campaign creation
(:mod:`dispatcher.loader` stores what it yields). Per chunk of the file:

1. the phone cell → E.164 or a reason (:mod:`dispatcher.phone_columns`, whole columns, with
   :mod:`dispatcher.phones` for the cells it leaves);
2. duplicates: the first row of a number is kept, later ones are ``duplicate`` however the
   number was written (deduplication comes before everything below);
3. suppressed numbers (the ``suppressions`` table) are dropped and counted;
4. the template is rendered (:mod:`dispatcher.templates`), optionally smart-encoded, analysed
   (:mod:`dispatcher.sms`), and a text over the provider's limit is rejected with
   :func:`~dispatcher.sms.check_limits`' reason; an empty text is rejected as ``empty_text``.

Every rejected row can be written to a CSV (``line,phone,reason``) for the marketer, ``line``
as an editor numbers the file (:attr:`~dispatcher.reading.Table.file_lines`), its cells made
safe to open in a spreadsheet (:mod:`dispatcher.spreadsheet`).

Speed: every step is a whole-column operation (Arrow compute, numpy); Python runs only for the
cells and distinct texts those cannot decide. :func:`~dispatcher.sms.analyze` stays the one
definition of encoding and parts: it runs once per distinct rendered text, and once per length
for the texts made only of GSM-7 basic characters (for those the answer depends on the length
alone), never once per row. Where the time goes is in ``docs/architecture.md``.
"""

from __future__ import annotations

import csv
import ctypes
import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Generator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dispatcher import sms
from dispatcher.config import PartSizes, Settings
from dispatcher.constants import BYTEHAND, PROVIDERS, TIMETOCHAT
from dispatcher.dedup import FirstLines, number_keys
from dispatcher.errors import InputError
from dispatcher.phone_columns import normalize_column
from dispatcher.phones import PhoneNormalizer
from dispatcher.reading import Chunk, Table, describe_columns, open_table
from dispatcher.spreadsheet import defuse_row
from dispatcher.templates import Template, compile_template, fold_name

__all__ = [
    "PHONE_COLUMN_NAMES",
    "Batch",
    "Estimate",
    "Pipeline",
    "Progress",
    "find_phone_column",
]

Progress = Callable[[int, int], None]
"""Called with (records read so far, records expected) after every chunk."""

PHONE_COLUMN_NAMES = (
    "phone",
    "phonenumber",
    "phone_number",
    "mobile",
    "mobilephone",
    "mobile_number",
    "cell",
    "cellphone",
    "msisdn",
    "tel",
    "tél",
    "telephone",
    "téléphone",
    "numero",
    "numéro",
    "num",
    "portable",
    "gsm",
    "sms",
    "to",
    "номер",
    "телефон",
    "мобильный",
    "сотовый",
)
_PHONE_NAMES = {fold_name(name): rank for rank, name in enumerate(PHONE_COLUMN_NAMES)}
_BASIC_ONLY = "^[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in sorted(sms.GSM7_BASIC)) + "]*$"
_CACHE_LIMIT = 200_000
_ZONE_NAMES = frozenset({"timezone", "time_zone", "tz", "fuseau", "fuseau_horaire"})
_FRENCH = ("+33", "+262", "+508", "+590", "+594", "+596")
"""France and its overseas departments: where the CNIL's opt-out mention is owed."""
_FRENCH_PATTERN = "^(?:" + "|".join(re.escape(prefix) for prefix in _FRENCH) + ")"


@cache
def _use_system_allocator() -> None:
    """Arrow allocates from the C library's ``malloc`` in a process that ingests, unless
    ``ARROW_DEFAULT_MEMORY_POOL`` chose otherwise: pyarrow's default, mimalloc, kept 16-32 MB
    more resident for the same million rows (its freed pages stay with the process), which
    took the ingest's peak over 300 MB, for no CPU difference measurable here. Process-wide,
    as Arrow's pool is; buffers already allocated are still freed to the pool they came from."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())


_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter for the size from which ``malloc`` maps memory of its own."""
_MMAP_THRESHOLD = 1 << 20


@cache
def _pin_mmap_threshold() -> None:
    """glibc maps allocations of 1 MiB and more apart from its heap, so freeing one gives it
    back at once, unless ``MALLOC_MMAP_THRESHOLD_`` or ``GLIBC_TUNABLES`` chose otherwise.

    glibc starts at 128 KiB but raises the threshold to the size of every mapped block freed
    (up to 32 MiB): once the dedup arrays (8 MB each by the end) have been replaced a few
    times, every buffer under that size comes from the heap, whose freed pages stay resident,
    spread over one arena per thread (the read-ahead thread, Arrow's). Pinned, the heap keeps
    what is reused chunk after chunk: a list or an int64 column of 100,000 rows (800 KB). A
    million-row campaign peaks ~20 MB lower; the 1-2 MB buffers of each chunk are mapped
    afresh (~35% more page faults on CSV, under 0.1 CPU s). At 512 KiB the 800 KB buffers
    would be mapped too, for 0.4 CPU s more. Process-wide, like Arrow's pool; nothing is done
    on another C library (``docs/architecture.md`` has the figures)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in tunables:
        return
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):  # not a name this system knows
        libc = ""
    if libc.startswith("glibc"):
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def _accepted_numbers(numbers: pa.Array, keep: np.ndarray[Any, Any]) -> tuple[list[str], int]:
    """The accepted rows' E.164 numbers, and how many are French (one column pass rather
    than a Python call per number: 0.25 s a million)."""
    accepted = numbers.take(pa.array(keep, pa.int64()))
    french = pc.sum(pc.match_substring_regex(accepted, _FRENCH_PATTERN)).as_py() or 0
    return accepted.to_pylist(), int(french)


def find_phone_column(columns: tuple[str, ...], explicit: str | None) -> str:
    """The column holding the numbers: ``explicit`` (loosely matched), else a known name."""
    if explicit:
        matches = [c for c in columns if c == explicit] or [
            c for c in columns if fold_name(c) == fold_name(explicit)
        ]
        if len(matches) != 1:
            raise InputError(
                f"no column {explicit!r} in the file (columns: {describe_columns(columns)})",
                code="no_phone_column",
            )
        return matches[0]
    known = [(rank, c) for c in columns if (rank := _PHONE_NAMES.get(fold_name(c))) is not None]
    if not known:
        raise InputError(
            f"no phone column found (columns: {describe_columns(columns)}); "
            "name it with --phone-column",
            code="no_phone_column",
        )
    return min(known)[1]


@dataclass
class Estimate:
    """What a file would give: the figures shown before sending, stored on the campaign."""

    provider: str
    price_per_part: Decimal
    smart_encoding: bool
    rows: int = 0
    valid: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    suppressed: int = 0
    encodings: Counter[str] = field(default_factory=Counter)
    parts_histogram: Counter[int] = field(default_factory=Counter)
    parts: int = 0
    parts_saved: int = 0
    ucs2_forcing: Counter[str] = field(default_factory=Counter)
    first_reject: tuple[int, str] | None = None
    """The first rejected row's line and reason, to explain a file with no valid row."""
    encoding_policy: sms.EncodingPolicy = "auto"
    renders_differently: Counter[str] = field(default_factory=Counter)
    """Latin-1 letters sent in GSM-7 (``latin1`` policy): the operator may show another one."""
    french: int = 0
    """Valid recipients with French numbers (metropolitan and overseas)."""
    outside_window: int | None = None
    """Valid recipients outside their sending window now (``None``: any time)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        """Total price of the valid messages' parts."""
        return sms.cost(self.parts, self.price_per_part)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; ``ucs2_forcing`` maps each character to the messages it forced."""
        return {
            "provider": self.provider,
            "rows": self.rows,
            "valid": self.valid,
            "invalid": dict(sorted(self.invalid.items())),
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "encodings": dict(sorted(self.encodings.items())),
            "parts_histogram": {str(k): v for k, v in sorted(self.parts_histogram.items())},
            "parts": self.parts,
            "price_per_part": float(self.price_per_part),
            "cost": float(self.cost),
            "ucs2_forcing": {
                ch: {"messages": n, "name": sms.char_name(ch)}
                for ch, n in self.ucs2_forcing.most_common()
            },
            "smart_encoding": self.smart_encoding,
            "parts_saved": self.parts_saved if self.smart_encoding else None,
            "encoding_policy": self.encoding_policy,
            "renders_differently": {
                ch: {"messages": n, "name": sms.char_name(ch)}
                for ch, n in self.renders_differently.most_common()
            },
            "french": self.french,
            "outside_window": self.outside_window,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Batch:
    """Accepted recipients of one chunk, in file order, as parallel lists."""

    lines: list[int]
    phones: list[str]
    texts: list[str]
    encodings: list[str]
    parts: list[int]
    zones: list[str | None] | None = None
    """The file's ``timezone`` cells, when it has that column (quiet hours)."""


@dataclass(frozen=True)
class _TextInfo:
    text: str
    encoding: str
    parts: int
    forcing: tuple[str, ...]
    limit: str | None
    saved: int
    renders: tuple[str, ...]


class Pipeline:
    """One pass over a recipient file; iterate :meth:`batches`, then read :attr:`estimate`."""

    def __init__(
        self,
        settings: Settings,
        path: Path,
        *,
        provider: str,
        template: str,
        phone_column: str | None = None,
        region: str | None = None,
        smart_encoding: bool = False,
        encoding: sms.EncodingPolicy = "auto",
        suppressed: Collection[str] = frozenset(),
        chunk_rows: int = 100_000,
    ) -> None:
        if provider not in PROVIDERS:
            raise InputError(
                f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)}",
                code="bad_provider",
            )
        if encoding not in sms.ENCODING_POLICIES or (encoding != "auto" and provider != TIMETOCHAT):
            raise InputError(
                f"encoding {encoding!r}: TimeToChat campaigns choose auto, unicode or latin1; "
                "ByteHand sends auto only",
                code="bad_encoding",
            )
        account = settings.bytehand if provider == BYTEHAND else settings.timetochat
        self.sizes: PartSizes = account.parts
        region = (region or settings.default_region).upper()
        try:
            self.normalizer = PhoneNormalizer(region)
        except Exception as exc:
            raise InputError(f"unknown region {region!r}", code="bad_region") from exc
        _use_system_allocator()
        _pin_mmap_threshold()
        self.table: Table = open_table(path, chunk_rows=chunk_rows)
        self.phone_column = find_phone_column(self.table.columns, phone_column)
        self.template: Template = compile_template(template, self.table.columns)
        self.zone_column = next(
            (c for c in self.table.columns if fold_name(c) in _ZONE_NAMES), None
        )
        self.smart_encoding = smart_encoding
        self.suppressed = suppressed
        self.encoding_policy = encoding
        self.estimate = Estimate(
            provider,
            Decimal(str(account.price_per_part)),
            smart_encoding,
            encoding_policy=encoding,
        )
        self._seen = FirstLines()
        self._suppressed = number_keys(suppressed)
        self._texts: dict[str, _TextInfo] = {}

    def batches(
        self, *, rejects: TextIO | None = None, progress: Progress | None = None
    ) -> Generator[Batch, None, None]:
        """Accepted recipients chunk by chunk; rejected rows go to ``rejects`` as CSV."""
        writer = csv.writer(rejects) if rejects is not None else None
        if writer is not None:
            writer.writerow(["line", "phone", "reason"])
        for chunk in self.table.chunks:
            batch, rejected = self._process(chunk)
            if rejected and self.estimate.first_reject is None:
                line, _phone, reason = min(rejected)
                self.estimate.first_reject = (line, reason)
            if writer is not None:
                writer.writerows(map(defuse_row, sorted(rejected)))
            if progress is not None:
                progress(int(chunk.lines[-1]) if len(chunk.lines) else 0, self.table.rows_hint)
            if batch.lines:
                yield batch
            pa.default_memory_pool().release_unused()  # ~20 MB less peak RSS a million rows
        if self.estimate.rows == 0:
            raise InputError("the file has no data rows", code="no_rows")

    def _process(self, chunk: Chunk) -> tuple[Batch, list[tuple[int, str, str]]]:
        """Whole-column passes (Arrow, numpy); Python only for the rows and distinct texts the
        column passes cannot decide."""
        estimate = self.estimate
        raw = chunk.columns[self.phone_column]
        lines = chunk.lines
        estimate.rows += len(raw)
        numbers, reasons = normalize_column(self.normalizer, raw)
        rejected: list[tuple[int, str, str]] = []
        if reasons:
            refused = sorted(reasons)
            cells = raw.take(pa.array(refused)).to_pylist()
            for row, cell in zip(refused, cells, strict=True):
                estimate.invalid[reasons[row]] += 1
                rejected.append((row, cell, reasons[row]))
        keep = np.flatnonzero(np.asarray(numbers.is_valid().to_numpy(zero_copy_only=False)))
        keys = np.asarray(
            pc.cast(pc.utf8_slice_codeunits(numbers.take(pa.array(keep)), 1), pa.uint64())
        )
        firsts = self._seen.first_lines(keys, lines[keep])
        repeat = firsts != lines[keep]
        if repeat.any():
            rows = keep[repeat]
            cells = raw.take(pa.array(rows)).to_pylist()
            shown = self.table.file_lines(firsts[repeat]).tolist()  # the editor's lines
            for row, cell, first in zip(rows.tolist(), cells, shown, strict=True):
                estimate.duplicates += 1
                rejected.append((row, cell, f"duplicate of line {first}"))
            keep, keys = keep[~repeat], keys[~repeat]
        if len(self._suppressed):
            blocked = np.isin(keys, self._suppressed)
            if blocked.any():
                rows = keep[blocked]
                cells = raw.take(pa.array(rows)).to_pylist()
                for row, cell in zip(rows.tolist(), cells, strict=True):
                    estimate.suppressed += 1
                    rejected.append((row, cell, "suppressed"))
                keep = keep[~blocked]
        taken = pa.array(keep, pa.int64())
        columns = {name: chunk.columns[name].take(taken) for name in self.template.columns}
        texts = self.template.render_columns(columns, len(keep))
        final, encodings, parts, failed = self._analyze(texts)
        if failed:
            positions = sorted(failed)
            rows = keep[positions]
            cells = raw.take(pa.array(rows)).to_pylist()
            for row, cell, position in zip(rows.tolist(), cells, positions, strict=True):
                rejected.append((row, cell, failed[position]))
            ok = np.ones(len(keep), dtype=bool)
            ok[positions] = False
            keep = keep[ok]
        phones, french = _accepted_numbers(numbers, keep)
        estimate.valid += len(keep)
        estimate.french += french
        zones = self._zones(chunk, keep)
        if rejected:  # chunk rows → the lines an editor shows them on
            shown = self.table.file_lines(lines[[row for row, _cell, _reason in rejected]])
            rejected = [
                (line, cell, reason)
                for line, (_row, cell, reason) in zip(shown.tolist(), rejected, strict=True)
            ]
        return Batch(lines[keep].tolist(), phones, final, encodings, parts, zones), rejected

    def _zones(self, chunk: Chunk, keep: np.ndarray[Any, Any]) -> list[str | None] | None:
        """The file's ``timezone`` cells of the kept rows, when it has that column."""
        if self.zone_column is None:
            return None
        cells = chunk.columns[self.zone_column].take(pa.array(keep, pa.int64())).to_pylist()
        return [cell if isinstance(cell, str) and cell else None for cell in cells]

    def _analyze(self, texts: pa.Array) -> tuple[list[str], list[str], list[int], dict[int, str]]:
        """Final texts, encodings and parts of the accepted positions, and the reason of each
        position refused; the estimate's text figures are added here.

        :func:`sms.analyze` runs once per distinct text, and once per length for the texts
        made only of GSM-7 basic characters (their encoding, parts and limits depend on the
        length alone), never once per row.
        """
        if not len(texts):
            return [], [], [], {}
        encoded = pc.dictionary_encode(texts)
        uniques = encoded.dictionary
        indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        weights = np.bincount(indices, minlength=len(uniques))
        lengths = np.asarray(pc.utf8_length(uniques).to_numpy(zero_copy_only=False))
        basic = np.asarray(
            pc.match_substring_regex(uniques, _BASIC_ONLY).to_numpy(zero_copy_only=False)
        ) & (lengths > 0)
        values: list[str] = uniques.to_pylist()
        # Under the auto policy a basic GSM-7 text's analysis depends on its length alone;
        # another policy (unicode, latin1) decides by the characters, so each text is analysed.
        by_length_exact = self.encoding_policy == "auto"
        by_length: dict[int, _TextInfo] = {}
        infos: list[_TextInfo] = []
        finals: list[str] = []
        for position, value in enumerate(values):
            if basic[position] and by_length_exact:
                size = int(lengths[position])
                info = by_length.get(size)
                if info is None:
                    info = by_length[size] = self._slow(value)
                finals.append(value)
            else:
                info = self._slow(value)
                finals.append(info.text)
            infos.append(info)
        estimate = self.estimate
        refused: dict[int, str] = {}
        for position, (info, weight) in enumerate(zip(infos, weights.tolist(), strict=True)):
            reason = info.limit if info.parts else "empty_text"
            if reason is not None:
                refused[position] = reason
                estimate.invalid[reason.partition(":")[0]] += weight
                continue
            estimate.encodings[info.encoding] += weight
            estimate.parts_histogram[info.parts] += weight
            estimate.parts += info.parts * weight
            estimate.parts_saved += info.saved * weight
            for ch in info.forcing:
                estimate.ucs2_forcing[ch] += weight
            for ch in info.renders:
                estimate.renders_differently[ch] += weight
        failed: dict[int, str] = {}
        if refused:
            bad = np.zeros(len(values), dtype=bool)
            bad[list(refused)] = True
            failed = {
                row: refused[int(indices[row])] for row in np.flatnonzero(bad[indices]).tolist()
            }
            indices = indices[~bad[indices]]
        parts = np.array([info.parts for info in infos], dtype=np.int64)
        rows = indices.tolist()
        return (
            [finals[i] for i in rows],
            [infos[i].encoding for i in rows],
            parts[indices].tolist(),
            failed,
        )

    def _slow(self, text: str) -> _TextInfo:
        """:func:`sms.analyze` (after :func:`sms.smart_encode` if asked), cached per text."""
        found = self._texts.get(text)
        if found is not None:
            return found
        final = sms.smart_encode(text, self.sizes) if self.smart_encoding else text
        policy = self.encoding_policy
        info = sms.analyze(final, self.sizes, policy=policy)
        saved = (
            sms.analyze(text, self.sizes, policy=policy).parts - info.parts if final != text else 0
        )
        found = _TextInfo(
            final,
            info.encoding,
            info.parts,
            info.ucs2_forcing,
            sms.check_limits(info, self.sizes),
            saved,
            info.renders_differently,
        )
        if len(self._texts) >= _CACHE_LIMIT:
            self._texts.clear()
        self._texts[text] = found
        return found
