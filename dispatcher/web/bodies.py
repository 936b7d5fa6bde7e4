"""Request bodies read with a size limit, never more than the limit into memory or disk.

A recipient file can be large (``max_upload_bytes``, 100 MiB by default) and a webhook body is
small; either way the limit is enforced while streaming: a declared ``Content-Length`` over it
is refused before a byte is read, and an undeclared (chunked) body is cut off as soon as the
count passes it. Both answer 413.

The upload is parsed by Starlette's streaming multipart parser (file parts spool to disk past
1 MiB) and then copied to a file of its own, because the loader reads a path. The caller deletes it.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartParser

from dispatcher.web.errors import ApiError

__all__ = ["FORM_OVERHEAD", "Upload", "read_limited", "receive_upload", "safe_filename"]

FORM_OVERHEAD = 64 * 1024
"""Room for the form fields and multipart framing around the file itself."""

_MAX_FIELDS = 32

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")


@dataclasses.dataclass(frozen=True)
class Upload:
    """A received upload: its form fields, and the file saved at ``path``.

    ``path`` sits alone in a fresh temporary directory; the caller removes ``path.parent``.
    """

    fields: dict[str, str]
    path: Path
    filename: str
    size: int


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the upload is larger than {limit} bytes")


def _check_declared(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def _limited(request: Request, limit: int, shown: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(shown)
        yield chunk


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) past ``limit`` bytes."""
    _check_declared(request, limit)
    return b"".join([chunk async for chunk in _limited(request, limit, limit)])


def safe_filename(name: str | None) -> str:
    """The client's file name reduced to a harmless base name (it names the temp file, and the
    loader's default campaign name is its stem)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip("._ ")[:100]
    return cleaned or "upload"


def _save(source: UploadFile, filename: str) -> Path:
    """Copy the spooled part to ``<new temp dir>/<filename>``; the caller removes the dir."""
    directory = Path(tempfile.mkdtemp(prefix="dispatcher-upload-"))
    path = directory / filename
    try:
        with path.open("wb") as target:
            source.file.seek(0)
            shutil.copyfileobj(source.file, target, 1 << 20)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return path


async def receive_upload(request: Request, *, max_file_bytes: int, field: str = "file") -> Upload:
    """Parse a ``multipart/form-data`` upload with one file in ``field``.

    413 past ``max_file_bytes`` (the file) or that plus :data:`FORM_OVERHEAD` (the body); 415 if
    the body is not multipart; 400 if it is broken or has no file.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the file as multipart/form-data")
    body_limit = max_file_bytes + FORM_OVERHEAD
    _check_declared(request, body_limit)
    parser = MultiPartParser(
        request.headers,
        _limited(request, body_limit, max_file_bytes),
        max_files=1,
        max_fields=_MAX_FIELDS,
        max_part_size=FORM_OVERHEAD,
    )
    try:
        form = await parser.parse()
    except ApiError:
        raise
    except Exception as exc:
        # The one boundary where the parser's own errors (bad framing, charset, too many
        # parts) become ours: always a 400, never a 500.
        raise ApiError(400, "bad_upload", "the body is not valid multipart/form-data") from exc
    try:
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "no_file", f"no file in the {field!r} field")
        size = upload.size if upload.size is not None else 0
        if size > max_file_bytes:
            raise _too_large(max_file_bytes)
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        filename = safe_filename(upload.filename)
        path = await run_in_threadpool(_save, upload, filename)
        return Upload(fields, path, filename, size)
    finally:
        await form.close()
