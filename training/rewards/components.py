"""The reward components: small pure functions of one completion and what its record says.

Each returns a float, or ``None`` where the component does not apply (TRL then leaves it out of
that component's mean and adds nothing to the total). Conventions, so that weights compare:

* ``citation`` in ``[-1, 1]``: the mean value of the cited ids (valid +1, outside the record's
  gold + context ids -0.5, inactive -1, invented or malformed -1); no citation at all: -1;
  refusals: ``None`` (nothing is cited, and abstention judges them).
* ``hallucination`` in ``[-cap, 0]``: minus ``per_atom`` times the verifier's unsupported atoms
  (amounts, rates, durations, dates, article numbers, parties, obligations, unsupported
  sentences). Citation atoms are left to the citation component unless configured otherwise.
* ``correctness`` in ``[0, 1]``: answerable records only; token F1 and key-fact recall against
  the reference (``training.metrics``); a refusal of an answerable question scores 0.
* ``format`` in ``[-1, 1]``: markers present, none malformed, and the 分析/依据/结论 sections in
  order when the record asks for them (``cot``); refusals: ``None``.
* ``abstention`` in ``{-1, 0, 1}`` (TruthRL's three-way signal): refusing an unanswerable
  question +1, refusing an answerable one -1, answering an unanswerable one -1, answering an
  answerable one 0 (correctness and hallucination judge that answer).
* ``length`` in ``[-1, 0]``: DAPO's soft overlong penalty: 0 up to ``soft_fraction`` of the
  limit, then linear down to -1 at the limit (a truncated answer is usually a rambling one).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from kg.citations import ParsedCitations
from kg.verifier import EvidenceClause, VerificationResult
from training.metrics import key_fact_score, token_f1
from training.rewards.config import RewardConfig

#: The three sections of a chain-of-thought answer, in order.
COT_SECTIONS = ("分析", "依据", "结论")
_SECTION_RE = re.compile(r"(?:^|\n)\s*[#*\s]*(分析|依据|结论)\s*[*]*\s*[：:]")


def citation_reward(
    parsed: ParsedCitations,
    evidence: Mapping[str, EvidenceClause],
    allowed_ids: Collection[str],
    config: RewardConfig,
    *,
    refusal: bool,
) -> float | None:
    """Mean value of the cited ids (see the module doc); ``None`` for a refusal."""
    if refusal:
        return None
    ids = parsed.clause_ids
    if not ids and not parsed.malformed:
        return config.citation_missing
    values = [citation_value(cid, evidence.get(cid), allowed_ids, config) for cid in ids]
    values += [config.citation_invented] * len(parsed.malformed)
    return sum(values) / len(values)


def citation_value(
    clause_id: str, clause: EvidenceClause | None, allowed_ids: Collection[str], config: RewardConfig
) -> float:
    """The value of one cited id: invented, inactive, outside the allowed ids, or valid."""
    if clause is None:
        return config.citation_invented
    if not clause.active:
        return config.citation_inactive
    if clause_id not in allowed_ids:
        return config.citation_outside
    return config.citation_valid


def hallucination_reward(result: VerificationResult, config: RewardConfig) -> float:
    """Minus the scaled count of unsupported atoms (a refusal claims nothing: 0)."""
    if result.refusal:
        return 0.0
    atoms = [a for a in result.unsupported if config.count_citation_atoms or a.kind != "citation"]
    return -min(config.hallucination_cap, config.hallucination_per_atom * len(atoms))


def correctness_reward(
    answer: str, reference: str, config: RewardConfig, *, answerable: bool, refusal: bool
) -> float | None:
    """Token F1 mixed with key-fact recall; ``None`` for unanswerable records, 0 for a refusal."""
    if not answerable:
        return None
    if refusal:
        return 0.0
    f1 = token_f1(answer, reference)
    recall = key_fact_score(answer, reference).recall
    if recall is None:  # the reference states no amount, rate, date...: F1 alone
        return f1
    return (1 - config.key_fact_share) * f1 + config.key_fact_share * recall


def cot_sections(answer: str) -> list[str]:
    """The 分析/依据/结论 section headings of ``answer`` in order of appearance (each once)."""
    seen: dict[str, None] = {}
    for m in _SECTION_RE.finditer(answer):
        seen.setdefault(m.group(1), None)
    return list(seen)


def cot_layout_score(answer: str) -> float:
    """Share of the three sections present as the longest in-order run, mapped to ``[-1, 1]``."""
    found = cot_sections(answer)
    # longest prefix of COT_SECTIONS that appears as a subsequence of the found headings
    k = 0
    for name in found:
        if k < len(COT_SECTIONS) and name == COT_SECTIONS[k]:
            k += 1
    return 2 * k / len(COT_SECTIONS) - 1


def format_reward(parsed: ParsedCitations, answer: str, *, cot: bool, refusal: bool) -> float | None:
    """Markers present (+/-), none malformed (+/-), and the cot layout when asked; mean in ``[-1, 1]``."""
    if refusal:
        return None
    checks = [1.0 if parsed.markers else -1.0, -1.0 if parsed.malformed else 1.0]
    if cot:
        checks.append(cot_layout_score(answer))
    return sum(checks) / len(checks)


def abstention_reward(*, answerable: bool, refusal: bool) -> float:
    """TruthRL's three-way signal on the decision to answer (see the module doc)."""
    if refusal:
        return -1.0 if answerable else 1.0
    return 0.0 if answerable else -1.0


def length_reward(n_tokens: int, config: RewardConfig) -> float:
    """0 below the soft limit, then linear to -1 at ``length_limit_tokens``."""
    limit = config.length_limit_tokens
    soft = config.length_soft_fraction * limit
    if n_tokens <= soft or limit <= soft:
        return 0.0 if n_tokens < limit else -1.0
    return -min(1.0, (n_tokens - soft) / (limit - soft))


__all__ = [
    "COT_SECTIONS",
    "abstention_reward",
    "citation_reward",
    "citation_value",
    "correctness_reward",
    "cot_layout_score",
    "cot_sections",
    "format_reward",
    "hallucination_reward",
    "length_reward",
]
