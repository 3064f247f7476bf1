"""What contact search stores and looks for, made the same way on both sides: text folded
(case, accents and letters such as ø or ß), phone numbers in the forms people write them,
and the one- and two-character CJK words that a trigram index cannot see on their own."""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable

import phonenumbers

# Letters that NFKD leaves whole, spelt as people type them on a keyboard without them.
# ß and ẞ need no entry: case folding makes them ss.
_LETTERS = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "\u0131": "i",  # dotless i
        "ħ": "h",
        "ŧ": "t",
        "ĸ": "k",
        "ƒ": "f",
        # Phones type a curly apostrophe where a keyboard types a straight one.
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
    }
)
# Kana voicing marks make a different syllable (カ is not ガ), unlike an accent.
_KEEP_MARKS = {"\u3099", "\u309a"}
# Han ideographs, kana (without the middle dot that separates foreign names), Hangul
# syllables, and the iteration and closing marks written inside Japanese names.
_CJK = (
    "\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uf900-\ufaff\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
_CJK_TERM = re.compile(f"[{_CJK}]{{1,2}}")
_NOT_DIGIT = re.compile(r"[^0-9]")
_PHONE_QUERY = re.compile(r"[0-9 +()./-]+")

_region: str | None = None


def configure(region: str | None) -> None:
    """Read phone numbers written without + as numbers of region (an ISO 3166 code such as
    US); None reads only numbers written with + and a country code.

    :raise ValueError: a region phonenumbers does not know.
    """
    global _region
    region = (region or "").strip().upper() or None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            "DEFAULT_PHONE_REGION must be a two-letter country code (ISO 3166) such as US"
            f" or GB, not {region!r}"
        )
    _region = region


def phone_region() -> str | None:
    """The region numbers written without + are read in, if any."""
    return _region


def fold(text: str) -> str:
    """text as search compares it: case-folded, accents and other marks dropped, and the
    letters NFKD does not take apart spelt plainly (Ørsted and ØRSTED are orsted)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if c in _KEEP_MARKS or unicodedata.category(c) != "Mn")
    # NFC puts Hangul syllables and voiced kana back together after NFKD split them.
    return unicodedata.normalize("NFC", bare).casefold().translate(_LETTERS)


# The length of contacts.sort_name: folding can lengthen a name (ß is ss).
SORT_NAME_LENGTH = 200


def sort_name_for(name: str | None) -> str:
    """The key names are listed by and matched against at their start."""
    return fold(name or "")[:SORT_NAME_LENGTH]


def digits(value: str | None) -> str:
    """Only the ASCII digits of value."""
    return _NOT_DIGIT.sub("", value or "")


def _parse(value: str) -> phonenumbers.PhoneNumber | None:
    """value as a valid phone number (+ and a country code, or in the default region)."""
    value = value.strip()
    if _region is None and value.startswith("00"):
        # With no region to say how it dials abroad, 00 is the prefix most of the world uses.
        value = "+" + value[2:]
    try:
        number = phonenumbers.parse(value, _region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def phone_forms(phone: str | None) -> list[str]:
    """The digit strings stored for a phone number: as typed, and for a number
    phonenumbers knows, its E.164 digits (country code and national significant number)
    and its national form with the trunk prefix (020 7946 3999 for +44 20 7946 3999).

    A form found inside another is left out: search looks for substrings.
    """
    typed = digits(phone)
    if not typed:
        return []
    forms = [typed]
    number = _parse(phone or "")
    if number is not None:
        plain = copy.copy(number)
        plain.extension = None
        forms.append(digits(phonenumbers.format_number(plain, phonenumbers.PhoneNumberFormat.E164)))
        forms.append(
            digits(phonenumbers.format_number(plain, phonenumbers.PhoneNumberFormat.NATIONAL))
        )
    forms = list(dict.fromkeys(forms))
    return [f for f in forms if not any(f != g and f in g for g in forms)]


def phone_query(query: str) -> str | None:
    """The digits to look for when query is a phone number: a whole number's national
    significant number, which every stored form of it contains; otherwise the digits as
    typed (part of a number). None when query does not look like a phone number.

    Like any digits, the national significant number also finds a number of another
    country that holds the same digits (+1 207 946 3999 within +44 20 7946 3999).
    """
    if not _PHONE_QUERY.fullmatch(query) or len(digits(query)) < 3:
        return None
    number = _parse(query)
    if number is None:
        return digits(query)
    return phonenumbers.national_significant_number(number)


def cjk_words(text: str) -> list[str]:
    """Each CJK character and each pair of neighbours in text, once: the words a one- or
    two-character CJK search term finds (王小明 gives 王 小 明 王小 小明)."""
    words: dict[str, None] = {}
    for run in _CJK_RUN.findall(text):
        words.update(dict.fromkeys(run))
        words.update(dict.fromkeys(run[i : i + 2] for i in range(len(run) - 1)))
    return list(words)


def cjk_term(term: str) -> str | None:
    """A folded one- or two-character CJK term as the space-bounded word it is stored
    as, which is long enough for the trigram index; None for any other term."""
    return f" {term} " if _CJK_TERM.fullmatch(term) else None


def compose(parts: Iterable[str | None], phone: str | None) -> str:
    """The search text of these fields and this phone number."""
    text = " ".join(fold(p) for p in parts if p)
    pieces = [text, *phone_forms(phone)]
    words = cjk_words(text)
    if words:
        # Spaces on both sides of every word, the last included: a term is looked for
        # with its spaces.
        pieces.append(" ".join(words) + " ")
    return " ".join(p for p in pieces if p)
