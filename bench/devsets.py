"""Question sets for the retrieval and answer benchmarks, in one shape.

- ``letters``: the real consultation letters of ../shared/eval/dev/citation_dev.jsonl, plus the
  questions of the two 实施问答 pages (145.md 收入, 151.md 金融工具), whose gold standards and
  articles are read from the official answers (the standards and articles each answer cites);
- ``unanswerable``: eval/unanswerable_letters.jsonl, letters in the same style about what the
  accounting standards do not regulate (tax rates, labour law, registrations, social insurance);
- ``heldout``: eval/heldout_letters.jsonl, answerable and unanswerable letters written after the
  packaged model was frozen; never used to train or calibrate;
- ``tidy``: eval/questions.jsonl, the 76 short questions written here (clause-level gold over the
  laws and standards of ../shared/corpus).

Scores are by standard number and article, as the real check scores them: a citation's document
counts through its title's 第N号 (application guides never count), an article through
(standard number, 第X条).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.metrics.bootstrap import bootstrap_interval, paired_interval
from training.run_artifacts import iter_jsonl

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("KGQA_SHARED_DIR", REPO.parent / "shared"))


@dataclass
class Item:
    """One question with its gold: standards (numbers), articles ((number, 第X条)) or clause ids."""

    id: str
    question: str
    answerable: bool
    standards: list[int] = field(default_factory=list)
    articles: list[tuple[int, str]] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)
    source: str = ""


def standard_number(title: str) -> int | None:
    """第N号 of an accounting standard's title; None for guides, interpretations and other texts."""
    if "应用指南" in title or "解释" in title:
        return None
    m = re.search(r"企业会计准则第\s*(\d+)\s*号", title)
    return int(m.group(1)) if m else None


def load_letters(documents: Sequence[tuple[str, str]]) -> list[Item]:
    """The dev letters and the 实施问答 questions (gold read from the official answers)."""
    dev = shared_dir() / "eval" / "dev"
    items = [_letter(row, "letters") for row in _rows(dev / "citation_dev.jsonl")]
    for page in ("145", "151"):
        items.extend(_qa_page(dev / f"{page}.md", page, documents))
    return items


_QA = re.compile(r"^问[：:](?P<q>.+?)\n+答[：:](?P<a>.+?)(?=\n+问[：:]|\n+\* \* \*|\Z)", re.S | re.M)
_ARTICLES = re.compile(r"第?([零一二三四五六七八九十百]+)条")


def _qa_page(path: Path, page: str, documents: Sequence[tuple[str, str]]) -> list[Item]:
    """问/答 pairs whose answer cites at least one accounting standard."""
    from serving.retrieval.direct import StandardNames, normalize_question

    names = StandardNames(documents)
    number_of = {doc_id: standard_number(title) for doc_id, title in documents}
    text = path.read_text(encoding="utf-8")
    items = []
    for i, m in enumerate(_QA.finditer(text)):
        answer = normalize_question(m.group("a"))
        standards: list[int] = []
        articles: list[tuple[int, str]] = []
        for _start, end, docs in names.mentions(answer):
            confident = [d for d, conf in docs.items() if conf >= 0.8]
            numbers = [n for d in confident if (n := number_of.get(d)) is not None]
            standards.extend(n for n in numbers if n not in standards)
            tail = re.split(r"[，。；]", answer[end:], maxsplit=1)[0]
            for a in _ARTICLES.finditer(tail):
                for n in numbers:
                    articles.append((n, f"第{a.group(1)}条"))
        if standards:
            items.append(
                Item(f"{page}-{i}", m.group("q").strip(), True, standards, articles, source=f"qa{page}")
            )
    return items


def _rows(path: Path) -> list[dict]:
    """A question set's rows; a missing set is an error naming it (``iter_jsonl``), not no rows."""
    return [row for _, row in iter_jsonl(path)]


def load_unanswerable(path: Path = REPO / "eval" / "unanswerable_letters.jsonl") -> list[Item]:
    return [_unanswerable(r, "unanswerable") for r in _rows(path)]


def load_heldout(path: Path = REPO / "eval" / "heldout_letters.jsonl") -> list[Item]:
    """Letters written after the packaged model was frozen, to check it on what it never saw.

    Answerable ones carry ``gold_standards`` (and ``gold_articles``); unanswerable ones do not.
    Nothing learns or calibrates on them: a figure on this set is the one the dev set cannot give,
    how the method does on letters that did not shape it.
    """
    return [_letter(r, "heldout") for r in _rows(path)]


def _letter(row: dict, source: str) -> Item:
    """A letter's row (``id``, ``question``, ``gold_standards``, ``gold_articles``; ``answerable``
    defaults to true, as in citation_dev.jsonl) as an Item."""
    return Item(
        row["id"],
        row["question"],
        bool(row.get("answerable", True)),
        list(row.get("gold_standards") or []),
        [(int(n), a) for n, a in row.get("gold_articles") or []],
        source=source,
    )


def load_any(path: Path) -> list[Item]:
    """Any of the sets above by its rows' shape, as ``bench/score_answers.py`` reads them: a row
    with ``gold`` is a short question (clause ids), one with ``gold_standards`` a letter, one with
    neither (unanswerable_letters.jsonl) a letter the standards do not answer."""
    items = []
    for r in _rows(path):
        if "gold" in r:
            items.append(_tidy(r, path.stem))
        elif "gold_standards" in r or "answerable" in r:
            items.append(_letter(r, path.stem))
        else:
            items.append(_unanswerable(r, path.stem))
    return items


def load_tidy(path: Path = REPO / "eval" / "questions.jsonl") -> list[Item]:
    return [_tidy(r, "tidy") for r in _rows(path)]


def _tidy(row: dict, source: str) -> Item:
    """A short question's row (``gold``: clause ids; empty for unanswerable ones) as an Item."""
    return Item(row["id"], row["question"], bool(row["gold"]), clauses=list(row["gold"]), source=source)


def _unanswerable(row: dict, source: str) -> Item:
    return Item(row["id"], row["question"], False, source=source)


@dataclass
class Cited:
    """A ranked list of citations: (clause id, document title, clause number), best first."""

    clause_id: str
    title: str
    number: str


def hits(item: Item, cited: Sequence[Cited], k: int) -> dict[str, float | None]:
    """Document- and article-level hit@k (None where the item has no gold of that level)."""
    top = cited[:k]
    if item.clauses:
        gold = set(item.clauses)
        docs = {c.split("/", 1)[0] for c in gold}
        return {
            "doc": float(any(c.clause_id.split("/", 1)[0] in docs for c in top)),
            "article": float(any(c.clause_id in gold for c in top)),
        }
    numbers = [standard_number(c.title) for c in top]
    doc = float(any(n in item.standards for n in numbers if n is not None)) if item.standards else None
    article = None
    if item.articles:
        gold_articles = {(n, _canonical_article(a)) for n, a in item.articles}
        article = float(
            any(
                (n, _canonical_article(c.number)) in gold_articles
                for n, c in zip(numbers, top, strict=True)
                if n is not None
            )
        )
    return {"doc": doc, "article": article}


def score_rows(
    items: Sequence[Item],
    ranked: Mapping[str, Sequence[Cited]],
    refused: Mapping[str, bool] | None,
) -> dict:
    """Document and article hit@1/@5 of ``ranked`` (item id -> citations, best first) over the
    answerable ``items``, and the shares of answerable and unanswerable ones ``refused`` (None for
    a stage that decides no refusal): one row of ``bench_retrieval.py``'s tables, and what
    ``score_answers.py`` prints for a batch.

    With them, under ``"n"`` and ``"ci95"``, how many items each figure is a mean of and its 95%
    bootstrap interval (training/metrics/bootstrap.py): article hit@5 on the dozen dev letters
    whose replies name articles moves by 8 points per letter, and a target inside the interval
    is neither met nor missed by the figure alone."""
    per_item = item_values(items, ranked, refused)
    row: dict = {metric: mean(per_item[metric].values()) if metric in per_item else None for metric in SCORES}
    row["n"] = {metric: len(values) for metric, values in per_item.items() if values}
    row["ci95"] = {}
    for metric, values in per_item.items():
        found = bootstrap_interval(list(values.values()))
        if found is not None:
            row["ci95"][metric] = [round(found[0], 3), round(found[1], 3)]
    return row


HITS = ("doc@1", "art@1", "doc@5", "art@5")
SCORES = (*HITS, "refused(ans)", "refused(unans)")
"""The figures of a row, in the order ``score_rows`` gives them."""


def item_values(
    items: Sequence[Item], ranked: Mapping[str, Sequence[Cited]], refused: Mapping[str, bool] | None
) -> dict[str, dict[str, float]]:
    """Each figure of ``SCORES`` as item id -> 0/1, over the items it counts (an item without
    gold articles counts in no article figure; refusals split by answerability, and are left out
    when ``refused`` is None)."""
    out: dict[str, dict[str, float]] = {metric: {} for metric in HITS}
    for k in (1, 5):
        for item in items:
            if not item.answerable:
                continue
            found = hits(item, ranked[item.id], k)
            if found["doc"] is not None:
                out[f"doc@{k}"][item.id] = found["doc"]
            if found["article"] is not None:
                out[f"art@{k}"][item.id] = found["article"]
    if refused is not None:
        out["refused(ans)"], out["refused(unans)"] = {}, {}
        for item in items:
            key = "refused(ans)" if item.answerable else "refused(unans)"
            out[key][item.id] = float(refused.get(item.id, False))
    return out


def paired_gain(
    items: Sequence[Item],
    before: Mapping[str, Sequence[Cited]],
    after: Mapping[str, Sequence[Cited]],
    metric: str,
) -> dict | None:
    """``after - before`` on ``metric`` (a hit figure: ``HITS``) over the same items, paired by
    id, with the 95% bootstrap interval of the per-item differences
    (``training.metrics.bootstrap.paired_interval``): whether a stage beats another on these
    letters, or only seems to. None when no item counts in ``metric``."""
    if metric not in HITS:
        raise ValueError(f"paired_gain compares hit figures {HITS}, not {metric!r}")
    a = item_values(items, before, None)[metric]
    b = item_values(items, after, None)[metric]
    found = paired_interval(a, b)
    if found is None:
        return None
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in found.items()}


def answer_sets(item: Item, clauses: dict) -> list[frozenset[str]]:
    """The clause sets an answer to ``item`` should find first, scored as ``hits`` scores them:
    its gold articles (or clauses), and every clause of its gold standards (the ones the index
    holds; an empty set is left out).

    ``clauses`` is the index's clause id -> record (``doc_title``, ``number``)."""
    gold = gold_sets(item, clauses)
    return [s for s in (gold["article"], gold["document"]) if s]


def gold_sets(item: Item, clauses: dict) -> dict[str, frozenset[str]]:
    """``item``'s gold in the index, by level: ``article`` (its gold articles or clauses; empty
    when it names none, or none the index holds) and ``document`` (every clause of its gold
    standards)."""
    if item.clauses:
        from serving.retrieval.calibration import gold_answer_sets

        articles, documents = gold_answer_sets(item.clauses, clauses)
        return {"article": articles, "document": documents}
    numbers = {cid: standard_number(rec.doc_title) for cid, rec in clauses.items()}
    wanted = {(n, _canonical_article(a)) for n, a in item.articles}
    articles = frozenset(
        cid for cid, rec in clauses.items() if (numbers[cid], _canonical_article(rec.number)) in wanted
    )
    documents = frozenset(cid for cid, n in numbers.items() if n is not None and n in item.standards)
    return {"article": articles, "document": documents}


def _canonical_article(number: str) -> str:
    from kg.normalize import article_number

    parsed = article_number(number or "")
    return f"{parsed[0]}{parsed[1]}" if parsed else number


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 3) if vals else None


__all__ = [
    "Cited",
    "answer_sets",
    "gold_sets",
    "Item",
    "hits",
    "load_heldout",
    "load_letters",
    "load_tidy",
    "load_unanswerable",
    "item_values",
    "mean",
    "paired_gain",
    "score_rows",
    "standard_number",
]
