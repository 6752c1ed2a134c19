"""Weighted reciprocal-rank fusion of several rankings of clause ids.

RRF uses ranks, not scores, because BM25 scores, cosine similarities and Lucene scores live on
incomparable scales; a weight per ranking says how much each retriever is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Fused:
    """One fused candidate: its id, fused score and the 1-based rank it had in each ranking."""

    clause_id: str
    score: float
    sources: dict[str, int] = field(default_factory=dict)


def weighted_rrf(
    rankings: Mapping[str, Sequence[str]], weights: Mapping[str, float], rrf_k: int = 60
) -> list[Fused]:
    """Fuse rankings with ``score(c) = Σ_r w_r / (rrf_k + rank_r(c))``.

    Args:
        rankings: retriever name -> clause ids, best first. A repeated id keeps its best rank.
        weights: retriever name -> weight; a missing name or a weight of 0 still records the
            rank in ``sources`` (useful for debugging) but adds nothing to the score.
        rrf_k: damping constant (60 in the original paper).

    Returns:
        Candidates by descending score; ties keep the order of first appearance, so the result
        is deterministic.
    """
    fused: dict[str, Fused] = {}
    for name, ids in rankings.items():
        weight = float(weights.get(name, 0.0))
        seen: set[str] = set()
        rank = 0
        for cid in ids:
            if cid in seen:
                continue
            seen.add(cid)
            rank += 1
            entry = fused.setdefault(cid, Fused(cid, 0.0))
            entry.sources[name] = rank
            entry.score += weight / (rrf_k + rank)
    order = {cid: i for i, cid in enumerate(fused)}
    return sorted(fused.values(), key=lambda f: (-f.score, order[f.clause_id]))
