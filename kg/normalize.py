"""Normalization of the checkable atoms of Chinese regulations: numbers with their units.

The triple extractor stores normalized values (``20日``, ``3%``, ``50000元``) and the answer
verifier compares an answer's atoms with a clause's after the same normalization, so both sides
must agree on one canonical spelling: ``二十日 == 20日 == 20天``, ``百分之三 == 3%``,
``第二十二条 == 第22条``. Everything here is pure (no I/O, no global state) and works on
character offsets of the original text, so callers can point back at the surface form.

Chinese numerals are converted with ``cn2an``; the surrounding grammar (units, comparators,
dates, article numbers) with regular expressions, which are simpler than a parser for these
short, fixed patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import cn2an

QuantityKind = Literal["duration", "rate", "amount", "multiple", "date", "article"]
Comparator = Literal["<", "<=", ">", ">="]

# Full-width digits and signs become ASCII one character for one, so spans stay valid.
_WIDTH = str.maketrans("０１２３４５６７８９％．", "0123456789%.")

_CN_DIGITS = "零〇一二两三四五六七八九"
_CN = rf"[{_CN_DIGITS}十][{_CN_DIGITS}十百千万亿点]*"
_AR = r"\d+(?:,\d{3})*(?:\.\d+)?"
_NUM = rf"(?:{_AR}|{_CN})"

_PREFIX = r"(?P<pre>不得超过|不超过|不高于|不低于|不少于|不足|未满|超过|高于|低于|少于|达到|满)?"
_SUFFIX = r"(?P<suf>及以上|及以下|以上|以下|以内|之内|内)?"

_PREFIX_CMP: dict[str, Comparator] = {
    "不得超过": "<=",
    "不超过": "<=",
    "不高于": "<=",
    "不低于": ">=",
    "不少于": ">=",
    "达到": ">=",
    "满": ">=",
    "超过": ">",
    "高于": ">",
    "不足": "<",
    "未满": "<",
    "低于": "<",
    "少于": "<",
}
_SUFFIX_CMP: dict[str, Comparator] = {
    "及以上": ">=",
    "以上": ">=",
    "及以下": "<=",
    "以下": "<=",
    "以内": "<=",
    "之内": "<=",
    "内": "<=",
}

_DATE = re.compile(
    rf"(?P<y>\d{{4}}|[{_CN_DIGITS}]{{4}})年(?P<m>\d{{1,2}}|[一二三四五六七八九十]{{1,2}})月"
    rf"(?:(?P<d>\d{{1,2}}|[一二三四五六七八九十]{{1,3}})日)?"
)
_ARTICLE = re.compile(rf"第\s*(?P<n>\d+|[{_CN_DIGITS}十百千]+)\s*(?P<u>条|款|项|章|节|号)")
_RATE = re.compile(
    rf"{_PREFIX}(?:百分之(?P<pct>{_NUM})|千分之(?P<pml>{_NUM})|(?P<num>{_AR})\s*(?P<sign>%|‰)"
    rf"|(?P<den>[{_CN_DIGITS}十百]+)分之(?P<nom>{_NUM})){_SUFFIX}"
)
_AMOUNT = re.compile(rf"{_PREFIX}(?P<cur>人民币)?(?P<num>{_NUM})(?P<mul>千|万|亿)?(?P<unit>元){_SUFFIX}")
_MULTIPLE = re.compile(rf"{_PREFIX}(?P<num>{_NUM})倍{_SUFFIX}")
_DURATION = re.compile(
    rf"{_PREFIX}(?P<num>{_NUM})(?P<ge>个)?"
    rf"(?P<unit>个?工作日|日|天|月|年(?![度级末初])|季度|小时|周|星期){_SUFFIX}"
)

_DURATION_UNITS = {"日": "日", "天": "日", "工作日": "工作日", "个工作日": "工作日", "月": "个月", "年": "年"}
_DURATION_UNITS.update({"季度": "季度", "小时": "小时", "周": "周", "星期": "周"})
_MULTIPLIERS = {None: 1, "千": 1_000, "万": 10_000, "亿": 100_000_000}


@dataclass(frozen=True)
class Quantity:
    """One checkable atom found in a text.

    Attributes:
        kind: what was found: ``duration``, ``rate``, ``amount``, ``multiple``, ``date`` or
            ``article`` (an article/paragraph/standard number).
        value: the number (float; integral numbers are stored as whole floats) or, for dates,
            the ISO string.
        unit: the canonical unit (``日``, ``工作日``, ``个月``, ``年``, ``%``, ``元``, ``倍``,
            ``条``/``款``/``项``/``章``/``节``/``号``; ``""`` for dates).
        surface: the text as written, including comparator words (``不超过三个月``).
        span: ``(start, end)`` character offsets of ``surface`` in the searched text.
        comparator: ``<``, ``<=``, ``>``, ``>=`` when the text bounds the value, else ``None``.
    """

    kind: QuantityKind
    value: float | str
    unit: str
    surface: str
    span: tuple[int, int]
    comparator: Comparator | None = None

    @property
    def normalized(self) -> str:
        """The canonical spelling of the value without its comparator (``20日``, ``第22条``)."""
        if self.kind == "date":
            return str(self.value)
        if self.kind == "article":
            return f"第{format_number(float(self.value))}{self.unit}"
        return f"{format_number(float(self.value))}{self.unit}"

    @property
    def normalized_with_comparator(self) -> str:
        """``<=3个月`` style, for comparing bounds as well as values."""
        return f"{self.comparator or ''}{self.normalized}"


def format_number(value: float) -> str:
    """Write a number without a trailing ``.0`` and without float noise (``17.5``, ``0.5``)."""
    rounded = round(value, 6)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.6f}".rstrip("0").rstrip(".")


def parse_number(text: str) -> float:
    """Parse an Arabic or Chinese numeral (``1,000``, ``1.5``, ``二十``, ``十七点五``, ``五十万``).

    Raises:
        ValueError: when ``text`` is not a number.
    """
    text = text.translate(_WIDTH).replace(",", "").strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if re.fullmatch(rf"[{_CN_DIGITS}]{{2,}}", text) and "十" not in text:
        # Digit-by-digit numbers such as years (二〇二四) have no place values.
        return float(
            "".join(str("零一二三四五六七八九".find(c.replace("〇", "零").replace("两", "二"))) for c in text)
        )
    return float(cn2an.cn2an(text, "smart"))


def _comparator(m: re.Match[str]) -> Comparator | None:
    pre, suf = m.group("pre"), m.group("suf")
    if pre:
        return _PREFIX_CMP[pre]
    if suf:
        return _SUFFIX_CMP[suf]
    return None


def _dates(text: str) -> list[Quantity]:
    found = []
    for m in _DATE.finditer(text):
        try:
            year, month = int(parse_number(m.group("y"))), int(parse_number(m.group("m")))
            day = int(parse_number(m.group("d"))) if m.group("d") else None
        except ValueError:
            continue
        if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
            continue
        iso = f"{year:04d}-{month:02d}" + (f"-{day:02d}" if day else "")
        found.append(Quantity("date", iso, "", m.group(0), m.span()))
    return found


def _articles(text: str) -> list[Quantity]:
    found = []
    for m in _ARTICLE.finditer(text):
        try:
            n = parse_number(m.group("n"))
        except ValueError:
            continue
        found.append(Quantity("article", n, m.group("u"), m.group(0), m.span()))
    return found


def _rates(text: str) -> list[Quantity]:
    found = []
    for m in _RATE.finditer(text):
        try:
            if m.group("pct"):
                value = parse_number(m.group("pct"))
            elif m.group("pml"):
                value = parse_number(m.group("pml")) / 10
            elif m.group("num"):
                value = parse_number(m.group("num")) / (10 if m.group("sign") == "‰" else 1)
            else:
                value = parse_number(m.group("nom")) / parse_number(m.group("den")) * 100
        except (ValueError, ZeroDivisionError):
            continue
        found.append(Quantity("rate", value, "%", m.group(0), m.span(), _comparator(m)))
    return found


def _amounts(text: str) -> list[Quantity]:
    found = []
    for m in _AMOUNT.finditer(text):
        try:
            value = parse_number(m.group("num")) * _MULTIPLIERS[m.group("mul")]
        except ValueError:
            continue
        found.append(Quantity("amount", value, "元", m.group(0), m.span(), _comparator(m)))
    return found


def _multiples(text: str) -> list[Quantity]:
    found = []
    for m in _MULTIPLE.finditer(text):
        try:
            value = parse_number(m.group("num"))
        except ValueError:
            continue
        found.append(Quantity("multiple", value, "倍", m.group(0), m.span(), _comparator(m)))
    return found


def _durations(text: str) -> list[Quantity]:
    found = []
    for m in _DURATION.finditer(text):
        unit = m.group("unit")
        if unit == "月" and not m.group("ge"):
            continue  # "6月" is a month of a date, not six months
        start = m.start("num")
        if unit in ("日", "天") and start > 0 and text[start - 1] == "月":
            continue  # "次月1日" is a day of the month
        if unit == "年" and re.fullmatch(r"\d{4}", m.group("num")):
            continue  # "2017年" is a year
        try:
            value = parse_number(m.group("num"))
        except ValueError:
            continue
        found.append(Quantity("duration", value, _DURATION_UNITS[unit], m.group(0), m.span(), _comparator(m)))
    return found


def extract_quantities(text: str, kinds: set[QuantityKind] | None = None) -> list[Quantity]:
    """Find every duration, rate, amount, multiple, date and article number in ``text``.

    Overlaps are settled by priority (dates and article numbers first, so ``2024年6月28日`` is
    not also a duration of 28 days) and then by length. Results are in text order.

    Args:
        text: any text; full-width digits are accepted.
        kinds: restrict to these kinds; ``None`` means all.

    Returns:
        The quantities, each with the span of its surface in ``text``.
    """
    text = text.translate(_WIDTH)
    finders = (
        ("date", _dates),
        ("article", _articles),
        ("rate", _rates),
        ("amount", _amounts),
        ("multiple", _multiples),
        ("duration", _durations),
    )
    taken: list[tuple[int, int]] = []
    result: list[Quantity] = []
    for kind, finder in finders:
        for q in sorted(finder(text), key=lambda q: (q.span[0], -(q.span[1] - q.span[0]))):
            start, end = q.span
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append(q.span)
            if kinds is None or kind in kinds:
                result.append(q)
    return sorted(result, key=lambda q: q.span)


def _clean(surface: str) -> str:
    text = surface.translate(_WIDTH)
    text = re.sub(r"\s+", "", text)
    return text.strip("，。；：、,.;:!?！？“”\"'（）()")


def normalize_atom(surface: str, with_comparator: bool = False) -> str:
    """The canonical form of one atom, so that equal facts compare equal as strings.

    ``二十日``, ``20日`` and ``20天`` all give ``20日``; ``百分之三`` gives ``3%``; ``第二十二条``
    gives ``第22条``. Text that is not a single quantity comes back trimmed of spaces and edge
    punctuation, with full-width digits made ASCII.

    Args:
        surface: the atom as written.
        with_comparator: prefix the comparator (``<=3个月`` for ``不超过三个月``), for callers
            that must tell a bound from a value.
    """
    cleaned = _clean(surface)
    quantities = extract_quantities(cleaned)
    if len(quantities) == 1:
        q = quantities[0]
        rest = (cleaned[: q.span[0]] + cleaned[q.span[1] :]).strip()
        if not rest or rest in {"人民币", "的"}:
            return q.normalized_with_comparator if with_comparator else q.normalized
    return cleaned


def normalize_text(text: str) -> str:
    """Rewrite every quantity in ``text`` in canonical form, leaving the rest as it is.

    Lets a caller look for ``20日`` in a clause that says ``二十日内`` with a plain substring test;
    comparator words stay in the text (``不超过3个月``).
    """
    text = text.translate(_WIDTH)
    out: list[str] = []
    pos = 0
    for q in extract_quantities(text):
        start, end = q.span
        core = q.normalized
        m = re.match(_PREFIX, q.surface)
        pre = m.group("pre") if m and m.group("pre") else ""
        suf_m = re.search(r"(及以上|及以下|以上|以下|以内|之内|内)$", q.surface) if q.kind != "date" else None
        suf = suf_m.group(1) if suf_m else ""
        out.append(text[pos:start] + pre + core + suf)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def article_number(text: str) -> tuple[int, str] | None:
    """Parse ``第二十二条`` / ``第22条`` / ``第十四号`` into ``(22, "条")``; ``None`` if it is not one."""
    m = _ARTICLE.fullmatch(_clean(text))
    if not m:
        return None
    try:
        return int(parse_number(m.group("n"))), m.group("u")
    except ValueError:
        return None


def chinese_article(number: int, unit: str = "条") -> str:
    """``(22, "条")`` -> ``第二十二条``: how Chinese laws and standards write their numbers."""
    return f"第{cn2an.an2cn(str(number))}{unit}"
