"""Questions that name a document and/or an article reach those clauses directly.

Staff write references in many shapes: ``《建筑法》第二十二条``, ``建筑法第22条``,
``企业会计准则第14号第五条``, ``第十四号准则第五条``, ``收入准则第五条``, ``CAS 14 第五条``. An alias
table built from the titles of the documents in the graph maps each way of naming a document to
its id; article numbers are compared as integers, so Chinese and Arabic numerals both work.
Lexical retrievers cannot do this reliably: "第五条" appears in dozens of clauses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from ingest.ids import normalize_title
from kg.normalize import article_number
from zhtext import CN_DIGITS, fold, to_int

_PRC = "中华人民共和国"
_DROP = set("《》〈〉<>“”\"'‘’「」『』【】[]()（）—–―‐‑‒─━-－~～_*#·")
_NUM = rf"[0-9{CN_DIGITS}]+"
_HAO = re.compile(rf"第({_NUM})号")
_ARTICLE = re.compile(rf"第({_NUM})条")
_CAS_TITLE = re.compile(r"企业会计准则第(\d+)号[—\-－–―_~～\s]*([^（(《》\s—\-]+)?")
_COURT = re.compile(r"^最高人民法院关于审理(.+?)(?:纠纷)?案件适用法律问题的解释(.*)$")


def normalize_question(text: str) -> str:
    """The form both questions and aliases are matched in.

    NFKC, lower case, no whitespace, quotes, brackets or dashes, no ``中华人民共和国`` prefix, and
    ``第十四号`` written ``第14号`` — the differences between ways of writing the same name.
    """
    norm = fold(text)
    norm = "".join(ch for ch in norm if not ch.isspace() and ch not in _DROP)
    norm = norm.replace(_PRC, "")

    def arabic(m: re.Match[str]) -> str:
        try:
            return f"第{to_int(m.group(1))}号"
        except ValueError:
            return m.group(0)

    norm = _HAO.sub(arabic, norm)
    # "十四号准则" without 第
    return re.sub(
        rf"(?<!第)([{CN_DIGITS}]+)号准则",
        lambda m: f"{to_int(m.group(1))}号准则" if _is_numeral(m.group(1)) else m.group(0),
        norm,
    )


def _is_numeral(text: str) -> bool:
    try:
        to_int(text)
    except ValueError:
        return False
    return True


def title_aliases(title: str, doc_id: str) -> set[str]:
    """Ways of naming the document titled ``title``, normalized by :func:`normalize_question`.

    Accounting standards get their number forms (企业会计准则第14号, 第14号准则, 14号准则, cas14)
    and their subject form (收入准则); an application guide gets the same forms followed by
    应用指南. Laws get their title without 中华人民共和国; court interpretations their subject
    (建设工程施工合同司法解释).
    """
    aliases = {
        normalize_question(title),
        normalize_question(normalize_title(title)),
        normalize_question(doc_id),
    }
    soft = unicodedata.normalize("NFKC", title)
    cas = _CAS_TITLE.search(soft.replace(" ", ""))
    if cas:
        number, subject = cas.group(1), (cas.group(2) or "").strip()
        suffix = "应用指南" if "应用指南" in soft else ("解释" if "解释" in soft[cas.end() :] else "")
        bases = {f"企业会计准则第{number}号", f"第{number}号准则", f"{number}号准则", f"cas{number}"}
        if subject:
            bases |= {f"{subject}准则", f"企业会计准则{subject}", f"企业会计准则第{number}号{subject}"}
        aliases |= {normalize_question(b + suffix) for b in bases}
    court = _COURT.match(normalize_question(title))
    if court:
        subject, tail = court.group(1), court.group(2)
        for base in (f"{subject}司法解释", f"{subject}纠纷司法解释", f"{subject}解释"):
            aliases |= {base, base + tail}
    norm = normalize_question(title)
    if norm.endswith("暂行条例"):  # 增值税暂行条例 is commonly called 增值税条例
        aliases.add(norm.removesuffix("暂行条例") + "条例")
    return {a for a in aliases if len(a) >= 3}


def _whole_number(text: str, start: int, end: int) -> bool:
    """False when the match cuts a number (``cas1`` inside ``cas14``, ``4号准则`` in ``14号准则``)."""
    if start > 0 and text[start].isdigit() and text[start - 1].isdigit():
        return False
    return not (end < len(text) and text[end - 1].isdigit() and text[end].isdigit())


class AliasTable:
    """Normalized names -> document ids, matched longest first inside a question.

    Args:
        documents: ``(doc_id, title)`` of every document in the graph.
    """

    def __init__(self, documents: Iterable[tuple[str, str]]) -> None:
        table: dict[str, set[str]] = {}
        for doc_id, title in documents:
            for alias in title_aliases(title or doc_id, doc_id):
                table.setdefault(alias, set()).add(doc_id)
        self._table = table
        self._by_length = sorted(table, key=lambda a: (-len(a), a))

    def __len__(self) -> int:
        return len(self._table)

    def aliases(self) -> dict[str, list[str]]:
        return {a: sorted(d) for a, d in self._table.items()}

    def find(self, normalized: str) -> list[tuple[int, int, list[str]]]:
        """Non-overlapping ``(start, end, doc_ids)`` mentions in a normalized question, by position."""
        taken: list[tuple[int, int]] = []
        found: list[tuple[int, int, list[str]]] = []
        for alias in self._by_length:
            start = normalized.find(alias)
            while start >= 0:
                end = start + len(alias)
                if _whole_number(normalized, start, end) and not any(start < e and s < end for s, e in taken):
                    taken.append((start, end))
                    found.append((start, end, sorted(self._table[alias])))
                start = normalized.find(alias, start + 1)
        return sorted(found)


def standard_parts(title: str) -> tuple[int, str, str] | None:
    """``(number, subject, suffix)`` of an accounting-standard title, None for other documents.

    ``企业会计准则第14号——收入（2017年修订）`` -> ``(14, "收入", "")``; the application guide
    ``《企业会计准则第1号——存货》应用指南`` -> ``(1, "存货", "应用指南")``.
    """
    soft = unicodedata.normalize("NFKC", title).replace(" ", "")
    cas = _CAS_TITLE.search(soft)
    if not cas:
        return None
    subject = normalize_question(cas.group(2) or "")
    suffix = "应用指南" if "应用指南" in soft else ("解释" if "解释" in soft[cas.end() :] else "")
    return int(cas.group(1)), subject, suffix


# "企业会计准则第22号" / "第22号准则" / "22号准则" in a normalized question (第N号 already Arabic).
# "企业会计准则解释第8号" is another series and must not read as standard 8: 解释 breaks the match.
_CAS_NUMBER = re.compile(r"(?:企业会计准则第|cas)(\d{1,2})号?|第?(?<!\d)(\d{1,2})号准则")
# A bare "第19号" names a standard only when a standard's subject follows it (第19号外币折算);
# "令2010年第3号" or "财会〔2017〕22号" do not.
_BARE_NUMBER = re.compile(r"(?<![\d解释年〕\]])第(\d{1,2})号(?!准则)")
# "收入准则", "新金融工具准则", "金融工具确认计量准则": a subject named by its words.
_SUBJECT_NAME = re.compile(r"([\u4e00-\u9fff]{2,14}?)(?:相关)?(?:会计)?准则")
_SUBJECT_NOISE = re.compile(
    r"^(?:根据|按照|依照|参照|对照|适用|执行|关于|以及|还是|符合|新|旧|最新|现行|原|修订后的?|企业会计)+"
)
# How sure a mention makes us that the question is about a document (a feature of the reranker).
CONFIDENT, MISNUMBERED, BY_SUBJECT, LOOSE = 1.0, 0.6, 0.8, 0.5


@dataclass(frozen=True)
class _Standard:
    doc_id: str
    number: int
    subject: str
    suffix: str


class StandardNames:
    """Accounting standards by number and by subject, tolerant of the ways letters misname them.

    Letters write ``《企业会计准则第15号——收入》`` (收入 is 第14号), ``第１９号—外币折算``,
    ``企业会计准则第25号-原担保合同`` (原保险合同), ``新金融工具准则``: a number and a subject that
    may disagree, in any dash and digit width. A mention resolves to the documents whose number
    *and* subject agree; when they disagree the subject wins (numbers are mistyped more often than
    subjects are invented), and the number's documents follow with a lower confidence.
    """

    def __init__(self, documents: Iterable[tuple[str, str]]) -> None:
        self._standards: list[_Standard] = []
        for doc_id, title in documents:
            parts = standard_parts(title or "")
            if parts and not parts[2]:  # guides and interpretations are named by their own titles
                self._standards.append(_Standard(doc_id, parts[0], parts[1], parts[2]))

    def __bool__(self) -> bool:
        return bool(self._standards)

    def by_subject(self, words: str) -> list[_Standard]:
        """Standards a subject phrase names: exactly, as the beginning of their subject
        (金融工具 -> 金融工具确认和计量 and 金融工具列报), or nearly (one character off in five)."""
        words = _SUBJECT_NOISE.sub("", words)
        if len(words) < 2:
            return []
        exact = [s for s in self._standards if s.subject == words]
        if exact:
            return exact
        prefix = [s for s in self._standards if s.subject.startswith(words)]
        if prefix:
            return prefix
        return [s for s in self._standards if len(words) >= 4 and fuzz.ratio(s.subject, words) >= 85]

    def mentions(self, normalized: str) -> list[tuple[int, int, dict[str, float]]]:
        """``(start, end, {doc_id: confidence})`` for each standard the normalized question names."""
        found: list[tuple[int, int, dict[str, float]]] = []
        numbered = [(m, int(m.group(1) or m.group(2)), False) for m in _CAS_NUMBER.finditer(normalized)]
        numbered += [(m, int(m.group(1)), True) for m in _BARE_NUMBER.finditer(normalized)]
        for m, number, bare in sorted(numbered, key=lambda n: n[0].start()):
            if any(m.start() < e and s < m.end() for s, e, _ in found):
                continue
            by_number = [s for s in self._standards if s.number == number]
            by_subject = self._subject_after(normalized[m.end() : m.end() + 16])
            agree = [s for s in by_number if s in by_subject]
            if agree:
                docs = {s.doc_id: CONFIDENT for s in agree}
            elif by_subject:
                docs = {s.doc_id: BY_SUBJECT for s in by_subject}
                docs.update({s.doc_id: MISNUMBERED for s in by_number if s.doc_id not in docs})
            elif bare:
                continue
            else:
                docs = {s.doc_id: (CONFIDENT if len(by_number) == 1 else BY_SUBJECT) for s in by_number}
            end = m.end() + (len(by_subject[0].subject) if by_subject else 0)
            if docs:
                found.append((m.start(), end, docs))
        blanked = normalized.replace("企业会计准则", "\0" * len("企业会计准则"))  # not a subject
        for m in _SUBJECT_NAME.finditer(blanked):
            start, end = m.span()
            if any(start < e and s < end for s, e, _ in found):
                continue
            words = m.group(1)
            # the subject is a tail of the characters before 准则 ("…更适用于金融工具准则")
            for cut in range(0, max(1, len(words) - 1)):
                hits = self.by_subject(words[cut:])
                if hits:
                    conf = BY_SUBJECT if len(hits) == 1 else LOOSE
                    found.append((start + cut, end, {s.doc_id: conf for s in hits}))
                    break
        return sorted(found, key=lambda f: f[0])

    def _subject_after(self, text: str) -> list[_Standard]:
        """The standards whose subject begins ``text`` (the words after 第N号), nearly matched."""
        best: list[_Standard] = []
        best_score = 0.0
        for s in self._standards:
            if not s.subject:
                continue
            for width in {len(s.subject) - 1, len(s.subject), len(s.subject) + 1}:
                if width < 2:
                    continue
                score = fuzz.ratio(s.subject, text[:width])
                if score >= 78 and score > best_score:
                    best, best_score = [s], score
                elif score >= 78 and score == best_score and s not in best:
                    best.append(s)
        return best


@dataclass
class DirectMatch:
    """What a question names: documents (in order of mention) and the clauses it points at.

    Attributes:
        doc_ids: documents named, in order of first mention.
        clause_ids: articles named (第N条 next to a named document).
        confidence: how sure the naming is per document (1.0 = number and subject agree, or an
            exact title; lower for a misnumbered standard or a loose subject such as 金融工具准则).
    """

    doc_ids: list[str] = field(default_factory=list)
    clause_ids: list[str] = field(default_factory=list)
    confidence: dict[str, float] = field(default_factory=dict)


class DirectResolver:
    """Finds named documents and articles in a question.

    Args:
        aliases: the alias table of the graph's documents.
        articles: doc id -> article number (int) -> clause id, from the active clauses.
    """

    def __init__(
        self,
        aliases: AliasTable,
        articles: Mapping[str, Mapping[int, str]],
        standards: StandardNames | None = None,
    ) -> None:
        self._aliases = aliases
        self._articles = articles
        self._standards = standards

    @staticmethod
    def article_map(clauses: Iterable[tuple[str, str, str]]) -> dict[str, dict[int, str]]:
        """``{doc_id: {5: "CAS-14-收入/第五条"}}`` from ``(clause_id, doc_id, number)`` triples."""
        out: dict[str, dict[int, str]] = {}
        for clause_id, doc_id, number in clauses:
            parsed = article_number(number or "")
            if parsed and parsed[1] == "条":
                out.setdefault(doc_id, {}).setdefault(parsed[0], clause_id)
        return out

    def resolve(self, question: str) -> DirectMatch:
        norm = normalize_question(question)
        # standards first: they weigh number against subject; exact aliases fill in the rest
        weighted = self._standards.mentions(norm) if self._standards else []
        for s, e, docs in self._aliases.find(norm):
            if not any(s < e2 and s2 < e for s2, e2, _ in weighted):
                weighted.append((s, e, dict.fromkeys(docs, CONFIDENT)))
        weighted.sort(key=lambda m: m[0])
        match = DirectMatch()
        for _, _, docs in weighted:
            for d, conf in docs.items():
                if d not in match.doc_ids:
                    match.doc_ids.append(d)
                match.confidence[d] = max(conf, match.confidence.get(d, 0.0))
        mentions = [(s, e, sorted(d, key=lambda x: -d[x])) for s, e, d in weighted]
        if not mentions:
            return match
        for m in _ARTICLE.finditer(norm):
            try:
                number = to_int(m.group(1))
            except ValueError:
                continue
            docs = self._docs_for(m.start(), mentions)
            for doc in docs:
                cid = self._articles.get(doc, {}).get(number)
                if cid and cid not in match.clause_ids:
                    match.clause_ids.append(cid)
        return match

    @staticmethod
    def _docs_for(position: int, mentions: Sequence[tuple[int, int, list[str]]]) -> list[str]:
        """The documents an article at ``position`` belongs to: the nearest mention before it,
        else the first one after it (收入准则里第五条 / 第五条在收入准则中)."""
        before = [m for m in mentions if m[1] <= position]
        if before:
            return before[-1][2]
        after = [m for m in mentions if m[0] >= position]
        return after[0][2] if after else []
