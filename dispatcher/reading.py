"""Recipient files → chunks of string columns: CSV (as Excel and CRMs export it) or Parquet.

Every cell comes out as a ``str`` (never a number pandas or Arrow guessed: ``0601020304`` must
keep its zero), stripped of surrounding spaces; an empty or null cell is ``""``. Chunks are
bounded (``chunk_rows``), so memory does not grow with the file.

CSV: the encoding is UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's "Unicode text"),
else Windows-1252 (Excel's "CSV" on a French Windows) when the file is not valid UTF-8. A file
that mixes the two (some lines UTF-8 with accents, others Windows-1252: two exports pasted
together) is refused, naming one line of each, because any single decoding would silently turn
one half's accents into mojibake; bytes that are neither are refused too, so no cell ever holds
U+FFFD. The delimiter is the one of ``,`` ``;`` tab ``|`` that splits the first records into
the most columns consistently. Quoted fields may hold delimiters and newlines; blank lines are
skipped. A text line longer than 64 KiB is refused at once (a recipient row is never that
long: it is a file without line breaks), which bounds the memory a bad file can take. A file of
one line is a header without data.

``line`` is the 1-based number of the data record (the header is not counted), the same for
CSV and Parquet: it is the message's ``line`` and its ``ext_ref``. What a person is shown (the
reject report) is :attr:`Table.file_lines` of it: the line an editor shows the record starting
on (the header is line 1, and a multi-line quoted cell or a blank line moves later records
down); for Parquet, the record number itself. A record whose cells are all empty (Excel's
trailing ``;;;``) is skipped and counted nowhere.

Cells come out as Arrow string arrays (:attr:`Chunk.columns`): the pipeline works on whole
columns and never builds a Python string per cell it does not need.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dispatcher.errors import InputError

__all__ = ["Chunk", "Table", "describe_columns", "open_table"]

_SAMPLE = 1 << 16
_MAX_LINE = _SAMPLE
"""Longest text line accepted; the header must fit in the sample it is parsed from."""
_BLOCK = 1 << 20
# Where a line may be UTF-8 inside a file that is not: a well-formed multi-byte sequence.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_DELIMITERS = (",", ";", "\t", "|")
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D}
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


Lines = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Chunk:
    """Up to ``chunk_rows`` records: ``columns`` holds string arrays, ``lines`` their numbers."""

    columns: dict[str, pa.Array]
    lines: np.ndarray[Any, np.dtype[np.int64]]

    @property
    def frame(self) -> pd.DataFrame:
        """The columns as a pandas frame of ``str`` (for previews; the pipeline stays in Arrow)."""
        return pd.DataFrame(
            {name: column.to_numpy(zero_copy_only=False) for name, column in self.columns.items()}
        )


@dataclass(frozen=True)
class Table:
    """An opened recipient file: its columns, and a one-shot iterator over its chunks."""

    columns: tuple[str, ...]
    kind: str
    size: int
    rows_hint: int
    """Records expected, for a progress bar (CSV: text lines minus the header; an upper bound)."""
    chunks: Iterator[Chunk]
    file_lines: Callable[[Lines], Lines] = lambda records: records
    """Record numbers → the lines an editor shows them on (CSV: the header is line 1, and a
    record after a multi-line cell or a blank line starts further down); Parquet: the same."""


def open_table(path: Path, *, chunk_rows: int = 50_000) -> Table:
    """Open ``path`` as Parquet or CSV; :class:`InputError` when it is neither."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_SAMPLE)
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {path}", code="no_file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a directory, not a file", code="no_file") from exc
    if not head.strip():
        raise InputError(f"{path} is empty", code="empty_file")
    if head.startswith(b"PAR1"):
        return _open_parquet(path, size, chunk_rows)
    return _open_csv(path, head, size, chunk_rows)


def _open_parquet(path: Path, size: int, chunk_rows: int) -> Table:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file: {exc}", code="bad_file") from exc
    columns = tuple(str(name).strip() for name in parquet.schema_arrow.names)
    _check_columns(path, columns)

    def chunks() -> Iterator[Chunk]:
        first = 1
        try:
            # Decoded in this thread rather than Arrow's pool: each thread that allocates
            # holds memory of its own (a malloc arena), ~10 MB more at the peak, and the
            # columns of a 100,000-row batch take milliseconds to decode.
            for batch in parquet.iter_batches(batch_size=chunk_rows, use_threads=False):
                yield _chunk(batch, columns, first)
                first += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: Parquet data unreadable: {exc}", code="bad_file") from exc

    return Table(columns, "parquet", size, parquet.metadata.num_rows, chunks())


def describe_columns(columns: Sequence[str], shown: int = 12, width: int = 40) -> str:
    """Column names for an error message: a few, each cut short (a bad header can be huge)."""
    names = [name if len(name) <= width else name[: width - 1] + "…" for name in columns[:shown]]
    more = f", … ({len(columns)} columns)" if len(columns) > shown else ""
    return ", ".join(names) + more


def _encoding(path: Path, head: bytes) -> tuple[str, int, bool]:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252; binary, mixed and over-long
    lines are refused.

    One pass over the whole file in blocks of whole lines (one bad byte on the last line must
    not pass as UTF-8); it also counts the newlines, for the progress bar, and tells whether
    every record is one text line (no quote character, no blank line).
    """
    if head.startswith(_UTF16_BOMS):
        return "utf-16", 0, False
    if any(byte in _CONTROL for byte in head):
        raise InputError(f"{path} is neither CSV nor Parquet (binary content)", code="bad_file")
    newlines = 0
    plain = True
    utf8_line: int | None = None  # first line with accents that is valid UTF-8
    other_line: int | None = None  # first line that is not UTF-8
    carry = b""
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if len(data) - cut > _MAX_LINE or _longest_line(data[:cut]) > _MAX_LINE:
                line = newlines + 1 + data[:cut].count(b"\n")
                raise InputError(
                    f"{path}: line {line} is longer than {_MAX_LINE // 1024} KiB; "
                    "a recipient file has one short line per recipient",
                    code="bad_file",
                )
            lines, carry = data[:cut], data[cut:]
            utf8_line, other_line = _classify(lines, newlines, utf8_line, other_line)
            newlines += lines.count(b"\n")
            plain = plain and not _spans_lines(lines, first=newlines == lines.count(b"\n"))
    utf8_line, other_line = _classify(carry, newlines, utf8_line, other_line)
    plain = plain and b'"' not in carry
    if utf8_line is not None and other_line is not None:
        raise InputError(
            f"{path} mixes encodings: line {utf8_line} is UTF-8 but line {other_line} is not; "
            "save the whole file again as CSV UTF-8",
            code="bad_encoding",
        )
    if other_line is None:
        return "utf-8", newlines, plain
    try:
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                block.decode("cp1252")
    except UnicodeDecodeError:
        raise InputError(
            f"{path} is neither UTF-8 nor Windows-1252 text; export it as CSV UTF-8",
            code="bad_encoding",
        ) from None
    return "cp1252", newlines, plain


def _spans_lines(lines: bytes, *, first: bool) -> bool:
    """Whether a record of these whole lines may not be one text line: a quote (a quoted
    field may hold a newline) or a blank line (skipped, so records and lines drift)."""
    return (
        b'"' in lines
        or b"\n\n" in lines
        or b"\n\r\n" in lines
        or (first and lines[:1] in (b"\n", b"\r"))
    )


def _record_lines(path: Path, encoding: str, delimiter: str) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The text line each data record starts on (index 0: record 1), by Python's csv reader,
    for files whose records and lines are not one to one."""
    starts: list[int] = []
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        end = 0
        try:
            for row in reader:
                start, end = end + 1, reader.line_num
                if row:  # a blank line reads as [] and starts no record
                    starts.append(start)
        except csv.Error:
            pass  # Arrow read it; the records past here are numbered as if one line each
    return np.array(starts[1:], dtype=np.int64)  # the first record is the header


def _longest_line(lines: bytes) -> int:
    """Longest line of ``lines`` (whole lines); only computed past the limit's size."""
    if len(lines) <= _MAX_LINE:
        return len(lines)
    return max(map(len, lines.split(b"\n")))


def _classify(
    lines: bytes, before: int, utf8_line: int | None, other_line: int | None
) -> tuple[int | None, int | None]:
    """The first UTF-8 line with accents and the first non-UTF-8 line, updated with ``lines``
    (whole lines, ``before`` newlines into the file). Plain ASCII is both, hence neither."""
    if (utf8_line is not None and other_line is not None) or lines.isascii():
        return utf8_line, other_line

    def line_at(offset: int) -> int:
        return before + 1 + lines.count(b"\n", 0, offset)

    try:
        lines.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    else:
        bad = len(lines)
    bad_line_start = lines.rfind(b"\n", 0, bad) + 1 if bad < len(lines) else bad
    if utf8_line is None and (accent := _NON_ASCII.search(lines, 0, bad_line_start)):
        utf8_line = line_at(accent.start())
    if bad == len(lines):
        return utf8_line, other_line
    if other_line is None:
        other_line = line_at(bad)
    # Past the first bad byte, a line is UTF-8 only if it decodes whole; candidates are rare in
    # Windows-1252 text (an accented capital followed by a symbol), so this stays fast.
    position = bad
    while utf8_line is None and (found := _UTF8_SEQUENCE.search(lines, position)):
        start = lines.rfind(b"\n", 0, found.start()) + 1
        end = lines.find(b"\n", found.end())
        end = len(lines) if end < 0 else end
        try:
            lines[start:end].decode("utf-8")
        except UnicodeDecodeError:
            position = end
        else:
            utf8_line = line_at(found.start())
    return utf8_line, other_line


def _delimiter(sample: str) -> str:
    """The candidate splitting the sampled records into the most columns, consistently."""
    records = sample.splitlines(keepends=True)
    if len(records) > 1 and len(sample.encode()) >= _SAMPLE - 8:
        records = records[:-1]  # the sample may cut the last record in half
    text = "".join(records)
    best, best_width = ",", 1
    for candidate in _DELIMITERS:
        try:
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=candidate) if row]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        if width > best_width and all(len(row) == width for row in rows[:50]):
            best, best_width = candidate, width
    return best


def _open_csv(path: Path, head: bytes, size: int, chunk_rows: int) -> Table:
    encoding, newlines, plain = _encoding(path, head)
    sample = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    if len(sample.strip().splitlines()) < 2:
        raise InputError("the file has no data rows", code="no_rows")
    delimiter = _delimiter(sample)
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    raw_names = [name.lstrip("\ufeff") for name in header]
    columns = tuple(name.strip() for name in raw_names)
    _check_columns(path, columns)
    read_options = pacsv.ReadOptions(
        encoding="utf8" if encoding == "utf-8" else encoding,
        block_size=1 << 22,
        use_threads=True,
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(raw_names, pa.string()), strings_can_be_null=False
    )

    def chunks() -> Iterator[Chunk]:
        first = 1
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        try:
            reader = pacsv.open_csv(
                path,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            for batch in reader:
                pending.append(batch)
                pending_rows += batch.num_rows
                while pending_rows >= chunk_rows:
                    table = pa.Table.from_batches(pending)
                    head_part, rest = table.slice(0, chunk_rows), table.slice(chunk_rows)
                    yield _chunk(head_part, columns, first)
                    first += chunk_rows
                    pending, pending_rows = rest.to_batches(), rest.num_rows
        except pa.ArrowInvalid as exc:
            message = str(exc).splitlines()[0]
            raise InputError(f"{path}: malformed CSV: {message}", code="bad_file") from exc
        if pending_rows:
            yield _chunk(pa.Table.from_batches(pending), columns, first)

    return Table(
        columns,
        "csv",
        size,
        max(newlines, 1),
        chunks(),
        _editor_lines(path, encoding, delimiter, plain),
    )


def _editor_lines(
    path: Path, encoding: str, delimiter: str, plain: bool
) -> Callable[[Lines], Lines]:
    """Record numbers → editor lines: one more (the header) when every record is one line,
    else looked up in the record starts, read once and only if a row is ever reported."""
    if plain:
        return lambda records: records + 1
    starts: list[Lines] = []

    def lookup(records: Lines) -> Lines:
        if not starts:
            starts.append(
                _record_lines(path, "utf-8-sig" if encoding == "utf-8" else encoding, delimiter)
            )
        known = starts[0]
        inside = records <= len(known)
        shown = records + 1 + (known[-1] - len(known) - 1 if len(known) else 0)
        shown[inside] = known[records[inside] - 1]
        return np.asarray(shown, dtype=np.int64)

    return lookup


def _check_columns(path: Path, columns: tuple[str, ...]) -> None:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice", code="bad_columns")
        seen.add(name)


def _chunk(data: pa.Table | pa.RecordBatch, columns: tuple[str, ...], first: int) -> Chunk:
    """Str columns, stripped, nulls as ``""``; all-empty records dropped."""
    arrays: dict[str, Any] = {}
    nonempty = None
    for name, original in zip(columns, data.columns, strict=True):
        column = original
        if not pa.types.is_string(column.type):  # numbers, large_string (pandas' Parquet)
            column = pc.cast(column, pa.string())
        column = pc.fill_null(pc.utf8_trim_whitespace(column), "")
        filled = pc.not_equal(pc.utf8_length(column), 0)
        nonempty = filled if nonempty is None else pc.or_(nonempty, filled)
        arrays[name] = column
    lines = np.arange(first, first + data.num_rows, dtype=np.int64)
    if nonempty is not None and not pc.all(nonempty).as_py():
        mask = nonempty.to_numpy(zero_copy_only=False)
        arrays = {name: pc.filter(column, nonempty) for name, column in arrays.items()}
        lines = lines[mask]
    return Chunk({name: _combined(column) for name, column in arrays.items()}, lines)


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column
