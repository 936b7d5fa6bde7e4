"""Logging for every process (workers, beat, web, CLI): one level setting, secrets redacted.

Credentials travel where loggers look. The ByteHand key is in the query string of every API
call, and httpx logs each request URL at INFO (as an ``httpx.URL`` argument, not a string);
ByteHand callbacks bring it back in uvicorn's access log; the TimeToChat webhook secret is a
path segment of its callbacks; an API token may arrive as ``?token=`` in a typed URL. Rather
than trust each library's logger names (httpcore logs through half a dozen child loggers, which a
filter on ``httpcore`` would never see), :func:`install_log_redaction` wraps the process's
log-record factory, so every record of every logger is rewritten before any handler, filter
or formatter sees it. Argument types are kept where nothing is redacted, because uvicorn's
access formatter unpacks its arguments by position and ``%d`` wants an int.

The TimeToChat password and token never reach a log line: they travel in a request body and an
``Authorization`` header, which httpx and httpcore do not log (the secrets test in
``tests/badinput`` runs a campaign at DEBUG to keep it so).
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = [
    "LOG_FORMAT",
    "RedactSecrets",
    "configure_logging",
    "install_log_redaction",
    "redact",
    "redact_url",
]

_SECRET_PATH = re.compile(r"(/webhooks/timetochat/)[^/?#\s\"']+")
_SECRET_QUERY = re.compile(r"([?&](?:key|token)=)[^&#\s\"']*", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/?#@\s]*:)[^@\s]*(@)")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_FRAMEWORK_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
"""Loggers whose level the framework sets itself (uvicorn's ``--log-level``)."""


def redact(text: str) -> str:
    """``text`` with webhook secrets, ByteHand keys, tokens and URL passwords (a database
    or Redis URL in an error) replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\1***\2", text)
    return _SECRET_QUERY.sub(r"\1***", _SECRET_PATH.sub(r"\1***", text))


def redact_url(url: str) -> str:
    """A URL fit to show in an error, even a mistyped one: whatever stands between the user
    name's ``:`` and the last ``@`` (the password, however malformed) becomes ``***``."""
    if "@" not in url:
        return url
    head, host = url.rsplit("@", 1)
    start = head.find("//") + 2 if "//" in head else 0
    user, colon, _ = head[start:].partition(":")
    return f"{head[:start]}{user}{colon}***@{host}" if colon else url


def _redact_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    if arg is None or isinstance(arg, int | float):
        return arg
    shown = str(arg)
    redacted = redact(shown)
    return redacted if redacted != shown else arg


class RedactSecrets(logging.Filter):
    """Rewrites the message, its arguments and any traceback text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            # An exception's message may quote a URL (httpx puts it in HTTPStatusError).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class _RedactingFactory:
    """The previous record factory, followed by :class:`RedactSecrets`."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped
        self.redact = RedactSecrets()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.wrapped(*args, **kwargs)
        self.redact.filter(record)
        return record


def install_log_redaction() -> None:
    """Redact every record this process creates from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))


def configure_logging(level: str | None) -> None:
    """Install redaction and, when ``level`` is given (``DISPATCHER_LOG_LEVEL``), log at it.

    ``None`` keeps the level the process was started with (Celery's ``--loglevel``,
    uvicorn's ``--log-level``, the CLI's ``-v``). A root logger without a handler (uvicorn
    configures only its own loggers) gets one on stderr, so the level is actually seen.
    """
    install_log_redaction()
    if level is None:
        return
    logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(level)
    for name in _FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(level)
