"""Evaluation metrics of generated answers: text overlap, key facts, citations, similarity, AHP.

Each module is pure (no model, no I/O) except :mod:`training.metrics.semantic`, which loads a
sentence-transformers model when built. :mod:`training.evaluate` combines them per record and
per test set.
"""

from training.metrics.ahp import AhpResult, checked_weights, weights
from training.metrics.citations import CitationScore, citation_score
from training.metrics.keyfacts import KeyFactScore, key_fact_score, key_facts
from training.metrics.text import corpus_bleu, rouge_l, sentence_bleu, token_f1, tokenize_zh

__all__ = [
    "AhpResult",
    "CitationScore",
    "KeyFactScore",
    "checked_weights",
    "citation_score",
    "corpus_bleu",
    "key_fact_score",
    "key_facts",
    "rouge_l",
    "sentence_bleu",
    "token_f1",
    "tokenize_zh",
    "weights",
]
