"""Opt-out keywords: what an incoming SMS means, from its whole text, with no I/O.

An SMS is an opt-out only when its **whole text**, normalised, is a keyword: "STOP", " Stop. ",
"ARRÊT", "arret !", "СТОП". A sentence that merely contains one ("Stop, c'est quoi cette offre
?") is a reply for a human to read: suppressing on a substring would silence customers who ask
a question. Normalisation: Unicode NFKD with the combining marks dropped (accents: ARRÊT is
ARRET; the Cyrillic Й and Ё fold to И and Е, the way people type them without the key),
case-folded, dashes and underscores read as spaces, inner spaces collapsed, and punctuation or
symbols (emoji included) trimmed from both ends.

The built-in table covers French, English and Russian, with the misspellings seen in practice;
``[audience] opt_out_keywords`` and ``opt_in_keywords`` extend it (never shrink it: a keyword
the law expects must keep working whatever the configuration says).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "DEFAULT_KEYWORDS",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "Intent",
    "Keywords",
    "has_optout_mention",
    "normalise",
    "with_optout_mention",
]


class Intent(enum.StrEnum):
    """What an incoming SMS asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    REPLY = "reply"


OPT_OUT_WORDS: tuple[str, ...] = (
    # French (the CNIL's "STOP au 36xxx" and what customers actually type)
    "stop",
    "stop sms",
    "stopsms",
    "stop pub",
    "stop svp",
    "stp stop",
    "arret",
    "arrete",
    "arreter",
    "arret sms",
    "aret",
    "arett",
    "arrett",
    "arrt",
    "desabonner",
    "desabonnement",
    "desabonne",
    "desabonner moi",
    "desinscrire",
    "desinscription",
    "se desabonner",
    "stop merci",
    # English
    "unsubscribe",
    "unsub",
    "stop all",
    "stopall",
    "opt out",
    "optout",
    "cancel",
    "end",
    "quit",
    # Russian (stop, unsubscribe; Latin-keyboard "cnjg" is "стоп" typed on a QWERTY layout)
    "стоп",
    "стопп",
    "отписаться",
    "отписатся",
    "отписка",
    "отпишите",
    "отпишите меня",
    "хватит",
    "cnjg",
)
"""Whole texts, already normalised, that mean "send me no more"."""

OPT_IN_WORDS: tuple[str, ...] = (
    "start",
    "unstop",
    "abonner",
    "sabonner",
    "s abonner",
    "reabonner",
    "старт",
    "подписаться",
)
"""Whole texts that mean "you may write to me again"."""

_SPACES = re.compile(r"[\s\-_]+")
_MENTION = re.compile(r"\bstop\b[^0-9]{0,20}\b3\d{4}\b")
"""The CNIL's form, "STOP au 36xxx" (also "STOP SMS au 36105", "Stop: 36111")."""


def _trim_category(character: str) -> bool:
    return unicodedata.category(character)[0] in "PSZC"


def normalise(text: str) -> str:
    """The comparable form of a text (see the module docstring)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = plain.replace("'", " ").replace("’", " ")
    start, end = 0, len(plain)
    while start < end and _trim_category(plain[start]):
        start += 1
    while end > start and _trim_category(plain[end - 1]):
        end -= 1
    return _SPACES.sub(" ", plain[start:end]).strip()


@dataclasses.dataclass(frozen=True)
class Keywords:
    """The keyword table: normalised opt-out and opt-in texts."""

    opt_out: frozenset[str]
    opt_in: frozenset[str]

    @classmethod
    def build(cls, opt_out: Iterable[str] = (), opt_in: Iterable[str] = ()) -> Keywords:
        """The built-in table extended by ``opt_out``/``opt_in`` (any case, accents)."""
        out = frozenset(normalise(w) for w in (*OPT_OUT_WORDS, *opt_out)) - {""}
        into = frozenset(normalise(w) for w in (*OPT_IN_WORDS, *opt_in)) - {""}
        return cls(out, into - out)

    def classify(self, text: str) -> Intent:
        """Opt-out, opt-in, or a reply for a human (anything else)."""
        key = normalise(text)
        if key in self.opt_out:
            return Intent.OPT_OUT
        if key in self.opt_in:
            return Intent.OPT_IN
        return Intent.REPLY


DEFAULT_KEYWORDS = Keywords.build()


def has_optout_mention(template: str, mention: str) -> bool:
    """Whether a text offers a free opt-out: "STOP au 36xxx" or the configured ``mention``."""
    text = normalise(template)
    return bool(_MENTION.search(text)) or bool(mention and normalise(mention) in text)


def with_optout_mention(template: str, mention: str) -> str:
    """``template`` ending with ``mention`` (unchanged when it already offers an opt-out)."""
    if not mention or has_optout_mention(template, mention):
        return template
    return f"{template.rstrip()} {mention}"
