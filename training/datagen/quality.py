"""Quality scores and bands: which pairs teach (SFT), which only prompt (GRPO), which are dropped.

A pair is worth training on only if its answer is what the clauses say. The ``kg`` verifier is the
gate (every citation resolves to a shown clause, every amount, rate, duration and obligation is in
the cited clause); the answer-clause similarity, length sanity, near-duplicates and an optional
LLM judge grade what passed. Verified pairs whose similarity or length is weak are still correct,
so they become GRPO prompts (the model is rewarded for a verified answer, not for copying this
reference); everything else is dropped with the reason counted in the report.

Augmented variants share their parent's answer, so they inherit its verdict (verification,
similarity, judge) and are only checked for their own question length and duplicates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rapidfuzz import fuzz

from kg.citations import parse_citations, strip_markers
from kg.prompting import REFUSAL_ANSWER
from kg.verification.support import bigrams, content, sentence_bigrams
from kg.verifier import Verifier, is_refusal
from training.datagen.augment import normalize_question
from training.datagen.context import build_evidence
from training.datagen.types import GraphSnapshot, QAPair
from zhtext import default_tokenizer, split_sentences

log = structlog.get_logger(__name__)

#: An optional judge: ``(pair, snapshot) -> score in 0..1``, or None when it has no verdict (an LLM
#: reply without a usable score): the pair is then scored without it.
Judge = Callable[[QAPair, GraphSnapshot], "float | None"]

# Weights of the total before the judge: verification is worth half, similarity and length the rest.
_W_VERIFIED, _W_SIMILARITY, _W_LENGTH = 0.5, 0.3, 0.2


class QualityConfig(BaseModel):
    """Thresholds of the quality split.

    Attributes:
        similarity_threshold: answer-clause similarity (bigram recall, 0..1) an SFT pair needs.
        sft_min: total score (0..1) an SFT pair needs (besides passing every check).
        grpo_min: total score (0..1) a verified pair needs to become a GRPO prompt.
        min_question_chars, max_question_chars: sane question lengths (characters).
        min_answer_chars, max_answer_chars: sane answer lengths (characters, markers removed).
        near_dup_threshold: rapidfuzz ratio (0..100) at which two questions with the same gold
            clauses are near-duplicates (compared without punctuation); the later one is dropped.
        ambiguity_max: how many active clauses a question may fit (all its content words occur in
            them) and still go to SFT; a vaguer question (企业在计量这块有哪些义务?) is a GRPO prompt,
            where the graph judges whichever clause the answer cites, not an SFT target.
        judge_weight: share (0..1) of the judge's score in the total when a judge is set.
        judge_min: judge score (0..1) under which a pair is dropped as ``judge_low``.
    """

    model_config = ConfigDict(extra="forbid")

    similarity_threshold: float = Field(0.5, ge=0.0, le=1.0, description="answer-clause similarity for SFT")
    sft_min: float = Field(0.8, ge=0.0, le=1.0, description="total score for SFT")
    grpo_min: float = Field(0.5, ge=0.0, le=1.0, description="total score for the GRPO prompt set")
    min_question_chars: int = Field(4, ge=1, description="shortest sane question")
    max_question_chars: int = Field(200, ge=1, description="longest sane question")
    min_answer_chars: int = Field(4, ge=1, description="shortest sane answer (markers removed)")
    max_answer_chars: int = Field(1500, ge=1, description="longest sane answer (markers removed)")
    near_dup_threshold: float = Field(92.0, ge=0.0, le=100.0, description="rapidfuzz ratio of near-duplicates")
    ambiguity_max: int = Field(
        4, ge=1, description="active clauses a question may fit and still be an SFT pair (else GRPO)"
    )
    judge_weight: float = Field(0.3, ge=0.0, le=1.0, description="weight of the LLM judge in the total")
    judge_min: float = Field(0.5, ge=0.0, le=1.0, description="judge score under which a pair is dropped")

    @model_validator(mode="after")
    def _ordered(self) -> QualityConfig:
        if self.grpo_min > self.sft_min:
            raise ValueError(f"grpo_min ({self.grpo_min}) must not exceed sft_min ({self.sft_min})")
        if self.min_question_chars > self.max_question_chars or self.min_answer_chars > self.max_answer_chars:
            raise ValueError("min_*_chars must not exceed max_*_chars")
        return self


def answer_similarity(answer: str, gold_texts: Sequence[str]) -> float:
    """Share of the answer's character bigrams found in the gold clauses (0..1).

    The verifier's own measure (numbers normalized, punctuation and framing such as 根据……规定，
    removed), over the whole answer with markers stripped: 1.0 for an answer copied from the
    clause, low for one that says things the clause does not.
    """
    text = strip_markers(answer)
    answer_bigrams: set[str] = set()
    for sentence in split_sentences(text):
        answer_bigrams |= sentence_bigrams(sentence)
    if not answer_bigrams:
        return 0.0
    clause_bigrams: set[str] = set()
    for t in gold_texts:
        clause_bigrams |= bigrams(content(t))
    return len(answer_bigrams & clause_bigrams) / len(answer_bigrams)


#: Words that ask rather than name: interrogatives, modal and filler words of questions.
_ASKING = frozenset(
    ["什么", "哪些", "哪个", "哪里", "多少", "多久", "几", "是否", "能否", "可否", "如何", "怎么", "怎样", "怎么样", "为什么", "吗", "呢", "啊", "呀", "吧", "啥", "谁", "请问", "需要", "要", "应该", "应当", "可以", "能", "会", "是", "有", "的", "了", "在", "和", "与", "及", "或", "对", "把", "被", "由", "这", "那", "这个", "那个", "我", "我们", "你", "规定", "制度", "手册", "要求", "具体", "内容", "一下", "怎么办", "说", "讲", "问"]
)


def content_words(text: str, ignore: frozenset[str] = frozenset()) -> set[str]:
    """The question's naming words (jieba): no interrogatives, framing words or punctuation."""
    words = {w for w in default_tokenizer().words(strip_markers(text)) if w.strip()}
    return {w for w in words if any(ch.isalnum() for ch in w) and w not in ignore and w not in _ASKING}


class ClauseIndex:
    """Which active clauses contain a word (text, document title, number, section path, tables).

    A question fits the clauses that contain all its content words; how many it fits measures how
    ambiguous it is. Words found in no clause (a paraphrase's synonym) do not narrow the search.
    """

    def __init__(self, snapshot: GraphSnapshot) -> None:
        self._texts = {
            cid: "\n".join([c.text, c.doc_title, c.number, *c.section_path]) for cid, c in snapshot.clauses.items()
        }
        self._cache: dict[str, frozenset[str]] = {}

    def clauses_with(self, word: str) -> frozenset[str]:
        if word not in self._cache:
            self._cache[word] = frozenset(cid for cid, text in self._texts.items() if word in text)
        return self._cache[word]

    def fits(self, words: set[str]) -> int:
        """The number of clauses containing every (known) word; all clauses when none is known."""
        sets = [found for w in sorted(words) if (found := self.clauses_with(w))]
        if not sets:
            return len(self._texts)
        return len(frozenset.intersection(*sets))


class QualityScorer:
    """Scores pairs in place and assigns their band.

    Args:
        verifier: the ``kg`` verifier (``Verifier()``: only ``verify_against`` is used).
        config: thresholds (defaults when ``None``).
        judge: optional judge ``(pair, snapshot) -> 0..1 | None`` (the LLM judge, rescaled).
        framing: question framing texts (template words, paraphrase prefixes) that name no clause.
    """

    def __init__(
        self,
        verifier: Verifier,
        config: QualityConfig | None = None,
        judge: Judge | None = None,
        framing: Sequence[str] = (),
    ) -> None:
        self._verifier = verifier
        self._config = config or QualityConfig()
        self._judge = judge
        self._framing = frozenset(w for text in framing for w in default_tokenizer().words(text) if w.strip())

    @property
    def config(self) -> QualityConfig:
        return self._config

    # -- answer verdict (shared by a pair and its variants) -------------------------------------
    def _answer_verdict(self, pair: QAPair, snapshot: GraphSnapshot) -> dict:
        refusal_answer = pair.answer.strip() == REFUSAL_ANSWER
        if not pair.answerable:
            ok = refusal_answer and not pair.gold
            verdict = {"verified": ok, "unsupported": [], "similarity": 1.0 if ok else 0.0, "answerable_ok": ok}
            verdict["reason"] = None if ok else "refusal_mismatch"
        else:
            evidence = build_evidence(pair, snapshot)
            result = self._verifier.verify_against(pair.answer, evidence, allowed_ids=pair.context_ids)
            kinds = sorted({a.kind for a in result.unsupported})
            gold_texts = [
                t
                for cid in pair.gold
                if (c := evidence.get(cid)) is not None
                for t in (c.text, c.doc_title, c.number, *c.section_path, *c.tables)
            ]
            ok = bool(pair.gold) and not is_refusal(pair.answer) and result.verified
            verdict = {
                "verified": result.verified,
                "unsupported": kinds,
                "similarity": round(answer_similarity(pair.answer, gold_texts), 4),
                "answerable_ok": ok,
            }
            if not pair.gold or result.refusal:
                verdict["reason"] = "refusal_mismatch"
            elif not result.verified:
                missing = "no_citation" if not parse_citations(pair.answer).markers else "sentence"
                verdict["reason"] = "not_verified:" + (",".join(kinds) if kinds else missing)
            else:
                verdict["reason"] = None
        if self._judge is not None and verdict["reason"] is None:
            score = self._judge(pair, snapshot)
            if score is not None:
                verdict["judge"] = max(0.0, min(1.0, float(score)))
        return verdict

    def _length_ok(self, pair: QAPair) -> bool:
        cfg = self._config
        q = len(pair.question.strip())
        if not cfg.min_question_chars <= q <= cfg.max_question_chars:
            return False
        if not pair.answerable:
            return True
        a = len(strip_markers(pair.answer).strip())
        return cfg.min_answer_chars <= a <= cfg.max_answer_chars

    def _total(self, scores: dict) -> float:
        cfg = self._config
        sim_part = min(1.0, scores["similarity"] / cfg.similarity_threshold) if cfg.similarity_threshold else 1.0
        total = (
            _W_VERIFIED * bool(scores["verified"] and scores["answerable_ok"])
            + _W_SIMILARITY * sim_part
            + _W_LENGTH * bool(scores["length_ok"])
        )
        if "judge" in scores:
            total = (1 - cfg.judge_weight) * total + cfg.judge_weight * scores["judge"]
        return round(total, 4)

    def _band(self, scores: dict, reason: str | None) -> tuple[str, str | None]:
        cfg = self._config
        if reason is not None:
            return "drop", reason
        if "judge" in scores and scores["judge"] < cfg.judge_min:
            return "drop", "judge_low"
        strong = (
            scores["similarity"] >= cfg.similarity_threshold
            and scores["length_ok"]
            and scores.get("ambiguity", 1) <= cfg.ambiguity_max
        )
        if strong and scores["total"] >= cfg.sft_min:
            return "sft", None
        if scores["total"] >= cfg.grpo_min:
            return "grpo", None
        return "drop", ("low_similarity" if scores["similarity"] < cfg.similarity_threshold else "length")

    # -- public API -----------------------------------------------------------------------------
    def score(self, pairs: Sequence[QAPair], snapshot: GraphSnapshot) -> None:
        """Set ``scores``, ``band`` and ``reject_reason`` of every pair (in place).

        ``scores`` holds ``verified``, ``unsupported`` (atom kinds), ``similarity``, ``length_ok``,
        ``duplicate_of``, ``answerable_ok``, ``ambiguity`` (active clauses the question fits),
        ``judge`` (with a judge) and ``total``. Near-duplicates
        are looked for among the kept pairs with the same gold clauses, in input order (the first
        is kept); a variant is not a duplicate of its own parent or siblings.
        """
        by_id = {p.pair_id: p for p in pairs}
        verdicts: dict[str, dict] = {}
        index = ClauseIndex(snapshot)
        for pair in pairs:
            parent = by_id.get(pair.parent_id) if pair.parent_id else None
            source = parent if parent is not None and parent.answer == pair.answer else pair
            if source.pair_id not in verdicts:
                verdicts[source.pair_id] = self._answer_verdict(source, snapshot)
            verdict = verdicts[source.pair_id]
            scores = {k: v for k, v in verdict.items() if k != "reason"}
            scores["ambiguity"] = (
                index.fits(content_words(pair.question, self._framing)) if pair.answerable else 1
            )
            scores["unsupported"] = list(verdict["unsupported"])
            scores["length_ok"] = self._length_ok(pair)
            scores["duplicate_of"] = None
            scores["total"] = self._total(scores)
            pair.scores = scores
            pair.band, pair.reject_reason = self._band(scores, verdict["reason"])

        self._mark_duplicates(pairs)
        counts = Counter(p.band for p in pairs)
        reasons = Counter(p.reject_reason for p in pairs if p.reject_reason)
        log.info("quality.scored", pairs=len(pairs), **{f"band_{k}": v for k, v in counts.items()}, reasons=dict(reasons))

    def _mark_duplicates(self, pairs: Sequence[QAPair]) -> None:
        threshold = self._config.near_dup_threshold
        kept: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}
        for pair in pairs:
            if pair.band == "drop":
                continue
            key = tuple(sorted(pair.gold))
            family = pair.parent_id or pair.pair_id
            text = normalize_question(pair.question)
            group = kept.setdefault(key, [])
            dup = next(
                (
                    pid
                    for pid, fam, other in group
                    if fam != family and fuzz.ratio(text, other, score_cutoff=threshold) >= threshold
                ),
                None,
            )
            if dup is not None:
                pair.scores["duplicate_of"] = dup
                pair.band, pair.reject_reason = "drop", "near_duplicate"
            else:
                group.append((pair.pair_id, family, text))


__all__ = ["Judge", "QualityConfig", "QualityScorer", "answer_similarity"]
