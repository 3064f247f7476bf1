"""Money as deals hold it: ISO 4217 currencies with their minor-unit exponents, amounts
typed by people ("1,234.50", "1234,50", "1.234,50") parsed into whole minor units, and
amounts shown back formatted. Pure functions: no database, no request."""

from __future__ import annotations

import re

# ISO 4217 codes in use, each with the digits of its minor unit (most have two).
_EXPONENTS = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
    "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
    "UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)
CURRENCIES: dict[str, int] = {code: 2 for code in _TWO.split()}
CURRENCIES.update({code: exp for exp, codes in _EXPONENTS.items() for code in codes.split()})
# The symbols people expect in front of an amount; other currencies show their code.
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩"}
# Far beyond any deal, and well inside a BigInteger.
MAX_MINOR = 10**15
_SPACES = re.compile(r"[\s\u00a0\u202f'\u2019_]")
_SHAPE = re.compile(r"^[0-9][0-9.,]*$")


def currency_problem(code: str | None) -> str | None:
    """Why code is not a currency we take, for the person who typed it; None when it is."""
    if not code or not isinstance(code, str):
        return "Choose a currency."
    if code.upper() not in CURRENCIES:
        return "Choose a currency from the list (an ISO 4217 code such as EUR or USD)."
    return None


def _split(text: str, exponent: int) -> tuple[str, str] | None:
    """(whole digits, fraction digits) of a number written with '.' or ',' for
    thousands or decimals, or None when it cannot be read one way only."""
    marks = [c for c in text if c in ".,"]
    if not marks:
        return text, ""
    last = max(text.rfind("."), text.rfind(","))
    decimal_mark = text[last]
    if len(set(marks)) == 2:
        # Both: the last is the decimal mark, the other groups thousands.
        whole, fraction = text[:last], text[last + 1 :]
        if decimal_mark in whole:
            return None
    elif marks.count(decimal_mark) > 1:
        whole, fraction = text, ""
    else:
        whole, fraction = text[:last], text[last + 1 :]
        # "1,234" or "12.500": three digits after a lone mark group thousands, unless
        # the currency itself has three decimals.
        if len(fraction) == 3 and exponent != 3 and 1 <= len(whole) <= 3 and whole != "0":
            whole, fraction = text, ""
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        return None
    if not fraction.isdigit() and fraction:
        return None
    return "".join(groups), fraction


def parse_amount(raw: str | None, currency: str) -> tuple[int | None, str | None]:
    """(amount in minor units, None) for what a person typed, or (None, why not).

    Empty is zero. Spaces and apostrophes between digits are thousands separators."""
    exponent = CURRENCIES.get(currency.upper(), 2)
    text = _SPACES.sub("", raw or "")
    if not text:
        return 0, None
    example = "1,234" if exponent == 0 else "1,234." + "5".ljust(exponent, "0")
    if text.startswith("-"):
        return None, "Enter an amount of zero or more."
    if not _SHAPE.match(text) or text[-1] not in "0123456789":
        return None, f"Enter an amount in figures, like {example}."
    parts = _split(text, exponent)
    if parts is None:
        return None, f"This amount can be read more than one way: write it like {example}."
    whole, fraction = parts
    if len(fraction) > exponent:
        if exponent == 0:
            return None, f"{currency.upper()} has no smaller unit: enter a whole amount."
        return None, f"{currency.upper()} has at most {exponent} decimals."
    if len(whole) > 16:
        return None, "This amount is too large."
    minor = int(whole) * 10**exponent + int(fraction.ljust(exponent, "0") or "0")
    if minor >= MAX_MINOR:
        return None, "This amount is too large."
    return minor, None


def as_input(minor: int, currency: str) -> str:
    """An amount as the edit form shows it: plain digits and a point ("1234.50")."""
    exponent = CURRENCIES.get(currency, 2)
    if exponent == 0:
        return str(minor)
    whole, fraction = divmod(minor, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}"


def format_money(minor: int | None, currency: str) -> str:
    """An amount for people: "€1,234.50", "¥5,000", "1,234.500 KWD"."""
    exponent = CURRENCIES.get(currency, 2)
    minor = minor or 0
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    text = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"
