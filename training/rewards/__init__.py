"""GRPO rewards judged by the knowledge graph: citations, hallucination, correctness, format, abstention, length.

:class:`RewardSuite` hands TRL one callable per component plus their weights; the components
themselves are pure functions in :mod:`training.rewards.components`, and the evidence a batch is
judged against is built once per batch by :mod:`training.rewards.evidence`.
"""

from training.rewards.components import (
    abstention_reward,
    citation_reward,
    correctness_reward,
    cot_layout_score,
    format_reward,
    hallucination_reward,
    length_reward,
)
from training.rewards.config import COMPONENTS, RewardConfig, RewardWeights
from training.rewards.evidence import (
    BatchEvidence,
    BatchEvidenceSource,
    ContextEvidence,
    GraphBatchEvidence,
    allowed_ids,
    context_clause,
    record_contexts,
)
from training.rewards.suite import (
    CompletionRecorder,
    CompletionScore,
    RewardFunction,
    RewardSuite,
    completion_text,
    records_from_columns,
)

__all__ = [
    "COMPONENTS",
    "BatchEvidence",
    "BatchEvidenceSource",
    "CompletionRecorder",
    "CompletionScore",
    "ContextEvidence",
    "GraphBatchEvidence",
    "RewardConfig",
    "RewardFunction",
    "RewardSuite",
    "RewardWeights",
    "abstention_reward",
    "allowed_ids",
    "citation_reward",
    "completion_text",
    "context_clause",
    "correctness_reward",
    "cot_layout_score",
    "format_reward",
    "hallucination_reward",
    "length_reward",
    "record_contexts",
    "records_from_columns",
]
