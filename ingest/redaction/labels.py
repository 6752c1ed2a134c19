"""Values that a label declares personal: ``身份证号：…``, ``联系人：王建国``, ``住址：…路88号``.

A label is stronger evidence than any checksum. A resident ID with one OCR error fails its check
digit, most corporate account numbers are not card numbers and fail Luhn, a passport number has no
checksum at all, and a name or an address has no shape a pattern could confirm; after its label,
each of them is personal whatever it looks like. So a labelled value is redacted when it has the
form of its kind (enough digits for a number, a short name, a street and a number for an
address), and the checksum tests of :mod:`ingest.redaction.numbers` are kept for numbers that
stand alone.

Names have no shape of their own, so two signals are used: the label (联系人, 经办人, 收款人,
申请人, 姓名 and their variants) and jieba's part-of-speech tagging (``nr``, a person's name). After
a label with a colon, a short run of Chinese characters that is not an organisation or a role is a
name; without a colon (``联系人王建国负责…``), jieba must tag the words after the label as a name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from ingest.redaction.kinds import (
    ADDRESS,
    BANK_ACCOUNT,
    BANK_CARD,
    ID_CARD,
    ID_DOCUMENT,
    LANDLINE,
    MOBILE,
    NAME,
    PASSPORT,
    PERMIT,
)
from ingest.redaction.numbers import is_mobile
from ingest.redaction.text import as_digits

_PHONE = "phone"  # a telephone label: mobile or landline, decided by the value

# Label -> kind. Matched in the ASCII view (full-width colons are ':' there).
_NUMBER_LABELS: tuple[tuple[str, str], ...] = (
    (ID_CARD, r"(?:公民)?身份证(?:件)?(?:号码|号|编号)?|公民身份号码|身份号码"),
    (PASSPORT, r"护照(?:号码|号|编号)?"),
    (
        PERMIT,
        r"(?:往来)?港澳(?:居民来往内地)?通行证(?:号码|号|编号)?|(?:回乡证|台胞证|通行证)(?:号码|号|编号)?",
    ),
    (ID_DOCUMENT, r"证件(?:号码|号|编号)"),
    (
        BANK_ACCOUNT,
        r"(?:银行|收款|付款|开户|结算|对公|个人|基本户|收款人|付款人)?[账帐]号"
        r"|(?:银行|收款|付款|开户|结算|对公|个人)[账帐]户(?:号码|号)?|[账帐]户号码",
    ),
    (BANK_CARD, r"(?:银行|信用|借记)?卡号(?:码)?|银行卡|信用卡|借记卡"),
    (MOBILE, r"手机(?:号码|号)?|移动电话"),
    (_PHONE, r"(?:联系|办公|固定|家庭|住宅|单位)?电话(?:号码)?|座机|传真(?:号码)?"),
)
_MIN_DIGITS = {_PHONE: 7, MOBILE: 11}
_DEFAULT_MIN_DIGITS = 6
_SEPARATOR = r"[ \t]*(?:[:]|为|是)?[ \t]*"

_NAME_LABELS = (
    r"(?:联系人|经办人|收款人|付款人|申请人|报销人|领款人|签收人|负责人|审批人|复核人|制单人|开户人|持卡人"
    r"|法定代表人|户名|姓名)(?:姓名)?"
)
_ADDRESS_LABELS = r"(?:家庭|户籍|居住|通讯|通信|联系|现|送达|收件|邮寄|身份证)?(?:住址|地址|住所)"

_NUMBER_RES = tuple((kind, re.compile(f"(?:{labels}){_SEPARATOR}")) for kind, labels in _NUMBER_LABELS)
# All number labels in one pass; the named group that matched tells the kind.
_ANY_NUMBER_LABEL = re.compile(
    "(?:" + "|".join(f"(?P<k{i}>{labels})" for i, (_, labels) in enumerate(_NUMBER_LABELS)) + f"){_SEPARATOR}"
)
_NAME_RE = re.compile(rf"(?:{_NAME_LABELS})(?P<sep>[ \t]*(?:[:]|为|是)?[ \t]*)")
_ADDRESS_RE = re.compile(rf"(?:{_ADDRESS_LABELS})[ \t]*(?:[:]|为|是|在)?[ \t]*")
_CELL_LABEL = re.compile(r"[ \t]*(?P<label>[^:]+?)[ \t]*:?[ \t]*")

# A number as written after its label: groups of letters and digits split by single spaces or
# dashes, optionally in parentheses (area codes) or after + (country codes).
_VALUE = re.compile(r"\+?\(?[0-9A-Za-z]+\)?(?:[ -]{1,2}\(?[0-9A-Za-z]+\)?)*")
_GROUP = re.compile(r"[^ -]+")
_NUMBER_SHAPE = re.compile(r"[A-Za-z]{0,2}\d+[Xx]?")

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_NAME_RUN = re.compile(rf"[{_CJK}·]{{1,12}}")
_LATIN_NAME = re.compile(r"[A-Z][a-z]+(?: [A-Z][a-z]+){1,2}(?![A-Za-z])")
_LIST_JOIN = re.compile(r"[、,和及与]")
_NOT_A_PERSON = re.compile(
    r"(?:部|处|科|室|组|中心|公司|银行|局|厅|委|院|所|队|办|行|社|会|集团|单位|部门|小组|机构|政府"
    r"|经理|总监|主管|主任|会计|出纳|部长|处长|科长|专员|人员|本人|领导|员工|职工|同上|待定|不详|见附件)$"
)
_ADDRESS_END = re.compile(r"[,;。\n|]")
_STREET = re.compile(
    r"(?:路|街|道|巷|弄|胡同|大街|大道|村|里|小区|花园|公寓|大厦|广场)"
    r"[^,;。\n|]{0,15}?[0-9零〇一二两三四五六七八九十百]+(?:号|弄|栋|幢|座|室|单元|楼|层)"
)
_UNIT = re.compile(r"[0-9零〇一二两三四五六七八九十百]+(?:号院|号楼|号|弄|栋|幢|座|室|单元|楼|层)")


@dataclass(frozen=True)
class Span:
    """A found personal datum: offsets in the text and its placeholder label."""

    start: int
    end: int
    label: str


@lru_cache(maxsize=1)
def _posseg():
    """jieba's part-of-speech tagger, imported on the first label that needs it (it loads a
    dictionary of ~350,000 words)."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def _tagged(text: str) -> list[tuple[str, str]]:
    return [(pair.word, pair.flag) for pair in _posseg().cut(text)]


def number_at(view: str, start: int, kind: str) -> Span | None:
    """The labelled number starting at ``start``, if one does: enough digits, letters only where
    numbers carry them (a passport's prefix, an ID's final X, an OCR'd O for 0)."""
    match = _VALUE.match(view, start)
    if not match:
        return None
    end, digits = None, 0
    for group in _GROUP.finditer(match.group(0)):
        cleaned = as_digits(re.sub(r"[ ()+-]", "", match.group(0)[: group.end()]))
        if not _NUMBER_SHAPE.fullmatch(cleaned):
            break
        end = group.end()
        digits = sum(ch.isdigit() for ch in cleaned)
    if end is None or digits < _MIN_DIGITS.get(kind, _DEFAULT_MIN_DIGITS):
        return None
    value = match.group(0)[:end].rstrip(")")
    if value.count("(") > value.count(")"):
        value += ")"
    label = kind
    if kind == _PHONE:
        label = MOBILE if is_mobile(value) else LANDLINE
    return Span(start, start + len(value), label)


def _is_name(word: str, colon: bool) -> bool:
    if _NOT_A_PERSON.search(word):
        return False
    tags = _tagged(word)
    if any(flag.startswith("nr") for _, flag in tags):
        return True
    # after a colon a short run is a name unless jieba knows it as one ordinary word (待定, 财务)
    return colon and 2 <= len(word) <= 4 and len(tags) > 1


def _name_at(text: str, start: int, colon: bool) -> Span | None:
    latin = _LATIN_NAME.match(text, start)
    if colon and latin:
        return Span(start, latin.end(), NAME)
    run = _NAME_RUN.match(text, start)
    if not run:
        return None
    word = run.group(0)
    if 2 <= len(word) <= 4 and _is_name(word, colon):
        return Span(start, run.end(), NAME)
    first, flag = _tagged(word[:8])[0]
    if flag.startswith("nr") and 2 <= len(first) <= 4 and not _NOT_A_PERSON.search(first):
        return Span(start, start + len(first), NAME)
    return None


def _names(text: str) -> Iterator[Span]:
    for m in _NAME_RE.finditer(text):
        colon = ":" in m.group("sep")
        span = _name_at(text, m.end(), colon)
        while span is not None:
            yield span
            joined = _LIST_JOIN.match(text, span.end)  # 经办人：刘洋、张伟
            span = _name_at(text, joined.end(), colon) if joined else None


def _address_at(text: str, start: int) -> Span | None:
    stop = _ADDRESS_END.search(text, start)
    value = text[start : stop.start() if stop else min(len(text), start + 80)]
    if not _STREET.search(value):
        return None
    last = None
    for last in _UNIT.finditer(value):  # noqa: B007 - the last unit ends the address
        pass
    return Span(start, start + last.end(), ADDRESS) if last else None


def find_labelled(view: str) -> list[Span]:
    """Labelled numbers, names and addresses in ``view`` (an :func:`ascii_view` of the text)."""
    spans: list[Span] = []
    for m in _ANY_NUMBER_LABEL.finditer(view):
        kind = _NUMBER_LABELS[int(m.lastgroup[1:])][0]
        span = number_at(view, m.end(), kind)
        if span is not None:
            spans.append(span)
    spans.extend(_names(view))
    for m in _ADDRESS_RE.finditer(view):
        span = _address_at(view, m.end())
        if span is not None:
            spans.append(span)
    return spans


def cell_label(view: str) -> str | None:
    """The kind a table cell declares for its column or its right neighbour (``身份证号``,
    ``联系人：``), or None when the cell is not a label by itself."""
    match = _CELL_LABEL.fullmatch(view)
    if not match:
        return None
    label = match.group("label")
    for kind, pattern in _NUMBER_RES:
        found = pattern.fullmatch(label)
        if found:
            return kind
    if re.fullmatch(_NAME_LABELS, label):
        return NAME
    if re.fullmatch(_ADDRESS_LABELS, label):
        return ADDRESS
    return None


def labelled_cell(view: str, kind: str) -> Span | None:
    """The personal datum in a table cell whose label is ``kind`` (from its header or its left
    neighbour): the cell is the value, so no label precedes it in its own text."""
    start = len(view) - len(view.lstrip())
    if not view.strip():
        return None
    if kind == NAME:
        return _name_at(view, start, colon=True)
    if kind == ADDRESS:
        return _address_at(view, start)
    return number_at(view, start, kind)
