"""Stable, readable identifiers for documents, sections, clauses, tables and chunks.

Ids are derived only from what the document says (its title, its numbering), never from counters
kept across runs or from clocks, so re-ingesting a file yields the same ids and the graph writer
can tell "changed" from "new". They are also meant to be read by auditors: ``CAS-14-收入/第五条``.

Separators are chosen so that the kinds never collide even though they share one doc prefix:
``doc/number`` is a clause, ``doc#path`` a section, ``doc/表n`` a table and ``clause:n`` a chunk.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from zhtext import CN_DIGITS, to_int

_PRC = "中华人民共和国"
_VERSION_PAREN = re.compile(r"\((?=[^()]*(?:\d{4}|修订|修正|试行|草案))[^()]*\)")
_CAS = re.compile(rf"企业会计准则第([0-9{CN_DIGITS}]+)号")
_DASHES = "-—–―‐‑‒─━~～_"
_QUOTES = "《》〈〉<>“”\"'‘’「」『』【】[]"
_CAS_SUBJECT = re.compile(rf"^[{re.escape(_DASHES)}]+[^》]*")
_CAS_SUFFIX = re.compile(r"(应用指南|解释.*|讲解)$")
_MAX_ID_CHARS = 80


def _strip_decoration(text: str) -> str:
    """Remove whitespace, quotes, dashes and Markdown emphasis: the parts references disagree on."""
    drop = set(_DASHES + _QUOTES + "*#")
    return "".join(ch for ch in text if not ch.isspace() and ch not in drop)


def _soft_normalize(title: str) -> str:
    """NFKC (full-width to half-width), no BOM, no trailing version: what both forms of a title share."""
    text = unicodedata.normalize("NFKC", title).replace("\ufeff", "").strip()
    return _VERSION_PAREN.sub("", text).strip()


def normalize_title(title: str) -> str:
    """A canonical form of a document title, for matching 《...》 references to stored documents.

    References and titles differ in ways that carry no meaning: full-width vs half-width forms,
    spaces inside numbers (第 14 号), the dash style between number and subject (—— / — / －－ /
    --), book-title marks, a trailing version such as （2017年修订） or (2024-06-28), and the
    ``中华人民共和国`` prefix of national laws. All of these are removed. Accounting standards are
    reduced to their number (``企业会计准则第22号``) because references often omit or abbreviate the
    subject, while the number alone identifies the standard; what follows the closing 》 (应用指南,
    解释) is kept since it names a different document.

    Args:
        title: a title as written in a file, a heading or a reference.

    Returns:
        The canonical title; ASCII letters are lower-cased. Empty when ``title`` has no content.
    """
    text = _soft_normalize(title)
    match = _CAS.search(text.replace(" ", ""))
    if match:
        compact = text.replace(" ", "")
        prefix, rest = compact[: match.start()], compact[match.end() :]
        subject = _CAS_SUBJECT.match(rest)
        if subject:
            remainder = rest[subject.end() :]
            if remainder.startswith("》"):
                rest = remainder
            else:
                suffix = _CAS_SUFFIX.search(subject.group(0))
                rest = (suffix.group(0) if suffix else "") + remainder
        try:
            number = str(to_int(match.group(1)))
        except ValueError:
            number = match.group(1)
        text = f"{prefix}企业会计准则第{number}号{rest}"
    text = _strip_decoration(text)
    if text.startswith(_PRC) and len(text) > len(_PRC):
        text = text[len(_PRC) :]
    return text.lower()


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8].upper()


def _slug_words(text: str) -> str:
    """Letters, digits and CJK of ``text`` run together: ``会计政策、会计估计变更`` -> ``会计政策会计估计变更``."""
    return "".join(re.findall(r"[^\W_]+", text))


def _cas_id(title: str) -> str | None:
    """``CAS-<number>-<subject>[-<suffix>]`` for a numbered accounting standard, else None.

    The number alone is not an identity: 第25号 is both 保险合同 (2020) and 原保险合同 (2006), two
    documents in force side by side. The subject tells them apart, and the version in parentheses
    stays out, so a revision of the same standard keeps its id and becomes a new version of it.
    A reference without a subject (《企业会计准则第22号》) gets ``CAS-22``, which no ingested
    standard has: references resolve such names through :func:`normalize_title` instead.
    """
    compact = _soft_normalize(title).replace(" ", "").replace("*", "").replace("#", "")
    match = _CAS.search(compact)
    if not match or compact[: match.start()].strip(_QUOTES):
        return None  # 关于《企业会计准则第14号》的通知 names a notice, not the standard
    try:
        number = str(to_int(match.group(1)))
    except ValueError:
        number = match.group(1)
    rest = compact[match.end() :]
    closing = rest.find("》")
    subject, after = (rest[:closing], rest[closing + 1 :]) if closing >= 0 else (rest, "")
    subject = subject.lstrip(_DASHES)
    suffix = _CAS_SUFFIX.search(subject)
    if suffix and closing < 0:
        subject, after = subject[: suffix.start()], suffix.group(0)
    parts = [f"CAS-{number}", _slug_words(subject), _slug_words(after)]
    return "-".join(p for p in parts if p)


def doc_id_for_title(title: str) -> str:
    """The document id: ``CAS-14-收入`` for 企业会计准则第14号——收入, else a punctuation-free slug.

    Ids must never collide, because the writer versions a document by its id: two documents
    sharing one would retire each other's clauses. Accounting standards therefore keep both their
    number and their subject (see :func:`_cas_id`); other titles are slugged from their
    normalized form, so two spellings of the same title get the same id. Titles without any
    letter or CJK character (or empty ones) fall back to ``DOC-<hash>`` so the id stays
    deterministic; very long titles are cut and suffixed with a hash to stay unique. Whether a
    file may take an id already held by another file is the writer's decision, not this one's.

    Examples:
        企业会计准则第14号——收入（2017年修订） -> ``CAS-14-收入``;
        《企业会计准则第14号——收入》应用指南（2018） -> ``CAS-14-收入-应用指南``;
        企业会计准则第25号——原保险合同（2006） -> ``CAS-25-原保险合同``;
        中华人民共和国会计法 -> ``会计法``; broker report -> ``BROKER-REPORT``.
    """
    cas = _cas_id(title)
    if cas is not None:
        return cas if len(cas) <= _MAX_ID_CHARS else f"{cas[: _MAX_ID_CHARS - 9]}-{_short_hash(cas)}"
    norm = normalize_title(title)
    unnumbered = re.fullmatch(r"企业会计准则(.*)", norm)
    if unnumbered and unnumbered.group(1):
        return f"CAS-{_slug_words(unnumbered.group(1))}"
    soft = _soft_normalize(title).replace("*", "").replace("#", "")
    soft = re.sub(rf"^[\s{re.escape(_QUOTES)}]*{_PRC}(?=\w)", "", soft)
    tokens = re.findall(r"[^\W_]+", soft)
    if not tokens:
        return f"DOC-{_short_hash(title)}"
    slug = tokens[0]
    for prev, token in zip(tokens, tokens[1:], strict=False):
        joiner = "-" if prev[-1].isascii() and token[0].isascii() else ""
        slug += joiner + token
    slug = slug.upper()
    if len(slug) > _MAX_ID_CHARS:
        slug = f"{slug[: _MAX_ID_CHARS - 9]}-{_short_hash(norm)}"
    return slug


def section_id(doc_id: str, path_numbers: Sequence[str]) -> str:
    """The id of a section from the numbers of itself and its ancestors: ``CAS-21#第二章/第一节``."""
    if not path_numbers:
        raise ValueError("a section id needs at least one number")
    return f"{doc_id}#{'/'.join(path_numbers)}"


def clause_id(doc_id: str, number: str) -> str:
    """The id of a clause: ``CAS-14/第五条``; ``number`` is already unique within the document."""
    return f"{doc_id}/{number}"


def table_id(doc_id: str, n: int) -> str:
    """The id of the ``n``-th table (1-based, document order): ``CAS-14/表3``."""
    return f"{doc_id}/表{n}"


def chunk_id(clause_id: str, n: int) -> str:
    """The id of the ``n``-th chunk (0-based) of a long clause: ``CAS-14/第五条:1``."""
    return f"{clause_id}:{n}"
