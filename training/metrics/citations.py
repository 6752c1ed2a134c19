"""Citation precision and recall of an answer against the gold clause ids of its question.

Only answerable questions are scored (an unanswerable one has no gold ids; its right answer is
the refusal, scored by the refusal rates). Conventions, chosen so that silence is not rewarded:

* an answer that cites nothing has precision 0 and recall 0 (not "undefined"): a model that
  stops citing must see its citation scores fall;
* repeated markers of one id count once (:attr:`kg.citations.ParsedCitations.clause_ids`);
* malformed near-miss markers (``[X/第五条]``, ``【…】``) are not citations.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from kg.citations import parse_citations


@dataclass
class CitationScore:
    """What the answer cited and how that compares with the gold ids."""

    cited: list[str] = field(default_factory=list)
    gold: list[str] = field(default_factory=list)
    precision: float = 0.0
    recall: float = 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def citation_score(prediction: str, gold_ids: Collection[str]) -> CitationScore:
    """Precision = share of cited ids that are gold; recall = share of gold ids that are cited."""
    cited = parse_citations(prediction).clause_ids
    gold = list(dict.fromkeys(gold_ids))
    hits = len(set(cited) & set(gold))
    return CitationScore(
        cited=cited,
        gold=gold,
        precision=hits / len(cited) if cited else 0.0,
        recall=hits / len(gold) if gold else 0.0,
    )


__all__ = ["CitationScore", "citation_score"]
