"""Which texts are English: the language tag when it names one, else a cheap guess.

What belongs here: reading a network's language tag, and the heuristic that calls a
text "not English" (and so unscored, never passed off as neutral) on clear evidence
only. Scoring is social.sentiment's; the words VADER knows come from social.vader.
"""

from __future__ import annotations

import contextlib
import os
import re

from social import vader

_ENGLISH_CODES = {"en", "eng"}
# Codes that say nothing about the language: X's und/qme/qht/qam/qct/qst/zxx, ISO's mul.
_UNKNOWN_CODES = {"", "und", "mul", "zxx", "qme", "qht", "qam", "qct", "qst", "art"}

_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#$]\w[\w.]*")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?")
_ASCII_LETTER = re.compile("[A-Za-z]")
_ENGLISH = frozenset(
    """a about after again against all also always am an and any are as at back be because
    been before being between both but by can could day did do does don't down each even
    ever every few first for from get gets go going gone got had has have he her here hers
    him his how i i'm i've if in into is it it's its just know last like make many may me
    might more most much must my never new news next no not now of off on once one only or
    other our out over own people please really right said same say see she should since
    so some still such than that the their them then there these they thing think this
    those through time to today too two under until up us very want was way we well were
    what when where which while who why will with would year you your yours im dont cant
    wont thats whats lol omg thanks thank yes ok okay via""".split()
)
# Common function words of the Latin-script languages our users meet most, leaving out
# any that are also English words ("die", "no", "me", "a", "do", "so"...).
_FOREIGN = frozenset(
    """de el los las del que por para una es está pero muy como más gracias lo le su al
    esta este hay tiene cómo qué sólo también así yo se ya todo bien hoy nada la les des
    du est et je tu il elle nous vous ils pas une avec pour dans sur qui mais ou très merci
    au aux ce cette sont être c'est j'ai der das und ist nicht ich du wir ihr sie mit auf
    für ein eine einen dem zu von aber auch sehr noch wie wenn danke oder nur schon di che
    non sono è della gli anche molto questo grazie ho nel con não com um os muito obrigado
    você eu isso dos em na het een niet van ik je en dat met voor zijn maar ook wel
    dank""".split()
)

_known: frozenset[str] | None = None


def _known_words() -> frozenset[str]:
    """What is_english counts as an English word: a function word or a VADER lexicon
    word; built once, with the analyzer."""
    global _known
    if _known is None:
        _known = _ENGLISH | frozenset(vader.analyzer().lexicon)
    return _known


def is_english(text: str, language: str | None = None) -> bool:
    """Whether VADER can judge text: the language tag if it says, else a cheap guess.

    The guess errs towards English: a text is called foreign only on clear evidence
    (mostly non-Latin letters, or more foreign than English function words, or eight
    words and more with neither an English function word nor a VADER lexicon word), so
    short tweets in slang and emoji are still scored.
    """
    if language is not None:
        code = language.strip().lower().replace("_", "-").split("-", 1)[0]
        if code not in _UNKNOWN_CODES:
            return code in _ENGLISH_CODES
    clean = _NOISE.sub(" ", text)
    if clean.isascii():
        # The same tests, cheaper: every letter is an ASCII one, and lower-casing the
        # whole text changes no word boundary (nor is there a \u2019 to replace).
        if not _ASCII_LETTER.search(clean):
            return True  # emoji, emoticons, numbers: VADER reads those
        words = _WORD.findall(clean.lower())
    else:
        letters = sum(map(str.isalpha, clean))
        if letters == 0:
            return True  # emoji, emoticons, numbers: VADER reads those
        if len(_ASCII_LETTER.findall(clean)) * 2 < letters:
            return False
        words = [w.lower().replace("\u2019", "'") for w in _WORD.findall(clean)]
    known = _known_words()
    english = sum(map(known.__contains__, words))
    foreign = sum(map(_FOREIGN.__contains__, words))
    if foreign >= 2 and foreign > english:
        return False
    return not (len(words) >= 8 and english == 0)


def _build_before_fork() -> None:
    """Build the known words in a process about to fork, as social.vader builds its
    analyzer, so a worker's work-horses inherit them."""
    with contextlib.suppress(Exception):  # the child builds its own, as before
        _known_words()


os.register_at_fork(before=_build_before_fork)
