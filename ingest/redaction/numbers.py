"""Unlabelled personal numbers, confirmed by their own rules before they are replaced.

Regulations are full of long digit strings that are not personal data (years, amounts, document
numbers, ISBNs), so a number *without* a label is only redacted when it proves itself: a PRC
resident ID must carry a valid ISO 7064 MOD 11-2 check digit and a real birth date, a bank card
must pass the Luhn check and start like a card, a passport or permit must have its exact shape.
Checksums come from python-stdnum. Numbers that a label declares personal skip these tests
(``ingest.redaction.labels``): most corporate account numbers fail Luhn, and one OCR error breaks
an ID's check digit without making it any less personal.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum import luhn
from stdnum.cn import ric

from ingest.redaction.kinds import BANK_CARD, EMAIL, ID_CARD, LANDLINE, MOBILE, PASSPORT, PERMIT

# Digits that belong to a longer number or a Latin code must not be matched in part.
_B = r"(?<![0-9A-Za-z])"
_E = r"(?![0-9A-Za-z])"
_S = r"[ -]?"  # one optional separator: 110105 19491231 002X, 138-1234-5678

EMAIL_PATTERN = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
# 18 digits as written (6-8-4) or with the birth date split (6-4-4-4)
_ID18 = re.compile(_B + rf"[1-9]\d{{5}}{_S}(?:18|19|20)\d{{2}}{_S}{_DATE}{_S}\d{{3}}[\dXx]" + _E)
_ID15 = re.compile(_B + rf"[1-9]\d{{5}}{_S}\d{{2}}{_DATE}{_S}\d{{3}}" + _E)
_CARD = re.compile(_B + r"(?:\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{13,19})" + _E)
_MOBILE = re.compile(_B + r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _E)
_LANDLINE = re.compile(
    r"(?<![0-9A-Za-z+])(?:\(0\d{2,3}\)[ -]?|0\d{2,3}[ -]?)[1-9]\d{6,7}"
    r"(?:(?:转|-|ext\.?\s?|#)\d{1,6})?" + _E
)
# Mainland passports: E + 8 digits, E + letter + 7 digits (e-passports), G + 8 digits (older).
_PASSPORT = re.compile(_B + r"(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})" + _E)
# 往来港澳通行证 C/W + 8 digits or C + letter + 7; 港澳居民来往内地通行证 H/M + 8 or 10 digits.
_PERMIT = re.compile(_B + r"(?:[CW]\d{8}|C[A-HJ-NP-Z]\d{7}|[HM]\d{8}(?:\d{2})?)" + _E)
# A card number starts with an issuer prefix: 3 (JCB, Amex), 4 (Visa), 5 (Mastercard),
# 6 (UnionPay 62, Discover), 9 (older domestic cards). ISBN-13s start with 978/979.
_CARD_FIRST_DIGITS = set("34569")
_ISBN_PREFIXES = ("978", "979")


def _digits(text: str) -> str:
    return re.sub(r"[ -]", "", text)


def valid_resident_id(number: str) -> bool:
    """A PRC resident ID: 18 characters with a valid check digit and a real past birth date, or
    the old 15-digit form with a real birth date (it has no check digit). Separators are ignored.

    The region code is not looked up: region tables change and a stale table must not let a real
    ID through unredacted.
    """
    number = _digits(number).upper()
    if len(number) == 18:
        if not number[:17].isdigit() or ric.calc_check_digit(number) != number[17]:
            return False
        return _plausible_birth(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    if len(number) == 15 and number.isdigit():
        return _plausible_birth(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    return False


def valid_bank_card(candidate: str) -> bool:
    """13-19 digits (separators allowed), a card issuer's first digit, and a valid Luhn checksum."""
    digits = _digits(candidate)
    if not (13 <= len(digits) <= 19) or digits[0] not in _CARD_FIRST_DIGITS:
        return False
    if len(digits) == 13 and digits.startswith(_ISBN_PREFIXES):
        return False
    return luhn.is_valid(digits)


def _plausible_birth(year: int, month: int, day: int) -> bool:
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        return False
    return datetime.date(1900, 1, 1) <= born <= datetime.date.today()


@dataclass(frozen=True)
class Detector:
    """A pattern for one kind of personal datum, and the test a match must pass to count."""

    label: str
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] = lambda _: True


# Every unlabelled number needs at least seven digits in a row or split once (138-1234-5678,
# 110105 1949..., E12345678); text without such a run (most of a regulation) skips the patterns.
LONG_NUMBER = re.compile(r"\d{3,}[ -]?\d{4}")

UNLABELLED: tuple[Detector, ...] = (
    Detector(EMAIL, EMAIL_PATTERN),
    Detector(ID_CARD, _ID18, valid_resident_id),
    Detector(ID_CARD, _ID15, valid_resident_id),
    Detector(BANK_CARD, _CARD, valid_bank_card),
    Detector(MOBILE, _MOBILE),
    Detector(LANDLINE, _LANDLINE),
    Detector(PASSPORT, _PASSPORT),
    Detector(PERMIT, _PERMIT),
)
"""Detectors that need no label, in priority order (earlier wins a tie)."""


def is_mobile(value: str) -> bool:
    """True when a (labelled) phone value is a mainland mobile number rather than a landline."""
    return _MOBILE.fullmatch(value.strip()) is not None
