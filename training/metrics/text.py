"""Surface-overlap metrics of a generated answer against the reference answer, for Chinese text.

Tokenization (one choice for all three, documented here because scores are only comparable
under the same one):

* **token F1** and **ROUGE-L** use jieba *words*: citation markers (``[[ID]]``) are removed first
  (citations are scored separately, against gold ids), then punctuation and whitespace tokens are
  dropped and ASCII is lower-cased. Words rather than characters, because a character-level F1
  rewards answers that share common characters (的, 应, 当) without sharing any content; words are
  what SQuAD-style F1 counts in English too.
  The words are jieba's accurate cut with HMM, made by jieba-rs since 2026-12-08: an ASCII run
  joined by dots, dashes or underscores (``2023-01-01``, ``www.mof.gov.cn``) is now one word, where
  Python jieba cut it apart, so scores of answers holding such runs differ slightly from earlier
  reports (``zhtext.tokenize``).
* **BLEU** uses sacrebleu's own ``tokenize="zh"`` (every CJK character is a token, other scripts
  are split by 13a rules), so our numbers can be compared with published Chinese BLEU. Markers
  are removed first as well. Sentence BLEU uses sacrebleu's default exponential smoothing;
  corpus BLEU is the aggregate a test set reports (not the mean of sentence scores).

All scores are in ``[0, 1]`` except BLEU, which keeps sacrebleu's ``[0, 100]`` scale.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from rouge_chinese import Rouge
from sacrebleu.metrics import BLEU

from kg.citations import strip_markers
from zhtext import default_tokenizer


def _is_content(token: str) -> bool:
    return any(not (ch.isspace() or unicodedata.category(ch).startswith(("P", "S"))) for ch in token)


def tokenize_zh(text: str) -> list[str]:
    """jieba words of ``text`` without citation markers, punctuation, symbols or whitespace.

    Example: ``"税率为3%[[VAT/第二条]]。"`` -> ``["税率", "为", "3%"]``.
    """
    clean = unicodedata.normalize("NFKC", strip_markers(text)).lower()
    words = default_tokenizer().words(clean)
    return [w for w in words if _is_content(w)]


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style F1 over the multisets of jieba words (see :func:`tokenize_zh`).

    Two empty texts agree (1.0); one empty text against a non-empty one scores 0.0.
    """
    pred, ref = tokenize_zh(prediction), tokenize_zh(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _sentence_bleu() -> BLEU:
    return BLEU(tokenize="zh", effective_order=True)


def sentence_bleu(prediction: str, reference: str) -> float:
    """sacrebleu sentence BLEU (0..100, zh tokenizer, exp smoothing, effective order)."""
    return float(_sentence_bleu().sentence_score(strip_markers(prediction), [strip_markers(reference)]).score)


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus BLEU (0..100, zh tokenizer) over aligned predictions and references."""
    if not predictions:
        return 0.0
    bleu = BLEU(tokenize="zh")
    refs = [[strip_markers(r) for r in references]]
    return float(bleu.corpus_score([strip_markers(p) for p in predictions], refs).score)


@lru_cache(maxsize=1)
def _rouge() -> Rouge:
    return Rouge(metrics=["rouge-l"])


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (rouge-chinese) over jieba words; 0.0 when either side has no words.

    rouge-chinese takes space-separated tokens; punctuation is already gone, so its own sentence
    splitting sees each text as one sentence (LCS over the whole answer).
    """
    pred, ref = tokenize_zh(prediction), tokenize_zh(reference)
    if not pred or not ref:
        return float(pred == ref)
    scores = _rouge().get_scores(" ".join(pred), " ".join(ref))
    return float(scores[0]["rouge-l"]["f"])


__all__ = ["corpus_bleu", "rouge_l", "sentence_bleu", "token_f1", "tokenize_zh"]
