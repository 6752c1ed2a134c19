"""zhtext: the Chinese text toolkit every kgqa package shares (a leaf: it imports none of them).

One way of doing each thing: sentence splitting (:mod:`zhtext.sentences`), word segmentation with
a thread-safe jieba tokenizer (:mod:`zhtext.tokenize`), the shared regular expressions
(:mod:`zhtext.patterns`), the stop words (:mod:`zhtext.stopwords`) and numerals of article
numbers (:mod:`zhtext.numerals`).
"""

from zhtext.numerals import CN_DIGITS, NUMERAL_CLASS, circled_to_int, to_chinese, to_int
from zhtext.patterns import CJK, CLAUSE_NUMBER, CONTENT_CHAR, DEFINITION, ITEM_MARKER, NUMBERED_PART
from zhtext.sentences import COLONS, SENTENCE_ENDS, Span, sentence_spans, split_sentences
from zhtext.stopwords import STOPWORDS
from zhtext.tokenize import Tokenizer, canonical_number, default_tokenizer, fold

__all__ = [
    "CJK",
    "CLAUSE_NUMBER",
    "CN_DIGITS",
    "COLONS",
    "CONTENT_CHAR",
    "DEFINITION",
    "ITEM_MARKER",
    "NUMBERED_PART",
    "NUMERAL_CLASS",
    "SENTENCE_ENDS",
    "STOPWORDS",
    "Span",
    "Tokenizer",
    "canonical_number",
    "circled_to_int",
    "default_tokenizer",
    "fold",
    "sentence_spans",
    "split_sentences",
    "to_chinese",
    "to_int",
]
