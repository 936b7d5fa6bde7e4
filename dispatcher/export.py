"""Campaign exports: every recipient with its fate, beside the columns of the file it came from.

One row per recipient (message), in file order: first the file's own columns as the marketer
uploaded them (read back from the copy kept with the campaign, :mod:`dispatcher.sources`, and
joined by line number), then ours: state, the reason in the provider's code and in plain
language (:mod:`dispatcher.reasons`), the provider's id, timestamps, and the latest reply the
recipient sent (``inbound_messages.reply_to_id``). A file column whose name is one of ours is
renamed ``<name> (file)``. Without the kept file (a campaign stored before files were kept),
only our columns are written.

CSV cells go through :func:`dispatcher.spreadsheet.defuse`: a recipient file's ``=cmd|...`` is
shown, never run, when the marketer opens the export. Both formats are written in chunks, so
memory does not grow with the campaign: messages and file records are both read in line order
and merged as they come.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, select

from dispatcher.errors import InputError
from dispatcher.models import Campaign, InboundMessage, Message
from dispatcher.reading import open_table
from dispatcher.reasons import explain
from dispatcher.spreadsheet import defuse

__all__ = ["EXPORT_COLUMNS", "export_messages"]

log = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "line",
    "phone",
    "state",
    "reason_code",
    "reason",
    "provider_state",
    "provider_message_id",
    "ext_ref",
    "parts",
    "attempts",
    "submitted_at",
    "final_at",
    "reply",
    "replied_at",
)
CHUNK = 50_000

_FROM_DB = (
    "line",
    "phone",
    "state",
    "last_error",
    "provider_state",
    "provider_message_id",
    "ext_ref",
    "parts",
    "attempts",
    "submitted_at",
    "final_at",
)


class _SourceRows:
    """The kept file's records in line order, handed out for ranges of lines."""

    def __init__(self, path: Path | None) -> None:
        self.columns: tuple[str, ...] = ()
        self._chunks: Iterator[Any] = iter(())
        self._buffer = pd.DataFrame()
        if path is None or not path.is_file():
            return
        try:
            table = open_table(path, chunk_rows=CHUNK)
        except InputError:
            log.warning("export: the kept file %s cannot be read; our columns only", path)
            return
        self.columns = table.columns
        self._chunks = table.chunks
        self._buffer = pd.DataFrame(columns=["__line", *self.columns])

    def upto(self, last_line: int) -> pd.DataFrame:
        """Records up to ``last_line`` not handed out yet (indexed by line)."""
        if not self.columns:
            return pd.DataFrame(index=pd.Index([], name="__line"))
        while self.columns and (
            self._buffer.empty or int(self._buffer["__line"].iloc[-1]) < last_line
        ):
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            frame = chunk.frame.copy()
            frame.insert(0, "__line", chunk.lines)
            self._buffer = frame if self._buffer.empty else pd.concat([self._buffer, frame])
        taken = self._buffer[self._buffer["__line"] <= last_line]
        self._buffer = self._buffer[self._buffer["__line"] > last_line]
        return taken.set_index("__line")


def _statement(campaign_id: int) -> Any:
    latest = (
        select(
            InboundMessage.reply_to_id.label("message_id"),
            func.max(InboundMessage.id).label("inbound_id"),
        )
        .where(InboundMessage.reply_to_id.is_not(None))
        .group_by(InboundMessage.reply_to_id)
        .subquery()
    )
    return (
        select(
            *[getattr(Message, name) for name in _FROM_DB],
            InboundMessage.text,
            InboundMessage.received_at,
        )
        .outerjoin(latest, latest.c.message_id == Message.id)
        .outerjoin(InboundMessage, InboundMessage.id == latest.c.inbound_id)
        .where(Message.campaign_id == campaign_id)
        .order_by(Message.line)
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _ours(rows: list[Any], provider: str) -> pd.DataFrame:
    records = []
    for row in rows:
        values = dict(zip((*_FROM_DB, "reply", "replied_at"), row, strict=True))
        reason = explain(values["state"], provider, values["last_error"], values["provider_state"])
        final = values["state"] in ("failed", "undeliverable", "expired", "unknown", "in_doubt")
        records.append(
            {
                **{k: values[k] for k in EXPORT_COLUMNS if k in values},
                "reason_code": reason.code if final else "",
                "reason": reason.label if final else "",
                "submitted_at": _iso(values["submitted_at"]),
                "final_at": _iso(values["final_at"]),
                "replied_at": _iso(values["replied_at"]),
            }
        )
    return pd.DataFrame(records, columns=list(EXPORT_COLUMNS))


def _file_names(columns: tuple[str, ...]) -> list[str]:
    return [f"{name} (file)" if name in EXPORT_COLUMNS else name for name in columns]


def export_messages(engine: Engine, campaign_id: int, out: Path) -> int:
    """Write the campaign's recipients to ``out`` (.csv or .parquet) in chunks; rows written."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"export to .csv or .parquet, not {out.name!r}")
    with engine.connect() as connection:
        found = connection.execute(
            select(Campaign.provider, Campaign.source_file).where(Campaign.id == campaign_id)
        ).first()
    if found is None:
        raise InputError(f"no campaign with id {campaign_id}", code="not_found")
    provider, source_file = found
    source = _SourceRows(Path(source_file) if source_file else None)
    names = [*_file_names(source.columns), *EXPORT_COLUMNS]
    written = 0
    writer: pq.ParquetWriter | None = None
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=CHUNK).execute(_statement(campaign_id))
        for rows in result.partitions(CHUNK):
            ours = _ours(list(rows), provider)
            original = source.upto(int(ours["line"].iloc[-1])).reindex(ours["line"].tolist())
            original.columns = pd.Index(_file_names(source.columns))
            frame = pd.concat([original.reset_index(drop=True), ours], axis=1)[names]
            if suffix == ".csv":
                safe = frame.astype(object).where(frame.notna(), None).map(defuse)
                safe.to_csv(out, mode="a" if written else "w", header=not written, index=False)
            else:
                table = pa.Table.from_pandas(frame, schema=_schema(names), preserve_index=False)
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            written += len(frame)
    if writer is not None:
        writer.close()
    if not written and suffix == ".csv":
        pd.DataFrame(columns=names).to_csv(out, index=False)
    elif not written:
        pq.write_table(pa.Table.from_pylist([], schema=_schema(names)), out)
    return written


def _schema(names: list[str]) -> pa.Schema:
    integers = {"line", "parts", "attempts"}
    return pa.schema([(name, pa.int64() if name in integers else pa.string()) for name in names])
