"""Opt-out keywords: whole texts only, normalised, extendable."""

from __future__ import annotations

import pytest

from dispatcher.keywords import DEFAULT_KEYWORDS, Intent, Keywords, normalise

OPT_OUTS = [
    "STOP",
    " stop. ",
    "Stop !",
    "STOP SMS",
    "stop-sms",
    "ARRET",
    "ARRÊT",
    "arrête",
    "Arèt",
    "DESABONNER",
    "Désabonner",
    "UNSUBSCRIBE",
    "СТОП",
    "стоп!",
    "ОТПИСАТЬСЯ",
    "Отписаться.",
    "«STOP»",
]
REPLIES = [
    "Stop, c'est quoi cette offre ?",
    "please stop texting me at night",
    "STOPPER",
    "Ceci est un test",
    "Стоп, а что за акция?",
    "",
]


@pytest.mark.parametrize("text", OPT_OUTS)
def test_opt_out_keywords(text: str) -> None:
    """Every listed opt-out, in any case, accent or punctuation, is an opt-out."""
    assert DEFAULT_KEYWORDS.classify(text) == Intent.OPT_OUT


@pytest.mark.parametrize("text", REPLIES)
def test_sentences_are_replies(text: str) -> None:
    """A text that merely contains a keyword is a reply, not an opt-out."""
    assert DEFAULT_KEYWORDS.classify(text) == Intent.REPLY


@pytest.mark.parametrize("text", ["START", "start", "Abonner", "S'ABONNER", "СТАРТ", "старт."])
def test_opt_in_keywords(text: str) -> None:
    """START, ABONNER and СТАРТ re-subscribe."""
    assert DEFAULT_KEYWORDS.classify(text) == Intent.OPT_IN


def test_configuration_extends_the_table() -> None:
    """A configured keyword is added; the built-in ones keep working."""
    keywords = Keywords.build(opt_out=["Basta"], opt_in=["Reprendre"])
    assert keywords.classify("BASTA !") == Intent.OPT_OUT
    assert keywords.classify("reprendre") == Intent.OPT_IN
    assert keywords.classify("stop") == Intent.OPT_OUT
    assert DEFAULT_KEYWORDS.classify("basta") == Intent.REPLY


def test_normalise_folds_accents_case_and_spaces() -> None:
    """Accents and case fold, inner spaces collapse, surrounding punctuation goes."""
    assert normalise("  ¡Désabonner   MOI!! ") == "desabonner moi"
