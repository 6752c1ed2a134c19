"""Phrase helpers shared by the extraction rules (pure string work, no spaCy).

Rules see a clause as zhtext sentences (colons included) and, within a sentence, as the
comma-delimited segments these helpers find.
"""

from __future__ import annotations

import re

from zhtext import CLAUSE_NUMBER, COLONS, SENTENCE_ENDS

_SEGMENT_END = "，,、" + COLONS + SENTENCE_ENDS + "\n"
_LEADING = re.compile(r"^(?:否则|并且|并|且|而且|但是|但|同时|另外|此外|因此|其|也|还|均|都|即|则)")
_TRAILING = re.compile(
    r"(?:的|时|后|分别|均|都|也|还|应当|应|不得|可以|必须|须|通常|一般|为|是|不得超过|不超过|超过|不低于|"
    r"低于|不少于|少于|不足|达到|最长|最短|最高|最低|至少|最多)$"
)
_PREPOSITION = re.compile(
    r"^(?:对于|对|在|当|如果|如|若|自|于|按照|依照|根据|依据|除|为了|为|由|经|向|从|以|因|凡|关于|将|把|被|与|和)"
)
_VERBAL = re.compile(r"应当|不得|可以|必须|之日起|负责")
_HAS_NUMBER = re.compile(r"[0-9０-９%]|[一二三四五六七八九十百千万]+(?:日|个|年|元|倍)")


def strip_number(text: str) -> str:
    """Drop a leading ``第五条`` so that rules see the clause's first words as its start."""
    return CLAUSE_NUMBER.sub("", text, count=1)


def segment_start(text: str, pos: int, floor: int = 0) -> int:
    """Start of the comma-delimited segment that contains ``pos`` (not before ``floor``)."""
    i = pos
    while i > floor and text[i - 1] not in _SEGMENT_END:
        i -= 1
    return i


def segment_end(text: str, pos: int, ceiling: int | None = None) -> int:
    """End of the comma-delimited segment that contains ``pos`` (not after ``ceiling``)."""
    end = len(text) if ceiling is None else ceiling
    i = pos
    while i < end and text[i] not in _SEGMENT_END:
        i += 1
    return i


def noun_phrase(text: str, max_len: int = 20) -> str | None:
    """``text`` as a subject phrase, or None when it does not look like one.

    Connectives in front (并, 其, 同时) and function words behind (的, 应当, 为, 不超过) are
    trimmed; what remains is refused when it is empty, long, opens with a preposition (对单位,
    在合同开始日: those are adverbials, not subjects) or carries a number.
    """
    phrase = text.strip(' \t，,、：:“”"（）()')
    for _ in range(3):
        before = phrase
        phrase = _LEADING.sub("", phrase).strip()
        phrase = _TRAILING.sub("", phrase).strip()
        if phrase == before:
            break
    if not phrase or len(phrase) > max_len or _PREPOSITION.match(phrase) or _HAS_NUMBER.search(phrase):
        return None
    if _VERBAL.search(phrase):
        return None
    if any(ch in phrase for ch in "，,。；;：:"):
        return None
    return phrase


def trim_action(text: str, max_len: int = 200) -> str:
    """An action phrase without edge punctuation or dangling connectives, capped in length."""
    action = text.strip(" \t，,、：:；;。")
    action = re.sub(r"(?:[，,]?(?:并且|并|且|和|或者|以及))$", "", action).strip(" ，,")
    return action[:max_len]
