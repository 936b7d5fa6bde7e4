"""Keep webhook credentials out of the logs.

The TimeToChat secret travels in the callback path (``/webhooks/timetochat/<secret>``), the
ByteHand key in the query (``key=...``) and the dashboard token may arrive as ``?token=...``.
Uvicorn's access log prints the full path with its query, so a filter on its loggers rewrites
those parts to ``***`` before anything is written.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactSecrets", "install_log_redaction", "redact"]

_SECRET_PATH = re.compile(r"(/webhooks/timetochat/)[^/?#\s\"]+")
_SECRET_QUERY = re.compile(r"([?&](?:key|token)=)[^&#\s\"]*", re.IGNORECASE)

_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """``text`` with webhook secrets, ByteHand keys and tokens replaced by ``***``."""
    return _SECRET_QUERY.sub(r"\1***", _SECRET_PATH.sub(r"\1***", text))


class RedactSecrets(logging.Filter):
    """Rewrites the message and its string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_redaction() -> None:
    """Put the filter on uvicorn's loggers (idempotent: once per logger)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
