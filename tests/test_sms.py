"""SMS encoding, part counting, limits, cost and smart encoding, as tables of cases."""

from __future__ import annotations

import itertools
import unicodedata
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.config import PartSizes, load_settings
from dispatcher.sms import (
    DEFAULT_SIZES,
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    SMART_REPLACEMENTS,
    UCS2,
    EncodingPolicy,
    analyze,
    char_name,
    check_limits,
    cost,
    segments,
    smart_encode,
)

BYTEHAND = PartSizes(160, 153, 70, 67, max_gsm7_chars=800, max_ucs2_chars=800)
TIMETOCHAT = PartSizes(160, 153, 70, 66, max_parts=8, max_gsm7_chars=1224, max_ucs2_chars=528)
TINY = PartSizes(4, 3, 3, 2)  # small enough for hypothesis to hit every boundary

# GSM 03.38 (3GPP TS 23.038) default alphabet, written out independently of the module: septet
# -> character. 0x1B (escape) is not a character. ASCII positions are ASCII except 0x24 (¤).
GSM7_BASIC_STANDARD: dict[int, str] = {
    0x00: "@",
    0x01: "\N{POUND SIGN}",
    0x02: "$",
    0x03: "\N{YEN SIGN}",
    0x04: "\N{LATIN SMALL LETTER E WITH GRAVE}",
    0x05: "\N{LATIN SMALL LETTER E WITH ACUTE}",
    0x06: "\N{LATIN SMALL LETTER U WITH GRAVE}",
    0x07: "\N{LATIN SMALL LETTER I WITH GRAVE}",
    0x08: "\N{LATIN SMALL LETTER O WITH GRAVE}",
    0x09: "\N{LATIN CAPITAL LETTER C WITH CEDILLA}",
    0x0A: "\n",
    0x0B: "\N{LATIN CAPITAL LETTER O WITH STROKE}",
    0x0C: "\N{LATIN SMALL LETTER O WITH STROKE}",
    0x0D: "\r",
    0x0E: "\N{LATIN CAPITAL LETTER A WITH RING ABOVE}",
    0x0F: "\N{LATIN SMALL LETTER A WITH RING ABOVE}",
    0x10: "\N{GREEK CAPITAL LETTER DELTA}",
    0x11: "_",
    0x12: "\N{GREEK CAPITAL LETTER PHI}",
    0x13: "\N{GREEK CAPITAL LETTER GAMMA}",
    0x14: "\N{GREEK CAPITAL LETTER LAMDA}",
    0x15: "\N{GREEK CAPITAL LETTER OMEGA}",
    0x16: "\N{GREEK CAPITAL LETTER PI}",
    0x17: "\N{GREEK CAPITAL LETTER PSI}",
    0x18: "\N{GREEK CAPITAL LETTER SIGMA}",
    0x19: "\N{GREEK CAPITAL LETTER THETA}",
    0x1A: "\N{GREEK CAPITAL LETTER XI}",
    0x1C: "\N{LATIN CAPITAL LETTER AE}",
    0x1D: "\N{LATIN SMALL LETTER AE}",
    0x1E: "\N{LATIN SMALL LETTER SHARP S}",
    0x1F: "\N{LATIN CAPITAL LETTER E WITH ACUTE}",
    **{code: chr(code) for code in range(0x20, 0x40) if code != 0x24},
    0x24: "\N{CURRENCY SIGN}",
    0x40: "\N{INVERTED EXCLAMATION MARK}",
    **{code: chr(code) for code in range(0x41, 0x5B)},
    0x5B: "\N{LATIN CAPITAL LETTER A WITH DIAERESIS}",
    0x5C: "\N{LATIN CAPITAL LETTER O WITH DIAERESIS}",
    0x5D: "\N{LATIN CAPITAL LETTER N WITH TILDE}",
    0x5E: "\N{LATIN CAPITAL LETTER U WITH DIAERESIS}",
    0x5F: "\N{SECTION SIGN}",
    0x60: "\N{INVERTED QUESTION MARK}",
    **{code: chr(code) for code in range(0x61, 0x7B)},
    0x7B: "\N{LATIN SMALL LETTER A WITH DIAERESIS}",
    0x7C: "\N{LATIN SMALL LETTER O WITH DIAERESIS}",
    0x7D: "\N{LATIN SMALL LETTER N WITH TILDE}",
    0x7E: "\N{LATIN SMALL LETTER U WITH DIAERESIS}",
    0x7F: "\N{LATIN SMALL LETTER A WITH GRAVE}",
}

# The extension table: septet after the escape -> character.
GSM7_EXTENSION_STANDARD: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "\N{EURO SIGN}",
}

EMOJI = "\N{GRINNING FACE}"


def test_standard_tables_match_the_module() -> None:
    """The module's alphabet is exactly GSM 03.38's: 127 basic and 10 extension characters."""
    assert len(GSM7_BASIC_STANDARD) == 127
    assert set(GSM7_BASIC_STANDARD.values()) == GSM7_BASIC
    assert set(GSM7_EXTENSION_STANDARD.values()) == GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("char", sorted(GSM7_BASIC_STANDARD.values()))
def test_every_basic_character_is_one_septet(char: str) -> None:
    """Each basic-table character alone is GSM-7, one septet, one part."""
    info = analyze(char)
    assert (info.encoding, info.units, info.parts, info.ucs2_forcing) == (GSM7, 1, 1, ())


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION_STANDARD.values()))
def test_every_extension_character_is_two_septets(char: str) -> None:
    """Each extension character is GSM-7 but takes an escape and a septet."""
    info = analyze(char)
    assert (info.encoding, info.units, info.chars, info.parts) == (GSM7, 2, 1, 1)


@pytest.mark.parametrize(
    ("text", "encoding", "forcing"),
    [
        ("Bonjour, été à Noël? non: à l'été où tu iras", UCS2, ("ë",)),
        ("é è ù à É ì ò", GSM7, ()),
        ("Garçon", UCS2, ("ç",)),
        ("Ça va", GSM7, ()),  # capital Ç is in the table, small ç is not
        ("fête, âme, hôtel, cœur, ça", UCS2, ("ê", "â", "ô", "œ", "ç")),
        ("Привет", UCS2, ("П", "р", "и", "в", "е", "т")),
        ("Soldes\u00a0!", UCS2, ("\u00a0",)),
        ("C’est l’été", UCS2, ("’",)),
        ("tab\there", UCS2, ("\t",)),
        ("ΔΦΓΛΩΠΨΣΘΞ", GSM7, ()),
        ("Ωhm sign \N{OHM SIGN}", UCS2, ("\N{OHM SIGN}",)),  # looks like Ω, is not
    ],
)
def test_encoding_and_the_characters_that_force_ucs2(
    text: str, encoding: str, forcing: tuple[str, ...]
) -> None:
    """Any character outside GSM-7 forces UCS-2 and is named once, in order of appearance."""
    info = analyze(text)
    assert info.encoding == encoding
    assert info.ucs2_forcing == forcing
    assert info.is_gsm7 == (encoding == GSM7)


@pytest.mark.parametrize(
    ("text", "units", "parts"),
    [
        ("", 0, 0),
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("a" * 459, 459, 3),
        ("a" * 460, 460, 4),
        ("€" * 80, 160, 1),
        ("a" * 159 + "€", 161, 2),
        ("д" * 70, 70, 1),
        ("д" * 71, 71, 2),
        ("д" * 134, 134, 2),
        ("д" * 135, 135, 3),
        (EMOJI, 2, 1),
        (EMOJI * 35, 70, 1),
        ("a" * 69 + EMOJI, 71, 2),
    ],
)
def test_boundaries_with_default_sizes(text: str, units: int, parts: int) -> None:
    """The standard 160/153 and 70/67 boundaries; emoji count two units."""
    info = analyze(text)
    assert (info.units, info.parts, info.chars) == (units, parts, len(text))


@pytest.mark.parametrize(
    ("text", "parts"), [("д" * 70, 1), ("д" * 71, 2), ("д" * 132, 2), ("д" * 133, 3)]
)
def test_timetochat_splits_unicode_at_66(text: str, parts: int) -> None:
    """TimeToChat's table: 71-132 UCS-2 characters are 2 SMS, so 66 per part."""
    assert analyze(text, TIMETOCHAT).parts == parts


def test_timetochat_gsm7_table() -> None:
    """TimeToChat's GSM-7 table: 1072-1224 characters are 8 SMS."""
    assert analyze("a" * 1071, TIMETOCHAT).parts == 7
    assert analyze("a" * 1072, TIMETOCHAT).parts == 8
    assert analyze("a" * 1224, TIMETOCHAT).parts == 8


def test_extension_character_never_straddles_a_part() -> None:
    """152 septets then "€": the escape pair moves whole to part 2, part 1 holds 152."""
    text = "a" * 152 + "€" + "b" * 10
    parts = segments(text)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert analyze(text).parts == 2


def test_straddling_costs_a_part_that_division_would_miss() -> None:
    """306 septets are 3 parts, not ceil(306 / 153) = 2, when a "€" sits on the boundary."""
    text = "a" * 152 + "€" + "a" * 152
    info = analyze(text)
    assert info.units == 306
    assert info.parts == 3
    assert segments(text) == ["a" * 152, "€" + "a" * 151, "a"]


def test_emoji_never_straddles_a_ucs2_part() -> None:
    """An emoji at unit 67 starts part 2; part 1 holds 66 units."""
    text = "a" * 66 + EMOJI + "a" * 10
    assert segments(text) == ["a" * 66, EMOJI + "a" * 10]
    assert analyze(text).parts == 2


def test_emoji_on_the_boundary_costs_a_part() -> None:
    """134 UCS-2 units are 3 parts, not 2, when a surrogate pair sits on the 67 boundary."""
    text = "a" * 66 + EMOJI + "a" * 66
    assert analyze(text).units == 134
    assert analyze(text).parts == 3


def test_segments_of_a_single_sms_and_of_nothing() -> None:
    """A text that fits is its own single segment; the empty text has none."""
    assert segments("Hello") == ["Hello"]
    assert segments("") == []


def test_sizes_too_small_for_a_pair_are_refused() -> None:
    """A part that could not hold an escape or surrogate pair is a configuration bug."""
    with pytest.raises(ValueError, match="at least 2"):
        analyze("abc", PartSizes(160, 1, 70, 67))


def test_shipped_configuration_has_the_spec_sizes(tmp_path: Path) -> None:
    """dispatcher/default.toml carries the per-provider sizes these tests assume."""
    settings = load_settings({"DISPATCHER_STATE_DIR": str(tmp_path)})
    assert settings.bytehand.parts == BYTEHAND
    assert settings.timetochat.parts == TIMETOCHAT


@pytest.mark.parametrize(
    ("sizes", "text", "reason"),
    [
        (BYTEHAND, "a" * 800, None),
        (BYTEHAND, "a" * 801, "text_too_long: 801 GSM-7 characters, limit 800"),
        (BYTEHAND, "д" * 800, None),
        (BYTEHAND, "д" * 801, "text_too_long: 801 UCS-2 characters, limit 800"),
        (BYTEHAND, "€" * 800, None),  # 1600 septets, but ByteHand caps characters only
        (TIMETOCHAT, "a" * 1224, None),
        (TIMETOCHAT, "a" * 1300, "text_too_long: 1300 GSM-7 characters, limit 1224"),
        (TIMETOCHAT, "д" * 528, None),
        (TIMETOCHAT, "д" * 529, "text_too_long: 529 UCS-2 characters, limit 528"),
        (TIMETOCHAT, "€" * 608, None),  # 76 per part: exactly 8 parts
        (TIMETOCHAT, "€" * 612, "too_many_parts: 9 parts, limit 8"),
        (TIMETOCHAT, EMOJI * 264, None),  # 33 per part: exactly 8 parts
        (TIMETOCHAT, EMOJI * 265, "too_many_parts: 9 parts, limit 8"),
        (DEFAULT_SIZES, "a" * 10_000, None),  # no caps configured
    ],
)
def test_limits_per_provider(sizes: PartSizes, text: str, reason: str | None) -> None:
    """Character caps count characters; the part cap catches texts long in units."""
    assert check_limits(analyze(text, sizes), sizes) == reason


def test_limits_refuse_info_counted_with_other_sizes() -> None:
    """Parts counted at 67 per part mean nothing against TimeToChat's 66."""
    with pytest.raises(ValueError, match="other part sizes"):
        check_limits(analyze("hello"), TIMETOCHAT)


@pytest.mark.parametrize(
    ("parts", "price", "expected"),
    [
        (0, 0.05, Decimal("0")),
        (3, 0.05, Decimal("0.15")),
        (7, 1.0, Decimal("7.0")),
        (3, Decimal("0.1"), Decimal("0.3")),
        (2, "0.0475", Decimal("0.0950")),
    ],
)
def test_cost_is_exact(parts: int, price: Decimal | float | str, expected: Decimal) -> None:
    """Cost is a Decimal with no binary rounding: 3 × 0.05 is exactly 0.15."""
    assert cost(parts, price) == expected


def test_cost_sums_exactly_over_many_messages() -> None:
    """A million parts at 0.05 is 50000, exactly."""
    assert sum((cost(1, 0.05) for _ in range(1_000_000)), Decimal(0)) == Decimal("50000")


@pytest.mark.parametrize(("parts", "price"), [(-1, 1.0), (1, -0.5), (1, float("nan"))])
def test_cost_refuses_nonsense(parts: int, price: float) -> None:
    """Negative parts or a negative or NaN price are bugs, not a cost."""
    with pytest.raises(ValueError):
        cost(parts, price)


FRENCH_PROMO = (
    "Bonjour Claire, c’est l’été chez Maison Lumière\u00a0! Profitez de –30\u00a0% sur "
    "toute la boutique jusqu’à dimanche avec le code ETE30… Stop SMS au 36111"
)


def test_smart_encode_saves_parts_on_a_french_promotion() -> None:
    """Curly apostrophes and no-break spaces made it 3 UCS-2 parts; it becomes 1 GSM-7 SMS."""
    before = analyze(FRENCH_PROMO)
    assert before.encoding == UCS2
    assert set(before.ucs2_forcing) == {"’", "\u00a0", "–", "…"}
    after_text = smart_encode(FRENCH_PROMO)
    after = analyze(after_text)
    assert after.encoding == GSM7
    assert after.parts == 1 < before.parts
    assert "c'est l'été chez Maison Lumière ! Profitez de -30 % sur" in after_text
    assert after_text.endswith("code ETE30... Stop SMS au 36111")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("«\u202fOui\u202f»", '" Oui "'),
        ("“Quoted” ‘single’ „low“ ‹angle›", "\"Quoted\" 'single' \"low\" 'angle'"),
        ("5′ 10″", "5' 10\""),
        ("a\u2009b\u2007c\u3000d", "a b c d"),
        ("x – y — z − 1 ‐ 2", "x - y - z - 1 - 2"),
        ("• one\n• two", "- one\n- two"),
        ("zero\u200bwidth\ufeff soft\u00adhyphen", "zerowidth softhyphen"),
    ],
)
def test_smart_encode_replacements(text: str, expected: str) -> None:
    """Typographic punctuation and spaces become their GSM-7 look-alikes."""
    assert smart_encode(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Garçon, c’est la fête\u00a0!",  # ç and ê stay, so the text stays UCS-2: untouched
        "Привет — мир",
        "Family \N{MAN}\u200d\N{WOMAN}\u200d\N{GIRL} «ok»",  # ZWJ must not be torn out
        "…" * 70,  # 70 UCS-2 units is 1 part; 210 septets would be 2
        "Already plain GSM-7 text",
        "",
    ],
)
def test_smart_encode_leaves_text_alone_when_it_does_not_pay(text: str) -> None:
    """All or nothing: unchanged unless the whole text becomes GSM-7 in no more parts."""
    assert smart_encode(text) is text


def test_smart_replacements_are_never_letters() -> None:
    """Every replaced character is a non-letter outside GSM-7; every replacement is GSM-7
    punctuation or space, never a letter."""
    for char, replacement in SMART_REPLACEMENTS.items():
        assert not unicodedata.category(char).startswith("L"), char_name(char)
        assert char not in GSM7_BASIC | GSM7_EXTENSION, char_name(char)
        assert all(ch in GSM7_BASIC and not ch.isalnum() for ch in replacement)


FRENCH = "Bonjour Hélène, votre fenêtre de livraison est confirmée : à demain 9 h, merci !" * 2


@pytest.mark.parametrize(
    ("policy", "encoding", "parts", "renders"),
    [
        ("auto", UCS2, 3, ()),
        ("unicode", UCS2, 3, ()),
        ("latin1", GSM7, 1, ("ê",)),
    ],
)
def test_encoding_policy_of_a_french_text(
    policy: EncodingPolicy, encoding: str, parts: int, renders: tuple[str, ...]
) -> None:
    """One ê: auto and unicode pay UCS-2; latin1 sends GSM-7 septets and names the ê."""
    info = analyze(FRENCH, TIMETOCHAT, policy=policy)
    assert (info.encoding, info.parts, info.renders_differently) == (encoding, parts, renders)
    assert "".join(segments(FRENCH, TIMETOCHAT, policy=policy)) == FRENCH
    assert len(segments(FRENCH, TIMETOCHAT, policy=policy)) == parts


@pytest.mark.parametrize(
    ("text", "encoding", "units"),
    [
        ("fenêtre {ç}", GSM7, 13),  # Latin-1 letters one septet, braces two each
        ("Prix 5 €, ç", GSM7, 12),  # the euro is GSM-7 (extension), not Latin-1
        ("ça coûte 5 ₽", UCS2, 12),  # a rouble sign is neither: UCS-2 as under auto
        ("Привет", UCS2, 6),
    ],
)
def test_latin1_policy_table(text: str, encoding: str, units: int) -> None:
    """latin1 sends GSM-7 only when every character is GSM-7 or ISO-8859-1."""
    info = analyze(text, TIMETOCHAT, policy="latin1")
    assert (info.encoding, info.units) == (encoding, units)


def test_unicode_policy_sends_even_plain_text_as_ucs2() -> None:
    """unicode: a GSM-7 text still goes as UCS-2, with nothing to blame for it."""
    info = analyze("Hello", TIMETOCHAT, policy="unicode")
    assert (info.encoding, info.ucs2_forcing, info.renders_differently) == (UCS2, (), ())


def test_char_name_names_invisible_characters() -> None:
    """An operator is told which invisible character forced UCS-2."""
    assert char_name("\u00a0") == "U+00A0 NO-BREAK SPACE"
    assert char_name(EMOJI) == "U+1F600 GRINNING FACE"


# Texts rich in the characters that matter: both tables, French accents, look-alikes,
# Cyrillic, emoji; plus arbitrary Unicode (surrogate code points are not text).
_INTERESTING = st.sampled_from(
    sorted(GSM7_BASIC | GSM7_EXTENSION)
    + list("çêâôœë’‘«»“”–—…•\u00a0\u202f\u200b\u200dдЖ")
    + [EMOJI, "\N{MAN}", "\N{REGIONAL INDICATOR SYMBOL LETTER F}"]
)
TEXTS = st.text(alphabet=_INTERESTING | st.characters(exclude_categories=["Cs"]), max_size=400)
SIZES = st.sampled_from([DEFAULT_SIZES, BYTEHAND, TIMETOCHAT, TINY])


def _units(segment: str, encoding: str) -> int:
    """An independent oracle: septets, or UTF-16 code units."""
    if encoding == GSM7:
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in segment)
    return len(segment.encode("utf-16-le")) // 2


@given(TEXTS, SIZES)
def test_property_segments_rebuild_the_text_and_fit(text: str, sizes: PartSizes) -> None:
    """Segments join back to the text, each fits its budget, parts == len(segments), and
    no part could have taken the next character (real greedy segmentation)."""
    info = analyze(text, sizes)
    parts = segments(text, sizes)
    assert "".join(parts) == text
    assert info.parts == len(parts)
    assert info.units == _units(text, info.encoding)
    gsm = info.encoding == GSM7
    single, per_part = (
        (sizes.gsm7_single, sizes.gsm7_part) if gsm else (sizes.ucs2_single, sizes.ucs2_part)
    )
    budget = single if len(parts) == 1 else per_part
    assert all(part and _units(part, info.encoding) <= budget for part in parts)
    for part, following in itertools.pairwise(parts):
        assert _units(part + following[0], info.encoding) > per_part


@given(TEXTS)
def test_property_gsm7_units_at_least_chars(text: str) -> None:
    """In GSM-7 every character is at least one septet; in UCS-2 at least one unit too."""
    info = analyze(text)
    assert info.units >= info.chars
    assert (info.encoding == GSM7) == (info.ucs2_forcing == ())
    assert len(set(info.ucs2_forcing)) == len(info.ucs2_forcing)
    assert all(ch in text for ch in info.ucs2_forcing)


@given(TEXTS, SIZES)
def test_property_smart_encode_idempotent_and_never_worse(text: str, sizes: PartSizes) -> None:
    """smart_encode is idempotent, never adds parts, and never touches a letter or digit."""
    once = smart_encode(text, sizes)
    assert smart_encode(once, sizes) == once
    assert analyze(once, sizes).parts <= analyze(text, sizes).parts
    assert [ch for ch in once if ch.isalnum()] == [ch for ch in text if ch.isalnum()]
