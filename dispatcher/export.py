"""Campaign exports: every recipient with its final state, in CSV or Parquet, streamed.

``reply`` is the text of the latest incoming SMS linked to the recipient's message (see
:mod:`dispatcher.replies` for how an MO is linked), empty when none.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from dispatcher.errors import InputError
from dispatcher.models import InboundMessage, Message

__all__ = ["EXPORT_COLUMNS", "export_messages"]

EXPORT_COLUMNS = (
    "line",
    "phone",
    "state",
    "provider_state",
    "last_error",
    "provider_message_id",
    "ext_ref",
    "parts",
    "attempts",
    "submitted_at",
    "final_at",
    "reply",
)
CHUNK = 50_000


def export_messages(engine: Engine, campaign_id: int, out: Path) -> int:
    """Write the campaign's recipients to ``out`` (.csv or .parquet) in chunks; rows written."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"export to .csv or .parquet, not {out.name!r}")
    reply = (
        select(InboundMessage.text)
        .where(InboundMessage.reply_to_id == Message.id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(1)
        .correlate(Message)
        .scalar_subquery()
        .label("reply")
    )
    columns = [getattr(Message, name) for name in EXPORT_COLUMNS if name != "reply"] + [reply]
    statement = select(*columns).where(Message.campaign_id == campaign_id).order_by(Message.line)
    written = 0
    writer: pq.ParquetWriter | None = None
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=CHUNK).execute(statement)
        for chunk in result.partitions(CHUNK):
            frame = pd.DataFrame(chunk, columns=list(EXPORT_COLUMNS))
            if suffix == ".csv":
                frame.to_csv(out, mode="a" if written else "w", header=not written, index=False)
            else:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            written += len(frame)
    if writer is not None:
        writer.close()
    if not written and suffix == ".csv":
        pd.DataFrame(columns=list(EXPORT_COLUMNS)).to_csv(out, index=False)
    elif not written:
        pq.write_table(pa.table({c: pa.array([], pa.string()) for c in EXPORT_COLUMNS}), out)
    return written
