"""Reading recipient files and the estimate pipeline: encodings, delimiters, reasons, counts."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dispatcher.config import load_settings
from dispatcher.errors import InputError
from dispatcher.loader import estimate
from dispatcher.reading import open_table
from dispatcher.templates import compile_template

SETTINGS = load_settings({})


def _rows(path: Path) -> list[dict[str, str]]:
    table = open_table(path)
    return [row for chunk in table.chunks for row in chunk.frame.to_dict("records")]


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        ("téléphone;prénom\n0601020304;Hélène\n", "cp1252"),
        ("\ufeffphone,first_name\n0601020304,Hélène\n", "utf-8"),
        ("phone\tfirst_name\n0601020304\tHélène\n", "utf-8"),
        ("phone|first_name\n0601020304|Hélène\n", "utf-8"),
        ("phone;first_name\n\n 0601020304 ; Hélène \n\n", "utf-8"),
        ("phone,first_name\r\n0601020304,Hélène\r\n", "utf-16"),
    ],
)
def test_csv_variants(tmp_path: Path, content: str, encoding: str) -> None:
    """Excel's exports all give the same stripped string cells."""
    path = tmp_path / "f.csv"
    path.write_bytes(content.encode(encoding))
    rows = _rows(path)
    assert [list(row.values()) for row in rows] == [["0601020304", "Hélène"]]


def test_quoted_newlines(tmp_path: Path) -> None:
    """A quoted cell may hold the delimiter and a newline."""
    path = tmp_path / "f.csv"
    path.write_text('phone,note\n0601020304,"a, b\nc"\n0601020305,x\n', encoding="utf-8")
    assert [row["note"] for row in _rows(path)] == ["a, b\nc", "x"]


@pytest.mark.parametrize("content", [b"\x00\x01\x02garbage\xff" * 10, b"PAR1truncated"])
def test_not_a_table(tmp_path: Path, content: bytes) -> None:
    """Binary garbage and a truncated Parquet are one-line input errors."""
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    with pytest.raises(InputError):
        _rows(path)


def test_parquet_int64_numbers(tmp_path: Path) -> None:
    """Numbers stored as int64 come back as digits, leading zero recovered by the region."""
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"msisdn": pa.array([33601020304, 601020304], pa.int64())}), path)
    figures = estimate(SETTINGS, path, provider="bytehand", template="Hi")
    assert figures.valid == 1 and figures.duplicates == 1


def _estimate(tmp_path: Path, lines: list[str], template: str = "Bonjour {first_name}", **kw):
    path = tmp_path / "f.csv"
    path.write_text("\n".join(["phone;first_name", *lines]) + "\n", encoding="utf-8")
    return estimate(SETTINGS, path, provider="timetochat", template=template, **kw)


def test_counts_and_rejects(tmp_path: Path) -> None:
    """Invalid, duplicate and too-long rows are counted and written to the rejects file."""
    rejects = tmp_path / "rejects.csv"
    figures = _estimate(
        tmp_path,
        ["0601020304;Anne", "06 01 02 03 04;Bis", "0140000000;Fixe", "junk;X", "0601020305;"],
        rejects_path=rejects,
    )
    assert (figures.rows, figures.valid, figures.duplicates) == (5, 2, 1)
    assert figures.invalid == {"not_a_mobile": 1, "invalid_number": 1}
    rows = list(csv.reader(io.StringIO(rejects.read_text(encoding="utf-8"))))
    assert rows == [
        ["line", "phone", "reason"],
        ["3", "06 01 02 03 04", "duplicate of line 2"],
        ["4", "0140000000", "not_a_mobile"],
        ["5", "junk", "invalid_number"],
    ]


def test_reject_lines_are_editor_lines(tmp_path: Path) -> None:
    """After a multi-line quoted cell and a blank line, a bad row is reported at its editor line."""
    path = tmp_path / "f.csv"
    path.write_text(
        'phone;first_name\n0601020304;"Anne\nMarie"\n\n0601020305;Bob\njunk;Eve\n'
        "06 01 02 03 05;Bis\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.csv"
    estimate(SETTINGS, path, provider="timetochat", template="Hi", rejects_path=rejects)
    rows = list(csv.reader(io.StringIO(rejects.read_text(encoding="utf-8"))))
    assert rows[1:] == [
        ["6", "junk", "invalid_number"],
        ["7", "06 01 02 03 05", "duplicate of line 5"],
    ]


def test_empty_value_and_default(tmp_path: Path) -> None:
    """An empty cell renders empty, or as the placeholder's default."""
    template = compile_template("Bonjour {first_name|client}{{ok}}", ["phone", "first_name"])
    frame = pd.DataFrame({"phone": ["1", "2"], "first_name": ["Anne", ""]})
    assert list(template.render(frame)) == ["Bonjour Anne{ok}", "Bonjour client{ok}"]


def test_unknown_placeholder(tmp_path: Path) -> None:
    """A placeholder with no column names it and the columns seen."""
    with pytest.raises(InputError, match=r"\{city\}.*phone, first_name"):
        _estimate(tmp_path, ["0601020304;Anne"], template="Hi {city}")


def test_no_phone_column(tmp_path: Path) -> None:
    """No recognisable phone column: the error lists the columns."""
    path = tmp_path / "f.csv"
    path.write_text("name;city\nA;B\n", encoding="utf-8")
    with pytest.raises(InputError, match="name, city"):
        estimate(SETTINGS, path, provider="bytehand", template="Hi")


def test_ucs2_and_smart_encoding(tmp_path: Path) -> None:
    """Typographic quotes force UCS-2, and smart encoding wins the parts back."""
    text = "C’est l’offre « ça » " + "x" * 50
    plain = _estimate(tmp_path, ["0601020304;A"], template=text)
    assert plain.encodings == {"UCS-2": 1} and "’" in plain.ucs2_forcing
    smart = _estimate(tmp_path, ["0601020304;A"], template=text, smart_encoding=True)
    assert smart.encodings == {"UCS-2": 1}  # ç keeps it UCS-2: all or nothing
    smart2 = _estimate(
        tmp_path, ["0601020304;A"], template=text.replace("ç", "c"), smart_encoding=True
    )
    assert smart2.encodings == {"GSM-7": 1} and smart2.parts_saved == 1


FENETRE = "Bonjour {first_name}, votre fenêtre de livraison est confirmée pour demain 9 h " * 2


@pytest.mark.parametrize(
    ("policy", "encodings", "parts", "renders"),
    [
        ("auto", {"UCS-2": 3, "GSM-7": 1}, 10, {}),
        ("unicode", {"UCS-2": 4}, 10, {}),
        ("latin1", {"GSM-7": 4}, 4, {"ê": 3}),
    ],
)
def test_timetochat_encoding_policy(
    tmp_path: Path, policy: str, encodings: dict[str, int], parts: int, renders: dict[str, int]
) -> None:
    """--encoding decides each text's encoding, parts and which letters may show differently."""
    rows = ["0601020304;Anne", "0601020305;Zoé", "0601020306;Bob"]
    figures = _estimate(tmp_path, rows, template=FENETRE, encoding=policy)
    plain = "Hi {first_name}"
    figures_plain = _estimate(tmp_path, ["0601020304;Anne"], template=plain, encoding=policy)
    assert figures.encodings + figures_plain.encodings == Counter(encodings)
    assert figures.parts + figures_plain.parts == parts
    assert figures.renders_differently == renders
    assert figures.to_json()["encoding_policy"] == policy


def test_bytehand_sends_auto_only(tmp_path: Path) -> None:
    """The encoding choice is TimeToChat's: ByteHand refuses anything but auto."""
    path = tmp_path / "f.csv"
    path.write_text("phone\n0601020304\n", encoding="utf-8")
    with pytest.raises(InputError, match="encoding"):
        estimate(SETTINGS, path, provider="bytehand", template="Hi", encoding="latin1")


def test_over_limit(tmp_path: Path) -> None:
    """A text over TimeToChat's 528 UCS-2 characters is rejected with check_limits' reason."""
    figures = _estimate(tmp_path, ["0601020304;" + "ç" * 600, "0601020305;A"])
    assert figures.valid == 1 and figures.invalid == {"text_too_long": 1}


def test_fast_text_analysis_matches_sms(tmp_path: Path) -> None:
    """Vectorised GSM-7 counting equals sms.analyze across the part boundaries."""
    from dispatcher import sms

    names = ["a" * n for n in (1, 60, 100, 120, 200, 400)] + ["€" * 80, "é" * 80]
    figures = _estimate(tmp_path, [f"06010203{i:02d};{n}" for i, n in enumerate(names)])
    sizes = SETTINGS.timetochat.parts
    expected = sum(sms.analyze(f"Bonjour {n}", sizes).parts for n in names)
    assert figures.parts == expected


@pytest.mark.parametrize(("chosen", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_ingest_allocates_from_malloc_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: str | None, expected: str
) -> None:
    """A pipeline moves Arrow to the system allocator; ``ARROW_DEFAULT_MEMORY_POOL`` wins."""
    from dispatcher import ingest

    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    ingest._use_system_allocator.cache_clear()
    if chosen is None:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    else:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", chosen)
    path = tmp_path / "r.csv"
    path.write_text("phone\n0601020304\n", encoding="utf-8")
    try:
        ingest.Pipeline(SETTINGS, path, provider="bytehand", template="Hi")
        assert pa.default_memory_pool().backend_name == expected
    finally:
        pa.set_memory_pool(before)
        ingest._use_system_allocator.cache_clear()
