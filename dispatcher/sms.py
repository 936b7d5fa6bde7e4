"""SMS encoding, part counting, provider limits and cost: pure functions, no I/O.

The operator sees *before sending* how many parts each text takes and what the campaign costs,
so the count here must match what the provider bills, character for character:

* A text made only of GSM 03.38 characters goes as **GSM-7**. Characters of the extension
  table (``^ { } \\ [ ] ~ | €`` and form feed) are sent as an escape pair and take two
  septets. Any other character forces the whole text into **UCS-2**, counted in UTF-16 code
  units (a character outside the Basic Multilingual Plane, such as most emoji, takes two).
* A text that fits one SMS (``gsm7_single`` / ``ucs2_single``) is one part. A longer one is
  split into parts of at most ``gsm7_part`` / ``ucs2_part`` units, and neither an escape pair
  nor a surrogate pair may straddle two parts. The split is therefore done for real, greedily,
  rather than by ceiling division: ``152 × "a" + "€" + 152 × "a"`` is 306 septets, "two
  parts" by division, but three on the network.
* Grapheme clusters (a base letter and a combining accent, a ZWJ emoji sequence) may be split
  across parts, as SMS centres do; only the code units matter for the count.
* An empty text has no parts: there is nothing to send and nothing to pay.

The encoding follows a policy (:data:`EncodingPolicy`, TimeToChat's ``--encoding``): ``auto``
is the exact rule above; ``unicode`` sends every text as UCS-2; ``latin1`` sends a text whose
every character is GSM-7 or ISO-8859-1 without TimeToChat's ``unicode`` option (its original:
"Par défaut l'encodage utilisé est l'ISO8859-1") and counts it as the provider's GSM table does,
one septet a character and two for the extension ones, so one ``ê`` no longer costs a French
text 2.3 times its price. The Latin-1 letters missing from GSM-7 are named in
``renders_differently``: the operator's network may show them as another letter.

Money is :class:`~decimal.Decimal` throughout (see :func:`cost`), so a campaign total is the
exact sum of its parts however many millions of messages it has.

:func:`smart_encode` is the opt-in fix for the commonest cause of UCS-2 in marketing texts:
typographic punctuation (``’``, ``«»``, no-break spaces) pasted from a word processor.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal

from dispatcher.config import PartSizes

__all__ = [
    "DEFAULT_SIZES",
    "ENCODING_POLICIES",
    "GSM7",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SMART_REPLACEMENTS",
    "UCS2",
    "Encoding",
    "EncodingPolicy",
    "SmsInfo",
    "analyze",
    "char_name",
    "check_limits",
    "cost",
    "segments",
    "smart_encode",
]

Encoding = Literal["GSM-7", "UCS-2"]
GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

EncodingPolicy = Literal["auto", "unicode", "latin1"]
ENCODING_POLICIES: Final[tuple[EncodingPolicy, ...]] = ("auto", "unicode", "latin1")

DEFAULT_SIZES: Final = PartSizes(gsm7_single=160, gsm7_part=153, ucs2_single=70, ucs2_part=67)
"""The sizes of the standard (a 6-octet concatenation header per part), with no provider cap."""

# GSM 03.38 (3GPP TS 23.038) default alphabet, septets 0x00-0x7F in order. 0x1B is the escape
# to the extension table, not a character, so it is left out of the set below.
_BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_BASIC: Final = frozenset(_BASIC_TABLE) - {"\x1b"}
"""The 127 characters of the GSM 03.38 basic table: one septet each."""

GSM7_EXTENSION: Final = frozenset("\x0c^{}\\[]~|€")
"""The extension table (form feed and ``^ { } \\ [ ] ~ | €``): escape + septet, two each."""

_GSM7_ALL: Final = GSM7_BASIC | GSM7_EXTENSION

_LATIN1_PRINTABLE: Final = frozenset(map(chr, [*range(0x20, 0x7F), *range(0xA0, 0x100)]))
_LATIN1_SENDABLE: Final = _GSM7_ALL | _LATIN1_PRINTABLE
"""What ``latin1`` sends without ``unicode``: GSM-7 (``€`` included) and printable Latin-1."""

_ZERO_WIDTH: Final = (
    "\u00ad"  # soft hyphen: invisible unless a line breaks there
    "\u200b\u200c\u200d"  # zero-width space, non-joiner, joiner
    "\u200e\u200f"  # left-to-right and right-to-left marks
    "\u2060\ufeff"  # word joiner, zero-width no-break space (a stray BOM)
)
# Every Unicode space separator except the plain space: no-break, narrow no-break (French
# typography puts one before ! ? ; :), thin, figure, ideographic, ...
_SPACES: Final = (
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000"
)

# Only punctuation and spacing, never a letter: replacing "ç" by "c" or "ê" by "e" changes the
# spelling of the customer's text, which is not ours to decide. The middle dot "·" is left
# alone because Catalan spells words with it ("col·legi"). Single guillemets follow « » to a
# quotation mark. A bullet becomes "-", the list marker people type on a phone.
_SMART: Final[dict[str, str]] = {
    **dict.fromkeys("‘’‚‛′‵‹›´`", "'"),
    **dict.fromkeys("“”„‟«»″‶", '"'),
    **dict.fromkeys("‐‑‒–—―−⁃", "-"),
    **dict.fromkeys(_SPACES, " "),
    **dict.fromkeys(_ZERO_WIDTH, ""),
    "…": "...",
    "•": "-",
}
SMART_REPLACEMENTS: Final[Mapping[str, str]] = MappingProxyType(_SMART)
"""What :func:`smart_encode` replaces, and with what ("" means the character is dropped)."""

_SMART_TABLE: Final = str.maketrans(_SMART)


@dataclasses.dataclass(frozen=True, slots=True)
class SmsInfo:
    """What a text costs on the network, as :func:`analyze` found it.

    ``units`` are septets for GSM-7 (an extension character counts two) and UTF-16 code units
    for UCS-2 (a non-BMP character counts two); ``chars`` is ``len(text)``, the measure the
    providers' character caps use. ``ucs2_forcing`` names the distinct characters that took
    the text out of GSM-7, in order of first appearance, so the operator can be told which
    ones to change; it is empty when the encoding is GSM-7 (and under the ``unicode`` policy
    for a text that needed nothing). ``renders_differently`` names the Latin-1 characters
    without a GSM-7 septet that the ``latin1`` policy sent in GSM-7. ``sizes`` are the part
    sizes ``parts`` was counted with, kept so :func:`check_limits` cannot compare it with
    another provider's limits by mistake.
    """

    encoding: Encoding
    units: int
    parts: int
    chars: int
    ucs2_forcing: tuple[str, ...]
    sizes: PartSizes
    renders_differently: tuple[str, ...] = ()

    @property
    def is_gsm7(self) -> bool:
        """True when the text travels in the 7-bit alphabet."""
        return self.encoding == GSM7


def _check_sizes(sizes: PartSizes) -> None:
    # A part must hold an escape pair or a surrogate pair, or no split could ever be valid.
    if min(sizes.gsm7_single, sizes.gsm7_part, sizes.ucs2_single, sizes.ucs2_part) < 2:
        raise ValueError(f"part sizes must be at least 2 units each, got {sizes}")


def _ucs2_forcing(text: str) -> tuple[str, ...]:
    # dict.fromkeys keeps first-appearance order and drops repeats.
    return tuple(dict.fromkeys(ch for ch in text if ch not in _GSM7_ALL))


def _costs(text: str, encoding: Encoding) -> list[int]:
    """Units each character takes in ``encoding``."""
    if encoding == GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    # A Python str holds code points, so a non-BMP character is one item here and can never be
    # split; a lone surrogate (not valid Unicode text) is counted as the one unit it occupies.
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _budgets(encoding: Encoding, sizes: PartSizes) -> tuple[int, int]:
    if encoding == GSM7:
        return sizes.gsm7_single, sizes.gsm7_part
    return sizes.ucs2_single, sizes.ucs2_part


def _cuts(costs: list[int], single: int, part: int) -> Iterator[int]:
    """End index of each part: greedy packing, no character ever split."""
    if not costs:
        return
    if sum(costs) <= single:
        yield len(costs)
        return
    used = 0
    for index, unit_cost in enumerate(costs):
        if used + unit_cost > part:
            yield index
            used = 0
        used += unit_cost
    yield len(costs)


def _encoding_of(text: str, policy: EncodingPolicy = "auto") -> Encoding:
    if policy == "unicode":
        return UCS2
    if all(ch in _GSM7_ALL for ch in text):
        return GSM7
    if policy == "latin1" and all(ch in _LATIN1_SENDABLE for ch in text):
        return GSM7
    return UCS2


def analyze(
    text: str, sizes: PartSizes | None = None, *, policy: EncodingPolicy = "auto"
) -> SmsInfo:
    """Encoding, units and parts of ``text`` under ``sizes`` (default: the standard 160/153/70/67)
    and the encoding ``policy`` (module docstring).

    Parts are counted by segmenting as :func:`segments` does, so the two always agree.
    """
    sizes = DEFAULT_SIZES if sizes is None else sizes
    _check_sizes(sizes)
    encoding = _encoding_of(text, policy)
    costs = _costs(text, encoding)
    single, part = _budgets(encoding, sizes)
    outside = _ucs2_forcing(text)
    return SmsInfo(
        encoding=encoding,
        units=sum(costs),
        parts=sum(1 for _ in _cuts(costs, single, part)),
        chars=len(text),
        ucs2_forcing=outside if encoding == UCS2 else (),
        sizes=sizes,
        renders_differently=outside if encoding == GSM7 else (),
    )


def segments(
    text: str, sizes: PartSizes | None = None, *, policy: EncodingPolicy = "auto"
) -> list[str]:
    """The parts ``text`` is sent as, in order; ``"".join(segments(text))`` is ``text``.

    Greedy: each part takes as many whole characters as fit, so an extension character or an
    emoji that would straddle a boundary starts the next part instead (a part may then hold
    152 septets, or 66 UCS-2 units).
    """
    sizes = DEFAULT_SIZES if sizes is None else sizes
    _check_sizes(sizes)
    encoding = _encoding_of(text, policy)
    single, part = _budgets(encoding, sizes)
    result: list[str] = []
    start = 0
    for end in _cuts(_costs(text, encoding), single, part):
        result.append(text[start:end])
        start = end
    return result


def check_limits(info: SmsInfo, sizes: PartSizes) -> str | None:
    """Why the provider would refuse this text, or ``None`` if it is within its limits.

    The character caps count characters (``info.chars``), as both providers state them
    (ByteHand 800; TimeToChat 1224 GSM-7 / 528 UCS-2); the part cap then catches texts that
    are short in characters but long in units (extension characters, emoji). The reason is a
    short stable string, ``"<code>: <detail>"``, fit for a report column and for grouping by
    code: ``text_too_long`` or ``too_many_parts``.

    Raises :class:`ValueError` if ``info`` was counted with other part sizes, since its part
    count would then be meaningless against these limits.
    """
    if info.sizes != sizes:
        raise ValueError("check_limits: info was analysed with other part sizes")
    char_limit = sizes.max_gsm7_chars if info.is_gsm7 else sizes.max_ucs2_chars
    if char_limit is not None and info.chars > char_limit:
        return f"text_too_long: {info.chars} {info.encoding} characters, limit {char_limit}"
    if sizes.max_parts is not None and info.parts > sizes.max_parts:
        return f"too_many_parts: {info.parts} parts, limit {sizes.max_parts}"
    return None


def cost(parts: int, price_per_part: Decimal | float | str) -> Decimal:
    """Price of ``parts`` SMS parts, as an exact :class:`~decimal.Decimal`.

    Decimal rather than float so that summing millions of messages gives the amount the
    provider bills, not one that drifts by binary rounding. A float price (as the TOML
    settings hold it) is converted through ``str``, its shortest round-trip form, so ``0.05``
    becomes ``Decimal("0.05")`` and not ``0.05000000000000000277...``.
    """
    if parts < 0:
        raise ValueError(f"parts must not be negative, got {parts}")
    price = price_per_part if isinstance(price_per_part, Decimal) else Decimal(str(price_per_part))
    if not price.is_finite() or price < 0:
        raise ValueError(f"price per part must be a finite non-negative number, got {price}")
    return parts * price


def smart_encode(text: str, sizes: PartSizes | None = None) -> str:
    """``text`` with typographic look-alikes replaced by GSM-7 ones, when that pays off.

    Replaces only the punctuation and spaces of :data:`SMART_REPLACEMENTS` (curly quotes and
    guillemets, dashes, ellipsis, bullet, no-break and other spaces) and drops zero-width
    characters; never a letter, so ``ç`` and ``ê`` stay as written (and keep the text UCS-2).

    All or nothing: the result is returned only if it is entirely GSM-7 and takes no more
    parts than ``text`` under ``sizes``; otherwise ``text`` comes back unchanged. In a text
    that stays UCS-2 a replacement never saves a unit (and removing a zero-width joiner would
    break an emoji sequence), and ``…`` → ``...`` can cost a part. Idempotent.
    """
    candidate = text.translate(_SMART_TABLE)
    if candidate == text or _encoding_of(candidate) != GSM7:
        return text
    if analyze(candidate, sizes).parts > analyze(text, sizes).parts:
        return text
    return candidate


def char_name(ch: str) -> str:
    """``"U+00A0 NO-BREAK SPACE"``: how to name a character of ``ucs2_forcing`` to an operator.

    Many characters that force UCS-2 are invisible or look like GSM-7 ones, so showing the
    character alone does not tell the operator what to fix.
    """
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED')}"
