"""How many SMS parts a text takes, as each simulated provider counts them.

A small local implementation on purpose: the simulators must not share code with the
dispatcher they judge. GSM-7 extension characters take two septets and are never split across
parts; in UCS-2 a character outside the Basic Multilingual Plane takes two units (a surrogate
pair, never split either).
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "BYTEHAND_SIZES",
    "TIMETOCHAT_SIZES",
    "PartSizes",
    "count_parts",
    "is_gsm7",
    "units",
]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[]~|€\f")


@dataclasses.dataclass(frozen=True)
class PartSizes:
    """Capacity of one SMS and of each part of a split one, in GSM-7 septets / UCS-2 units."""

    gsm_single: int
    gsm_part: int
    ucs2_single: int
    ucs2_part: int


BYTEHAND_SIZES = PartSizes(gsm_single=160, gsm_part=153, ucs2_single=70, ucs2_part=67)
TIMETOCHAT_SIZES = PartSizes(gsm_single=160, gsm_part=153, ucs2_single=70, ucs2_part=66)


def is_gsm7(text: str) -> bool:
    """Whether every character has a GSM-7 encoding (basic table or extension)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _char_units(text: str, gsm: bool) -> list[int]:
    if gsm:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def units(text: str, gsm: bool) -> int:
    """Length in septets (``gsm``) or UCS-2 code units."""
    return sum(_char_units(text, gsm))


def count_parts(text: str, sizes: PartSizes, gsm: bool | None = None) -> int:
    """Parts of ``text``; ``gsm=None`` picks GSM-7 when the text allows it, else UCS-2.

    Characters are packed greedily, so a two-unit character that would straddle a part boundary
    starts the next part.
    """
    use_gsm = is_gsm7(text) if gsm is None else gsm
    widths = _char_units(text, use_gsm)
    single, part = (
        (sizes.gsm_single, sizes.gsm_part) if use_gsm else (sizes.ucs2_single, sizes.ucs2_part)
    )
    if sum(widths) <= single:
        return 1
    parts, used = 1, 0
    for width in widths:
        if used + width > part:
            parts += 1
            used = 0
        used += width
    return parts
