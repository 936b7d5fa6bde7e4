"""Recipient files → chunks of string columns: CSV (as Excel and CRMs export it) or Parquet.

Every cell comes out as a ``str`` (never a number pandas or Arrow guessed: ``0601020304`` must
keep its zero), stripped of surrounding spaces; an empty or null cell is ``""``. Chunks are
bounded (``chunk_rows``), so memory does not grow with the file.

CSV: the encoding is UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's "Unicode text"),
else Windows-1252 (Excel's "CSV" on a French Windows) when the file is not valid UTF-8. The
delimiter is the one of ``,`` ``;`` tab ``|`` that splits the first records into the most
columns consistently. Quoted fields may hold delimiters and newlines; blank lines are skipped.

``line`` is the 1-based number of the data record (the header is not counted), the same for
CSV and Parquet; in a CSV without blank lines or multi-line cells it is the text line minus one.
A record whose cells are all empty (Excel's trailing ``;;;``) is skipped and counted nowhere.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
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

__all__ = ["Chunk", "Table", "open_table"]

_SAMPLE = 1 << 16
_DELIMITERS = (",", ";", "\t", "|")
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D}
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class Chunk:
    """Up to ``chunk_rows`` records: ``frame`` holds str columns, ``lines`` their numbers."""

    frame: pd.DataFrame
    lines: np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Table:
    """An opened recipient file: its columns, and a one-shot iterator over its chunks."""

    columns: tuple[str, ...]
    kind: str
    size: int
    rows_hint: int
    """Records expected, for a progress bar (CSV: text lines minus the header; an upper bound)."""
    chunks: Iterator[Chunk]


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
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                yield _chunk(batch, columns, first)
                first += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: Parquet data unreadable: {exc}", code="bad_file") from exc

    return Table(columns, "parquet", size, parquet.metadata.num_rows, chunks())


def _encoding(path: Path, head: bytes) -> tuple[str, int]:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252; binary is refused.

    Also counts the newlines on the way, for the progress bar.
    """
    if head.startswith(_UTF16_BOMS):
        return "utf-16", 0
    if any(byte in _CONTROL for byte in head):
        raise InputError(f"{path} is neither CSV nor Parquet (binary content)", code="bad_file")
    # A whole-file strict check: one bad byte on the last line must not pass as UTF-8.
    for encoding in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        newlines = 0
        try:
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    decoder.decode(block)
                    newlines += block.count(b"\n")
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding, newlines
    raise InputError(
        f"{path} is neither UTF-8 nor Windows-1252 text; export it as CSV UTF-8",
        code="bad_encoding",
    )


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
    encoding, newlines = _encoding(path, head)
    sample = head.decode(encoding, errors="ignore").lstrip("\ufeff")
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

    return Table(columns, "csv", size, max(newlines, 1), chunks())


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
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
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
    frame = pd.DataFrame(
        {name: column.to_numpy(zero_copy_only=False) for name, column in arrays.items()}
    )
    return Chunk(frame, lines)
