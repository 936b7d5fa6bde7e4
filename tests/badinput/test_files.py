"""Bad recipient files and campaign fields: one clear message, nothing half-created.

Every case runs through the CLI (``dispatcher campaign create``: one ``error:`` line on stderr,
exit 2) and the API (``POST /campaigns``: a 4xx ``{"error": {"code", "message"}}``), on SQLite
and PostgreSQL (``db_url``), and afterwards the database holds no campaign and no message.

What the older suites already prove, and is not repeated here:

=================================================  ==========================================
case (where)                                       covered by (test file :: test)
=================================================  ==========================================
binary, ``PAR1`` garbage (reader)                  test_ingest :: test_not_a_table
no phone column, unknown placeholder (reader)      test_ingest :: test_no_phone_column,
                                                   test_unknown_placeholder
one too-long text among valid rows                 test_ingest :: test_over_limit
past / naive start, validity before start (loader) test_loader :: test_bad_campaign_input
malformed record mid-file rolls back (loader)      test_loader :: test_error_mid_file_leaves_nothing
missing file, unknown placeholder (CLI)            test_cli_ingest :: test_create_errors
empty, binary, fake Parquet, no phone column       web/test_upload ::
(API: 400, nothing stored)                         test_bad_file_is_400_and_stores_nothing
over ``max_upload_bytes`` (API: 413, no row)       web/test_upload :: test_too_large_is_413
naive schedule (API)                               web/test_upload :: test_bad_schedule_is_400
names escaped in the console                       web/test_console :: test_names_are_escaped
=================================================  ==========================================

New here: a real Parquet file cut in half, a 50 MB line without a newline (refused in well under
a second and in bounded memory), a header with no data rows, mixed UTF-8 / Windows-1252 lines
(refused, deterministically, naming one line of each), a text over the provider's limit for every
recipient (the error says so), and every case through both front doors on both databases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.cli import main
from dispatcher.config import load_settings
from dispatcher.db import make_engine
from dispatcher.errors import InputError
from dispatcher.models import Campaign, Message
from dispatcher.reading import open_table
from dispatcher.runtime import Runtime
from dispatcher.sandbox.server import serve_in_thread
from dispatcher.web import create_app
from tests.web.helpers import API_TOKEN, env_for

BIG = 50 * 1024 * 1024


def _parquet_cut_in_half(path: Path) -> None:
    rows = 5000
    table = pa.table({"phone": [f"06{n:08d}" for n in range(rows)], "first_name": ["A"] * rows})
    pq.write_table(table, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _one_huge_line(path: Path) -> None:
    with path.open("wb") as handle:
        handle.write(b"phone;first_name;")
        for _ in range(BIG // (1 << 20)):
            handle.write(b"x" * (1 << 20))


MIXED = "phone;first_name\n0601020304;Hélène\n".encode() + "0601020305;Gaëlle\n".encode("cp1252")

# name -> (file content or writer, extra CLI/API fields, error code, words of the message)
CASES = {
    "binary": (bytes(range(256)) * 40, {}, "bad_file", "binary"),
    "truncated-parquet": (_parquet_cut_in_half, {}, "bad_file", "Parquet"),
    "no-phone-column": (b"name;city\nAnn;Paris\n", {}, "no_phone_column", "no phone column"),
    "huge-line": (_one_huge_line, {}, "bad_file", "longer than 64 KiB"),
    "header-only": (b"phone;first_name\n", {}, "no_rows", "no data rows"),
    "header-only-no-newline": (b"phone;first_name", {}, "no_rows", "no data rows"),
    "mixed-encodings": (MIXED, {}, "bad_encoding", "line 2 is UTF-8 but line 3"),
    "placeholder-without-column": (
        b"phone;first_name\n0601020304;Ann\n",
        {"text": "Hi {city}"},
        "unknown_placeholder",
        "{city}",
    ),
    "text-too-long": (
        b"phone;first_name\n0601020304;Ann\n0601020305;Bob\n",
        {"text": "x" * 900},
        "no_recipients",
        "2 text_too_long",
    ),
    "schedule-in-the-past": (
        b"phone\n0601020304\n",
        {"start_at": "2020-01-01T09:00:00+01:00"},
        "bad_schedule",
        "in the past",
    ),
    "validity-before-start": (
        b"phone\n0601020304\n",
        {"start_at": "2099-01-02T09:00:00Z", "validity": "2099-01-01T09:00:00Z"},
        "bad_schedule",
        "not after start_at",
    ),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case's file, written once for the module (the huge one is 50 MB)."""
    directory = tmp_path_factory.mktemp("bad-files")
    written = {}
    for name, (content, *_rest) in CASES.items():
        path = directory / f"{name}.{'parquet' if 'parquet' in name else 'csv'}"
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        written[name] = path
    return written


def _counts(db_url: str) -> tuple[int, int]:
    engine = make_engine(db_url)
    with Session(engine) as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Campaign, Message)
        )
    engine.dispose()
    return counts  # type: ignore[return-value]


def _fields(extra: dict[str, str]) -> dict[str, str]:
    return {"provider": "bytehand", "sender": "SHOP", "text": "Hi {first_name}", **extra}


@pytest.mark.parametrize("case", CASES)
def test_cli_refuses_with_one_line(
    case: str, files: dict[str, Path], db_url: str, tmp_path: Path, monkeypatch
) -> None:
    """``campaign create``: exit 2, one ``error:`` line naming the problem, no row stored."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("DISPATCHER_STATE_DIR", str(tmp_path / "state"))
    _content, extra, _code, words = CASES[case]
    args = [str(files[case])]
    for key, value in _fields(extra).items():
        args += [f"--{key.replace('_', '-')}", value]
    started = time.monotonic()
    result = CliRunner().invoke(main, ["campaign", "create", *args])
    assert time.monotonic() - started < 5
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert words in result.stderr and len(result.stderr) < 500
    assert result.stdout == ""
    assert _counts(db_url) == (0, 0)


@pytest.fixture
def api(db_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """The real app on loopback with the API token; the database URL beside it."""
    runtime = Runtime(load_settings(env_for(db_url, redis_url, tmp_path / "state")))
    try:
        with (
            serve_in_thread(create_app(runtime)) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60
            ) as client,
        ):
            yield client, db_url
    finally:
        runtime.close()


@pytest.mark.parametrize("case", CASES)
def test_api_refuses_with_a_json_error(
    case: str, files: dict[str, Path], api: tuple[httpx.Client, str]
) -> None:
    """``POST /campaigns``: 400 with the error code and a message naming the problem, no row."""
    client, db_url = api
    _content, extra, code, words = CASES[case]
    with files[case].open("rb") as handle:
        answer = client.post(
            "/campaigns", data=_fields(extra), files={"file": (files[case].name, handle)}
        )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and words in error["message"]
    assert "dispatcher-upload-" not in error["message"] and len(error["message"]) < 500
    assert _counts(db_url) == (0, 0)


@pytest.mark.processes
def test_huge_line_fails_fast_in_bounded_memory(files: dict[str, Path], tmp_path: Path) -> None:
    """A 50 MB line takes under a second and well under 300 MB more than a tiny bad file."""

    def peak_rss_kib(path: Path) -> int:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "DISPATCHER_STATE_DIR": str(tmp_path),
        }
        command = [sys.executable, "-m", "dispatcher", "estimate", str(path)]
        command += ["--provider", "bytehand", "--text", "Hi"]
        # wait4 gives this one child's peak RSS (getrusage would mix in every child so far).
        process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        assert process.returncode == 2
        return usage.ru_maxrss

    growth_mib = (peak_rss_kib(files["huge-line"]) - peak_rss_kib(files["header-only"])) / 1024
    assert growth_mib < 300
    started = time.monotonic()
    with pytest.raises(InputError, match="line 1 is longer than 64 KiB"):
        open_table(files["huge-line"])
    assert time.monotonic() - started < 1


def test_mixed_encodings_are_refused_the_same_way_every_time(tmp_path: Path) -> None:
    """Wherever the lines of each kind sit, the verdict and the lines it names do not change."""
    utf8 = "0601020304;Hélène\n".encode()
    cp1252 = "0601020305;Gaëlle\n".encode("cp1252")
    ascii_rows = b"".join(b"06%08d;Ann\n" % n for n in range(30_000))  # over a 1 MiB block
    for body, lines in (
        (utf8 + cp1252, (2, 3)),
        (cp1252 + utf8, (3, 2)),
        (ascii_rows + cp1252 + ascii_rows + utf8, (60_003, 30_002)),
    ):
        path = tmp_path / "mixed.csv"
        path.write_bytes(b"phone;first_name\n" + body)
        messages = set()
        for _ in range(2):
            with pytest.raises(InputError) as raised:
                open_table(path)
            assert raised.value.code == "bad_encoding"
            messages.add(str(raised.value))
        (message,) = messages
        assert f"line {lines[0]} is UTF-8 but line {lines[1]} is not" in message


def test_single_encodings_decode_without_replacement_characters(tmp_path: Path) -> None:
    """Pure UTF-8 and pure Windows-1252 files decode exactly; an undefined byte is refused."""
    names = ["Hélène", "Gaëlle", "Zoë €"]
    for encoding in ("utf-8", "cp1252"):
        path = tmp_path / f"{encoding}.csv"
        rows = "".join(f"06010203{n:02d};{name}\n" for n, name in enumerate(names))
        path.write_bytes(f"phone;first_name\n{rows}".encode(encoding))
        cells = [c for chunk in open_table(path).chunks for c in chunk.frame["first_name"]]
        assert cells == names
    path = tmp_path / "undefined.csv"
    path.write_bytes("phone;first_name\n0601020304;Gaëlle\n".encode("cp1252") + b"06;\x81\n")
    with pytest.raises(InputError, match="neither UTF-8 nor Windows-1252"):
        open_table(path)
