"""Personal-data redaction: phone numbers, ID numbers, bank cards and e-mail addresses become
typed placeholders such as ``[手机号]`` before anything leaves the ingest package.

Regulations are full of long digit strings that are not personal data (years, amounts, document
numbers, ISBNs), so digit patterns are confirmed by their own rules before they are replaced:
a PRC resident ID must carry a valid ISO 7064 MOD 11-2 check digit and a real birth date, a bank
card number must pass the Luhn check and start like a card. Checksums come from python-stdnum.
Originals are never logged; only counts are.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from stdnum import luhn
from stdnum.cn import ric

from ingest.config import RedactConfig
from ingest.types import Block, CleanDocument, RawTable
from kgqa.errors import ConfigError

log = structlog.get_logger(__name__)

MOBILE = "手机号"
LANDLINE = "固定电话"
ID_CARD = "身份证号"
BANK_CARD = "银行卡号"
EMAIL = "邮箱"

# Digits that belong to a longer number or a Latin code must not be matched in part.
_B = r"(?<![0-9A-Za-z])"
_E = r"(?![0-9A-Za-z])"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*[@＠][A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_ID18 = re.compile(
    _B + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + _E
)
_ID15 = re.compile(_B + r"[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}" + _E)
_CARD = re.compile(_B + r"(?:\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{13,19})" + _E)
_MOBILE = re.compile(_B + r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _E)
_LANDLINE = re.compile(
    r"(?<![0-9A-Za-z+])(?:[(（]0\d{2,3}[)）][ -]?|0\d{2,3}[ -]?)[1-9]\d{6,7}"
    r"(?:(?:转|-|ext\.?\s?|#)\d{1,6})?" + _E
)
# A card number starts with an issuer prefix: 3 (JCB, Amex), 4 (Visa), 5 (Mastercard),
# 6 (UnionPay 62, Discover), 9 (older domestic cards). ISBN-13s start with 978/979.
_CARD_FIRST_DIGITS = set("34569")
_ISBN_PREFIXES = ("978", "979")


@dataclass(frozen=True)
class _Detector:
    label: str
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] = lambda _: True


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    label: str
    rank: int


def valid_resident_id(number: str) -> bool:
    """A PRC resident ID: 18 characters with a valid check digit and a real past birth date, or
    the old 15-digit form with a real birth date (it has no check digit).

    The region code is not looked up: region tables change and a stale table must not let a real
    ID through unredacted.
    """
    number = number.upper()
    if len(number) == 18:
        if not number[:17].isdigit() or ric.calc_check_digit(number) != number[17]:
            return False
        return _plausible_birth(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    if len(number) == 15 and number.isdigit():
        return _plausible_birth(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    return False


def valid_bank_card(candidate: str) -> bool:
    """13-19 digits (separators allowed), a card issuer's first digit, and a valid Luhn checksum."""
    digits = re.sub(r"[ -]", "", candidate)
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


class Redactor:
    """Replaces personal data with typed placeholders and counts what it replaced.

    Args:
        config: ``extra_patterns`` maps a placeholder label to a regular expression; matches
            become ``[label]``. They compete with the built-in types: where two matches overlap,
            the one that starts first wins, then the longer one.

    Raises:
        ConfigError: an extra pattern is not a valid regular expression or matches the empty string.
    """

    def __init__(self, config: RedactConfig | None = None) -> None:
        config = config or RedactConfig()
        self._detectors: list[_Detector] = [
            _Detector(EMAIL, _EMAIL),
            _Detector(ID_CARD, _ID18, valid_resident_id),
            _Detector(ID_CARD, _ID15, valid_resident_id),
            _Detector(BANK_CARD, _CARD, valid_bank_card),
            _Detector(MOBILE, _MOBILE),
            _Detector(LANDLINE, _LANDLINE),
        ]
        for label, expression in config.extra_patterns.items():
            try:
                pattern = re.compile(expression)
            except re.error as exc:
                raise ConfigError(f"redaction pattern for '{label}' is not a valid regex: {exc}") from exc
            if pattern.search(""):
                raise ConfigError(
                    f"redaction pattern for '{label}' matches empty text; make it match something"
                )
            self._detectors.append(_Detector(label, pattern))

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """Replace every personal datum in ``text``; returns the new text and counts per label."""
        counts: Counter[str] = Counter()
        if not text:
            return text, counts
        hits = sorted(self._find(text), key=lambda h: (h.start, -(h.end - h.start), h.rank))
        pieces: list[str] = []
        cursor = 0
        for hit in hits:
            if hit.start < cursor:
                continue
            pieces.append(text[cursor : hit.start])
            pieces.append(f"[{hit.label}]")
            counts[hit.label] += 1
            cursor = hit.end
        if not counts:
            return text, counts
        pieces.append(text[cursor:])
        return "".join(pieces), counts

    def redact_document(self, doc: CleanDocument) -> CleanDocument:
        """A copy of ``doc`` with the title, every block's text, table cells and captions redacted.

        ``redactions`` holds the counts per label, added to any counts already there.
        """
        counts: Counter[str] = Counter(doc.redactions)
        title = self._redact_into(doc.title, counts)
        blocks = [self._redact_block(block, counts) for block in doc.blocks]
        found = sum(counts.values()) - sum(doc.redactions.values())
        if found:
            log.info("redact.document", redactions=found, by_type=dict(counts))
        return dataclasses.replace(doc, title=title, blocks=blocks, redactions=dict(counts))

    def _find(self, text: str) -> list[_Hit]:
        hits: list[_Hit] = []
        for rank, detector in enumerate(self._detectors):
            for match in detector.pattern.finditer(text):
                if match.end() > match.start() and detector.accept(match.group(0)):
                    hits.append(_Hit(match.start(), match.end(), detector.label, rank))
        return hits

    def _redact_into(self, text: str, counts: Counter[str]) -> str:
        redacted, found = self.redact(text)
        counts.update(found)
        return redacted

    def _redact_block(self, block: Block, counts: Counter[str]) -> Block:
        table = None
        if block.table is not None:
            table = RawTable(
                rows=[[self._redact_into(cell, counts) for cell in row] for row in block.table.rows],
                page=block.table.page,
                top=block.table.top,
                bottom=block.table.bottom,
                caption=self._redact_into(block.table.caption, counts) if block.table.caption else None,
            )
        # The text of a table block renders its cells: redact it without counting twice.
        text = self.redact(block.text)[0] if table is not None else self._redact_into(block.text, counts)
        return dataclasses.replace(block, text=text, table=table)
