"""Learning the second stage from questions the graph itself generates.

The dataset builder (``kgqa dataset build``) turns every clause into template questions with the
clause as their answer. Those questions are short and tidy; the people who ask are not. So each
question also goes out dressed as a letter (a greeting, some background from its document, now
and then a quoted sentence or a named — sometimes misnumbered — standard, then the ask, then
thanks), and the reranker learns from both kinds which features pick the right clause.

Silence is learned from the graph too: a question asked as if its document were missing (every
candidate of that document hidden) is a question the remaining manuals do not answer — close to
them in vocabulary, like the real unanswerable questions staff send (a tax rate, a labour-law
period). The answerability model learns to tell the two apart; its threshold is chosen later,
on real letters (``bench/bench_retrieval.py --calibrate``).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog

from kgqa.errors import ConfigError
from serving.retrieval.features import (
    ANSWERABILITY_FEATURES,
    ANSWERABILITY_SIGNS,
    CANDIDATE_FEATURES,
    CANDIDATE_SIGNS,
    CandidateScorer,
)
from serving.retrieval.hybrid import HybridRetriever
from serving.retrieval.rerank import LinearModel, RetrievalModel

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TrainingQuestion:
    """A question with the clauses that answer it (all from ``doc_id``)."""

    question: str
    gold: tuple[str, ...]
    doc_id: str
    group: str
    """Questions of one clause share a group: held-out scoring never sees a trained clause."""


@dataclass
class TrainConfig:
    """How the second stage is learned.

    Attributes:
        max_questions: questions sampled from the dataset (the rest add time, not accuracy).
        letter_share: share of questions also asked dressed as a letter.
        mask_share: share of questions whose words shared with the gold clause are partly
            removed (``mask_fraction`` of them). A template question repeats its clause's words;
            staff describe their case in their own (印花税, 交房 for 合同取得成本), and a reranker
            that has only seen the former trusts word overlap too much.
        mask_fraction: the share of shared words a masked question loses.
        pool_priors: the values of ``RetrievalModel.pool_prior`` tried on tuning questions.
        holdout_share: share of clause groups kept out of training to report held-out scores.
        negatives_share: share of questions also asked with their document hidden (silence).
        c: inverse L2 regularization of both logistic regressions.
        seed: sampling and letter dressing are deterministic for a seed.
    """

    max_questions: int = 2500
    letter_share: float = 0.6
    mask_share: float = 0.5
    mask_fraction: float = 0.5
    pool_priors: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
    holdout_share: float = 0.2
    negatives_share: float = 1.0
    c: float = 1.0
    seed: int = 0


@dataclass
class TrainReport:
    """What ``kgqa index train --json`` prints."""

    questions: int
    letters: int
    candidates: int
    gold_in_pool: float
    heldout: dict[str, float] = field(default_factory=dict)
    reranker_weights: dict[str, float] = field(default_factory=dict)
    answerability_weights: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    path: str = ""


_NAMED_ARTICLE = re.compile(r"第[0-9零〇一二两三四五六七八九十百]+条")


def _pair_rows(path: Path) -> list[dict]:
    file = path / "pairs.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"{file} not found; run `kgqa dataset build --out DIR` first or omit --pairs")
    with file.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def unanswerable_from_pairs(path: Path) -> list[str]:
    """The dataset's unanswerable questions: topics none of the graph's clauses mention."""
    return [
        row["question"]
        for row in _pair_rows(path)
        if row.get("qtype") == "unanswerable" and not row.get("reject_reason")
    ]


def questions_from_pairs(path: Path, max_ambiguity: int = 4) -> list[TrainingQuestion]:
    """Answerable, verified pairs of a dataset build (``pairs.jsonl``) as training questions.

    Questions the builder found to fit more than ``max_ambiguity`` active clauses (建设工程施工
    合同应当符合哪些条件？ fits fifty) are left out: they have no single right clause to learn.
    """
    out: list[TrainingQuestion] = []
    for row in _pair_rows(path):
        gold = tuple(row.get("gold") or ())
        if not gold or row.get("reject_reason") or row.get("qtype") == "unanswerable":
            continue
        ambiguity = (row.get("scores") or {}).get("ambiguity")
        if ambiguity is not None and ambiguity > max_ambiguity:
            continue
        if _NAMED_ARTICLE.search(row["question"]):
            continue  # "第十二条和第十三条有何不同": resolved directly, nothing to learn about meaning
        doc = gold[0].split("/", 1)[0]
        if any(g.split("/", 1)[0] != doc for g in gold):
            continue  # cross-document questions have no single document to hide
        out.append(TrainingQuestion(row["question"], gold, doc, row.get("parent_id") or gold[0]))
    return out


# -- dressing a question as a letter -------------------------------------------------------------

_GREETINGS = (
    "尊敬的领导，您好！",
    "您好，",
    "老师您好！",
    "你好，",
    "尊敬的财政部会计司领导：",
    "各位老师好，",
    "",
)
_THANKS = ("谢谢！", "非常感谢！", "诚盼回复。", "麻烦给予解答，谢谢。", "谢谢解答。", "")
_WHO = (
    "我是一家制造业企业的会计人员，",
    "我单位是一家国有控股集团公司，",
    "我公司是一家上市公司，",
    "本人在一家会计师事务所工作，",
    "我们是一家商贸企业，",
    "",
)
_ASK_LEAD = ("请问", "想请教一下，", "烦请领导予以指导：", "我们的问题是：", "")


def dress_as_letter(
    q: TrainingQuestion,
    clause_texts: dict[str, str],
    doc_clauses: Sequence[str],
    title: str,
    rng: random.Random,
) -> TrainingQuestion:
    """The question inside a letter: greeting, background, maybe a quote or a named standard."""
    parts = [rng.choice(_GREETINGS), rng.choice(_WHO)]
    others = [c for c in doc_clauses if c not in q.gold]
    if others and rng.random() < 0.7:  # background in the document's own vocabulary
        other = clause_texts.get(rng.choice(others), "")
        sentence = _a_sentence(other, rng)
        if sentence:
            parts.append(f"在实务中我们遇到这样的情况：{sentence}")
    roll = rng.random()
    if roll < 0.25:
        parts.append(f"我们查阅了{_misnamed(title, rng)}的有关规定，")
    elif roll < 0.45:
        quotable = list(q.gold) if q.gold and (rng.random() < 0.7 or not others) else others
        source = rng.choice(quotable) if quotable else ""
        sentence = _a_sentence(clause_texts.get(source, ""), rng)
        if sentence:
            parts.append(f"准则规定：“{sentence}”")
    parts.append(rng.choice(_ASK_LEAD) + q.question)
    parts.append(rng.choice(_THANKS))
    return TrainingQuestion("".join(parts), q.gold, q.doc_id, q.group)


def mask_shared_words(
    q: TrainingQuestion, gold_text: str, tokenizer, rng: random.Random, fraction: float
) -> TrainingQuestion | None:  # noqa: ANN001 - zhtext.Tokenizer
    """The question without some of the words it shares with its gold clause, or None when it
    shares fewer than two (nothing left to learn from)."""
    words = [w for w in dict.fromkeys(tokenizer.tokens(q.question)) if len(w) >= 2 and w in gold_text]
    if len(words) < 2:
        return None
    dropped = rng.sample(words, max(1, round(len(words) * fraction)))
    text = q.question
    for w in sorted(dropped, key=len, reverse=True):
        text = text.replace(w, "", 1)
    return TrainingQuestion(text, q.gold, q.doc_id, q.group)


def _a_sentence(text: str, rng: random.Random) -> str:
    sentences = [s for s in text.replace("；", "。").split("。") if len(s) >= 12]
    return (rng.choice(sentences)[:80] + "。") if sentences else ""


def _misnamed(title: str, rng: random.Random) -> str:
    """The title as letters write it: with book-title marks, and now and then misnumbered."""
    import re

    m = re.search(r"第(\d+)号", title)
    if m and rng.random() < 0.3:
        wrong = max(1, int(m.group(1)) + rng.choice((-1, 1)))
        title = title[: m.start(1)] + str(wrong) + title[m.end(1) :]
    return f"《{re.sub(r'（[^）]*）$', '', title)}》"


def _dressed(
    questions: Sequence[str],
    texts: dict[str, str],
    by_doc: dict[str, list[str]],
    titles: dict[str, str],
    rng: random.Random,
    share: float,
) -> list[str]:
    """Unanswerable questions as asked, and a share of them dressed as letters (with background
    from a random document: letters about other fields still mention the reader's world)."""
    out = list(questions)
    docs = sorted(by_doc)
    for q in questions:
        if docs and rng.random() < share:
            doc = rng.choice(docs)
            stub = TrainingQuestion(q, (), doc, q)
            out.append(dress_as_letter(stub, texts, by_doc[doc], titles.get(doc, doc), rng).question)
    return out


# -- collecting features -------------------------------------------------------------------------


@dataclass
class _Asked:
    question: TrainingQuestion
    signals: object
    ids: list[str]
    matrix: np.ndarray


def train(
    retriever: HybridRetriever,
    questions: Sequence[TrainingQuestion],
    unanswerable: Sequence[str],
    out: Path,
    config: TrainConfig | None = None,
    *,
    previous: RetrievalModel | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> tuple[RetrievalModel, TrainReport]:
    """Learn the reranker and the answerability model; save them to ``out``.

    Args:
        retriever: a retriever over the graph the questions came from (its model is not used).
        questions: the graph's own questions (``questions_from_pairs``).
        unanswerable: questions about topics the graph never mentions (``unanswerable_from_pairs``);
            with the hidden-document questions they teach the answerability model what silence
            looks like, both near the manuals' subjects and far from them.
        out: the model JSON to write (``$KGQA_HOME/retrieval/model.json``).
        config: sampling and regularization.
        previous: the model served so far: when its answerability was calibrated on real
            questions (``kgqa index calibrate``), that calibration is kept — its features do not
            depend on the reranker's scale — and so is its dense prior; only the reranker is
            replaced.
        progress: wraps iterables to show progress (``tqdm``), or None.
    """
    cfg = config or TrainConfig()
    t0 = time.perf_counter()
    if not questions:
        raise ConfigError("no training questions: the graph produced no answerable pairs")
    rng = random.Random(cfg.seed)
    sample = list(questions)
    rng.shuffle(sample)
    sample = sample[: cfg.max_questions]
    index = retriever.store.current()
    texts = {cid: rec.text for cid, rec in index.clauses.items()}
    by_doc: dict[str, list[str]] = {}
    for cid, doc in index.clause_docs.items():
        by_doc.setdefault(doc, []).append(cid)
    groups = sorted({q.group for q in sample})
    held = set(rng.sample(groups, int(len(groups) * cfg.holdout_share)))
    asked_questions: list[TrainingQuestion] = []
    letters = 0
    for q in sample:
        if q.doc_id not in by_doc:
            continue
        if rng.random() < cfg.mask_share:
            gold_text = "".join(texts.get(g, "") for g in q.gold)
            q = mask_shared_words(q, gold_text, index.tokenizer, rng, cfg.mask_fraction) or q
        asked_questions.append(q)
        if rng.random() < cfg.letter_share:
            asked_questions.append(
                dress_as_letter(q, texts, by_doc[q.doc_id], index.doc_titles.get(q.doc_id, q.doc_id), rng)
            )
            letters += 1
    wrap = progress or (lambda it: it)
    scorer = CandidateScorer(index)
    asked: list[_Asked] = []
    for q in wrap(asked_questions):
        _, signals = retriever.signals(q.question)
        ids, matrix = scorer.features(signals, retriever.pool(signals))
        asked.append(_Asked(q, signals, ids, matrix))
    train_rows = [a for a in asked if a.question.group not in held]
    train_groups = sorted({a.question.group for a in train_rows})
    tuning = set(rng.sample(train_groups, int(len(train_groups) * cfg.holdout_share)))
    ranking_groups = [
        (a.matrix, np.asarray([1.0 if c in a.question.gold else 0.0 for c in a.ids]))
        for a in train_rows
        if len(a.ids) and a.question.group not in tuning
    ]
    reranker = LinearModel.fit_pairwise(CANDIDATE_FEATURES, ranking_groups, c=cfg.c, signs=CANDIDATE_SIGNS)
    prior = _pool_prior(reranker, [a for a in train_rows if a.question.group in tuning], cfg.pool_priors)
    ranking = RetrievalModel(reranker, reranker, pool_prior=prior)  # answerability is fitted below
    scores = ranking.scores_fn()

    ans_x, ans_y = [], []
    for text in wrap(_dressed(unanswerable, texts, by_doc, index.doc_titles, rng, cfg.letter_share)):
        _, signals = retriever.signals(text)
        ids, matrix = scorer.features(signals, retriever.pool(signals))
        ans_x.append(scorer.answerability(signals, ids, matrix, scores(matrix)))
        ans_y.append(0.0)
    for a in train_rows:
        if not len(a.ids):
            continue
        logits = scores(a.matrix)
        ans_x.append(scorer.answerability(a.signals, a.ids, a.matrix, logits))
        ans_y.append(1.0)
        if rng.random() < cfg.negatives_share:
            hidden = {a.question.doc_id}
            ids, matrix = scorer.features(a.signals, retriever.pool(a.signals), hidden)
            ans_x.append(scorer.answerability(a.signals, ids, matrix, scores(matrix), hidden))
            ans_y.append(0.0)
    answerability = LinearModel.fit(
        ANSWERABILITY_FEATURES, np.vstack(ans_x), np.asarray(ans_y), c=cfg.c, signs=ANSWERABILITY_SIGNS
    )
    in_pool = float(np.mean([any(c in a.question.gold for c in a.ids) for a in asked])) if asked else 0.0
    heldout = _heldout_scores([a for a in asked if a.question.group in held], ranking)
    # uncalibrated, refuse where 5% of the graph's own answerable questions would be refused
    positives = np.vstack([x for x, label in zip(ans_x, ans_y, strict=True) if label > 0])
    graph_threshold = float(np.percentile(answerability.probabilities(positives), 5))
    calibrated = previous is not None and "calibration" in previous.meta
    model = RetrievalModel(
        reranker,
        previous.answerability if calibrated else answerability,
        previous.threshold if calibrated else round(graph_threshold, 4),
        {
            "pool_prior_grid": list(cfg.pool_priors),
            "graph_version": index.graph_version,
            "questions": len(asked_questions),
            "letters": letters,
            "config": cfg.__dict__,
            "heldout": heldout,
            **({"calibration": previous.meta["calibration"]} if calibrated else {}),
        },
        pool_prior=prior,
        dense_prior=previous.dense_prior if calibrated else 0.0,
    )
    model.save(out)
    report = TrainReport(
        questions=len(asked_questions),
        letters=letters,
        candidates=int(sum(len(y) for _, y in ranking_groups)),
        gold_in_pool=round(in_pool, 3),
        heldout=heldout,
        reranker_weights=reranker.weights(),
        answerability_weights=answerability.weights(),
        seconds=round(time.perf_counter() - t0, 1),
        path=str(out),
    )
    log.info("retrieval.model_trained", questions=report.questions, heldout=heldout, path=str(out))
    return model, report


def _hits(asked: list[_Asked], score: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
    """Clause hit@1 and hit@5 of ``score``'s order over ``asked``."""
    h1 = h5 = 0
    for a in asked:
        if not len(a.ids):
            continue
        order = [a.ids[i] for i in np.argsort(-score(a.matrix), kind="stable")][:5]
        h1 += order[0] in a.question.gold
        h5 += any(c in a.question.gold for c in order)
    n = max(1, len(asked))
    return h1 / n, h5 / n


def _pool_prior(reranker: LinearModel, tuning: list[_Asked], grid: Sequence[float]) -> float:
    """The share of the first stage's order to keep: the grid value with the best hit@1 (then
    hit@5) on tuning questions the reranker was not fitted on; the smallest among equals."""
    if not tuning:
        return 0.0
    best = max(
        grid,
        key=lambda beta: (
            *_hits(tuning, RetrievalModel(reranker, reranker, pool_prior=beta).scores_fn()),
            -beta,
        ),
    )
    return float(best)


def _heldout_scores(asked: list[_Asked], model: RetrievalModel) -> dict[str, float]:
    """Clause hit@1/@5 of the fused pool order and of the final order on held-out groups."""
    if not asked:
        return {}
    col = CANDIDATE_FEATURES.index("rr_fused")
    fused1, fused5 = _hits(asked, lambda m: m[:, col])
    rr1, rr5 = _hits(asked, model.scores_fn())
    return {
        "questions": len(asked),
        "fused_hit@1": round(fused1, 3),
        "fused_hit@5": round(fused5, 3),
        "reranked_hit@1": round(rr1, 3),
        "reranked_hit@5": round(rr5, 3),
        "pool_prior": model.pool_prior,
    }


__all__ = [
    "TrainConfig",
    "TrainReport",
    "TrainingQuestion",
    "dress_as_letter",
    "questions_from_pairs",
    "train",
]
