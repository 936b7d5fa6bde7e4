"""Recipient file → valid, deduplicated, rendered messages, and the estimate of what they cost.

One pipeline serves the estimate (nothing stored) and the campaign creation
(:mod:`dispatcher.loader` stores what it yields). Per chunk of the file:

1. the phone cell → E.164 or a reason (:mod:`dispatcher.phones`);
2. duplicates: the first row of a number is kept, later ones are ``duplicate`` however the
   number was written (deduplication comes before everything below);
3. suppressed numbers (the ``suppressions`` table) are dropped and counted;
4. the template is rendered (:mod:`dispatcher.templates`), optionally smart-encoded, analysed
   (:mod:`dispatcher.sms`), and a text over the provider's limit is rejected with
   :func:`~dispatcher.sms.check_limits`' reason; an empty text is rejected as ``empty_text``.

Every rejected row can be written to a CSV (``line,phone,reason``) for the marketer.

Speed: analysis is per distinct text (cached), and texts made only of GSM-7 basic characters,
the common case, are counted vectorised (one part up to ``gsm7_single`` characters, else
``ceil(n / gsm7_part)``), exactly what :func:`~dispatcher.sms.analyze` finds for them.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dispatcher import sms
from dispatcher.config import PartSizes, Settings
from dispatcher.constants import BYTEHAND, PROVIDERS
from dispatcher.errors import InputError
from dispatcher.phones import PhoneNormalizer
from dispatcher.reading import Chunk, Table, describe_columns, open_table
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
        }


@dataclass(frozen=True)
class Batch:
    """Accepted recipients of one chunk, in file order, as parallel lists."""

    lines: list[int]
    phones: list[str]
    texts: list[str]
    encodings: list[str]
    parts: list[int]


@dataclass(frozen=True)
class _TextInfo:
    text: str
    encoding: str
    parts: int
    forcing: tuple[str, ...]
    limit: str | None
    saved: int


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
        suppressed: Collection[str] = frozenset(),
        chunk_rows: int = 50_000,
    ) -> None:
        if provider not in PROVIDERS:
            raise InputError(
                f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)}",
                code="bad_provider",
            )
        account = settings.bytehand if provider == BYTEHAND else settings.timetochat
        self.sizes: PartSizes = account.parts
        region = (region or settings.default_region).upper()
        try:
            self.normalizer = PhoneNormalizer(region)
        except Exception as exc:
            raise InputError(f"unknown region {region!r}", code="bad_region") from exc
        self.table: Table = open_table(path, chunk_rows=chunk_rows)
        self.phone_column = find_phone_column(self.table.columns, phone_column)
        self.template: Template = compile_template(template, self.table.columns)
        self.smart_encoding = smart_encoding
        self.suppressed = suppressed
        self.estimate = Estimate(provider, Decimal(str(account.price_per_part)), smart_encoding)
        self._first_line: dict[str, int] = {}
        self._texts: dict[str, _TextInfo] = {}

    def batches(
        self, *, rejects: TextIO | None = None, progress: Progress | None = None
    ) -> Iterator[Batch]:
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
                writer.writerows(sorted(rejected))
            if progress is not None:
                progress(int(chunk.lines[-1]) if len(chunk.lines) else 0, self.table.rows_hint)
            if batch.lines:
                yield batch
        if self.estimate.rows == 0:
            raise InputError("the file has no data rows", code="no_rows")

    def _process(self, chunk: Chunk) -> tuple[Batch, list[tuple[int, str, str]]]:
        estimate = self.estimate
        raw = chunk.frame[self.phone_column].tolist()
        lines = chunk.lines.tolist()
        estimate.rows += len(raw)
        normalize = self.normalizer.normalize
        first_line, suppressed = self._first_line, self.suppressed
        rejected: list[tuple[int, str, str]] = []
        keep: list[int] = []
        phones: list[str] = []
        for index, cell in enumerate(raw):
            e164, reason = normalize(cell)
            line = lines[index]
            if e164 is None:
                estimate.invalid[reason or "invalid_number"] += 1
                rejected.append((line, cell, reason or "invalid_number"))
            elif e164 in first_line:
                estimate.duplicates += 1
                rejected.append((line, cell, f"duplicate of line {first_line[e164]}"))
            else:
                first_line[e164] = line
                if e164 in suppressed:
                    estimate.suppressed += 1
                    rejected.append((line, cell, "suppressed"))
                else:
                    keep.append(index)
                    phones.append(e164)
        frame = chunk.frame.iloc[keep] if len(keep) != len(raw) else chunk.frame
        infos = self._analyze(self.template.render(frame) if keep else [])
        batch = Batch([], [], [], [], [])
        for index, e164, info in zip(keep, phones, infos, strict=True):
            reason = info.limit if info.parts else "empty_text"
            if reason is not None:
                estimate.invalid[reason.partition(":")[0]] += 1
                rejected.append((lines[index], raw[index], reason))
                continue
            batch.lines.append(lines[index])
            batch.phones.append(e164)
            batch.texts.append(info.text)
            batch.encodings.append(info.encoding)
            batch.parts.append(info.parts)
            estimate.valid += 1
            estimate.encodings[info.encoding] += 1
            estimate.parts_histogram[info.parts] += 1
            estimate.parts += info.parts
            estimate.parts_saved += info.saved
            estimate.ucs2_forcing.update(info.forcing)
        return batch, rejected

    def _analyze(self, texts: Any) -> list[_TextInfo]:
        """Per text: the final text, its encoding and parts, and any limit it breaks."""
        if self.template.is_constant and len(texts):
            return [self._slow(texts[0])] * len(texts)
        array = pa.array(texts, type=pa.string())
        basic = pc.match_substring_regex(array, _BASIC_ONLY).to_numpy(zero_copy_only=False)
        lengths = pc.utf8_length(array).to_numpy(zero_copy_only=False)
        sizes = self.sizes
        char_cap = sizes.max_gsm7_chars or math.inf
        part_cap = sizes.max_parts or math.inf
        parts = np.where(lengths <= sizes.gsm7_single, 1, -(-lengths // sizes.gsm7_part)).tolist()
        fast = (basic & (lengths > 0) & (lengths <= char_cap)).tolist()
        infos: list[_TextInfo] = []
        for index, text in enumerate(texts):
            if fast[index] and parts[index] <= part_cap:
                infos.append(_TextInfo(text, sms.GSM7, parts[index], (), None, 0))
            else:
                infos.append(self._slow(text))
        return infos

    def _slow(self, text: str) -> _TextInfo:
        """:func:`sms.analyze` (after :func:`sms.smart_encode` if asked), cached per text."""
        found = self._texts.get(text)
        if found is not None:
            return found
        final = sms.smart_encode(text, self.sizes) if self.smart_encoding else text
        info = sms.analyze(final, self.sizes)
        saved = sms.analyze(text, self.sizes).parts - info.parts if final != text else 0
        found = _TextInfo(
            final,
            info.encoding,
            info.parts,
            info.ucs2_forcing,
            sms.check_limits(info, self.sizes),
            saved,
        )
        if len(self._texts) >= _CACHE_LIMIT:
            self._texts.clear()
        self._texts[text] = found
        return found
