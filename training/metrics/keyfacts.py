"""Key-fact accuracy: did the answer state the reference's checkable facts, after normalization?

The key facts of a reference answer are its amounts, rates, durations, multiples, dates and
article numbers (第X条/款/项/章/节/号), found by :func:`kg.normalize.extract_quantities` after the
citation markers are removed (a marker ``[[VAT/第十二条]]`` is a citation, scored elsewhere, not a
fact). Each fact is compared in canonical form (``Quantity.normalized``): ``五百元 == 500元``,
``二十日 == 20日 == 20天``, ``百分之三 == 3%``, ``第二十二条 == 第22条``. Comparators are ignored
(``不超过3个月`` and ``3个月以内`` are the same fact), because the value is what an answer most
often gets wrong, and a bound written either way reads the same to a user.

The score of one record is the recall of its reference's facts in the prediction. Records whose
reference has no key fact get ``None`` and are left out of the mean (and counted), so questions
without numbers neither inflate nor deflate the accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kg.citations import strip_markers
from kg.normalize import extract_quantities


def key_facts(text: str) -> list[str]:
    """The canonical key facts of ``text`` in order of appearance, without repeats.

    Example: ``"罚款五百元，并于二十日内缴纳[[X/第五条]]。"`` -> ``["500元", "20日"]``.
    """
    seen: dict[str, None] = {}
    for q in extract_quantities(strip_markers(text)):
        seen.setdefault(q.normalized, None)
    return list(seen)


@dataclass
class KeyFactScore:
    """The reference's facts, which of them the prediction states, and the recall (None: no facts)."""

    facts: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return len(self.found) / len(self.facts) if self.facts else None


def key_fact_score(prediction: str, reference: str) -> KeyFactScore:
    """Compare the key facts of ``prediction`` with those of ``reference`` (see the module doc)."""
    facts = key_facts(reference)
    stated = set(key_facts(prediction))
    return KeyFactScore(
        facts=facts,
        found=[f for f in facts if f in stated],
        missing=[f for f in facts if f not in stated],
    )


__all__ = ["KeyFactScore", "key_fact_score", "key_facts"]
