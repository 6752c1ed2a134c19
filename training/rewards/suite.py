"""The GRPO reward as TRL wants it: one callable per component, their weights, one scoring per batch.

TRL calls every reward function in turn with the same batch (``prompts``, ``completions``,
``completion_ids`` and each dataset column as a list, one entry per completion). The components
share their expensive part (the batch's evidence and one verification per completion), so
:class:`RewardSuite` scores the whole batch on the first call and the other callables read the
cached result: the evidence is built once per batch (:mod:`training.rewards.evidence`; with the
graph, ONE fetch), each completion is verified once.

Example::

    suite = RewardSuite(RewardConfig(), GraphBatchEvidence(driver))
    trainer = GRPOTrainer(model, reward_funcs=suite.functions,
                          args=GRPOConfig(..., reward_weights=suite.weights), ...)

Each callable has a ``__name__`` (``citation``, ``hallucination``, ...), so TRL logs
``rewards/<name>/mean`` and ``rewards/<name>/std`` per step. With a :class:`CompletionRecorder`
every scored completion is appended to ``completions.jsonl`` with its components, total and the
verifier's unsupported atoms: the audit trail of what the policy was rewarded for.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kg.citations import parse_citations
from kg.verifier import Verifier, is_refusal
from training.rewards.components import (
    abstention_reward,
    citation_reward,
    correctness_reward,
    format_reward,
    hallucination_reward,
    length_reward,
)
from training.rewards.config import COMPONENTS, RewardConfig
from training.rewards.evidence import BatchEvidenceSource, ContextEvidence, allowed_ids

# kwargs TRL adds to the dataset columns; not part of a record
_TRL_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments")


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The answer text of a completion: a string, or the assistant messages of a conversational one."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role", "assistant") == "assistant")


@dataclass
class CompletionScore:
    """Every component of one completion, its weighted total and why (the unsupported atoms)."""

    record_id: str | None
    completion: str
    refusal: bool
    cited: list[str]
    rewards: dict[str, float | None]
    total: float
    unsupported: list[dict[str, str]] = field(default_factory=list)
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CompletionRecorder:
    """Appends scored completions to a JSONL file (one object per completion)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, scores: Sequence[CompletionScore], *, source: str = "policy") -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            for s in scores:
                fh.write(json.dumps({"source": source, **s.to_dict()}, ensure_ascii=False) + "\n")


def records_from_columns(columns: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-completion records from TRL's column lists (``{"reference": [...], ...}``)."""
    keys = [k for k in columns if k not in _TRL_KWARGS]
    for k in keys:
        if len(columns[k]) != n:
            raise ValueError(f"column {k!r} has {len(columns[k])} values for {n} completions")
    return [{k: columns[k][i] for k in keys} for i in range(n)]


class RewardSuite:
    """The reward components over one evidence source, with their weights.

    Args:
        config: weights and scales (default :class:`RewardConfig`).
        evidence_source: builds a batch's evidence (default: the records' contexts only);
            pass :class:`~training.rewards.evidence.GraphBatchEvidence` to judge with the graph.
        verifier: the answer verifier (default: one built with ``config.support_threshold``).
        recorder: where scored completions are appended (``None``: not recorded).
    """

    def __init__(
        self,
        config: RewardConfig | None = None,
        evidence_source: BatchEvidenceSource | None = None,
        *,
        verifier: Verifier | None = None,
        recorder: CompletionRecorder | None = None,
    ) -> None:
        self.config = config or RewardConfig()
        self.evidence_source = evidence_source or ContextEvidence()
        #: what the trainer's calls are recorded as: ``policy`` while training, ``eval`` while the
        #: runner scores held-out prompts
        self.source = "policy"
        self.verifier = verifier or Verifier(support_threshold=self.config.support_threshold)
        self.recorder = recorder
        self.functions = [RewardFunction(self, name) for name in COMPONENTS]
        self.batches_scored = 0
        self.graph_reads = 0
        self.last_graph_reads = 0
        self._cache_key: tuple | None = None
        self._cache: list[CompletionScore] = []
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(COMPONENTS)

    @property
    def weights(self) -> list[float]:
        """``GRPOConfig.reward_weights``, aligned with :attr:`functions`."""
        return self.config.weights.as_list()

    def total(self, rewards: Mapping[str, float | None]) -> float:
        """The weighted sum TRL computes (components that do not apply count 0)."""
        return sum(w * v for w, n in zip(self.weights, COMPONENTS, strict=True)
                   if (v := rewards.get(n)) is not None and not math.isnan(v))  # fmt: skip

    def score(
        self,
        records: Sequence[Mapping[str, Any]],
        completions: Sequence[str | Sequence[Mapping[str, Any]]],
        completion_ids: Sequence[Sequence[int]] | None = None,
        *,
        step: int | None = None,
        source: str = "policy",
    ) -> list[CompletionScore]:
        """Score a batch (cached: the next call with the same batch returns the same objects).

        Args:
            records: one GRPO record per completion (``reference``, ``answerable``,
                ``gold_clause_ids``, ``contexts`` or ``contexts_json``, ``cot``, ``id``).
            completions: strings or conversational message lists.
            completion_ids: token ids per completion (for the length component; else estimated).
            step: the trainer step, recorded with each completion.
            source: recorded with each completion (``policy`` for the trainer's samples, ``probe``...).
        """
        if len(records) != len(completions):
            raise ValueError(f"{len(records)} records for {len(completions)} completions")
        texts = [completion_text(c) for c in completions]
        key = (step, source, tuple(texts), tuple(str(r.get("id")) for r in records),
               tuple(str(r.get("reference")) for r in records))  # fmt: skip
        with self._lock:
            if key == self._cache_key:
                return self._cache
            scores = self._score(records, texts, completion_ids, step)
            self._cache_key, self._cache = key, scores
        if self.recorder is not None:
            self.recorder.write(scores, source=source)
        return scores

    def _score(
        self,
        records: Sequence[Mapping[str, Any]],
        texts: Sequence[str],
        completion_ids: Sequence[Sequence[int]] | None,
        step: int | None,
    ) -> list[CompletionScore]:
        cfg = self.config
        parsed = [parse_citations(t) for t in texts]
        cited = list(dict.fromkeys(cid for p in parsed for cid in p.clause_ids))
        batch = self.evidence_source.collect(records, cited)  # once per batch
        self.batches_scored += 1
        self.graph_reads += batch.graph_reads
        self.last_graph_reads = batch.graph_reads
        out = []
        for i, (record, text, p) in enumerate(zip(records, texts, parsed, strict=True)):
            evidence = batch.for_record(i)
            allowed = allowed_ids(record)
            answerable = bool(record.get("answerable", True))
            refusal = is_refusal(text)
            result = self.verifier.verify_against(text, evidence, allowed_ids=allowed)
            if completion_ids is not None:
                n_tokens = len(completion_ids[i])
            else:
                n_tokens = math.ceil(len(text) / cfg.length_chars_per_token)
            rewards: dict[str, float | None] = {
                "citation": citation_reward(p, evidence, allowed, cfg, refusal=refusal),
                "hallucination": hallucination_reward(result, cfg),
                "correctness": correctness_reward(
                    text, str(record.get("reference") or ""), cfg, answerable=answerable, refusal=refusal
                ),
                "format": format_reward(p, text, cot=bool(record.get("cot")), refusal=refusal),
                "abstention": abstention_reward(answerable=answerable, refusal=refusal),
                "length": length_reward(n_tokens, cfg),
            }
            out.append(
                CompletionScore(
                    record_id=None if record.get("id") is None else str(record.get("id")),
                    completion=text,
                    refusal=refusal,
                    cited=p.clause_ids,
                    rewards=rewards,
                    total=self.total(rewards),
                    unsupported=[
                        {"kind": a.kind, "text": a.normalized, "reason": a.reason} for a in result.unsupported
                    ],
                    step=step,
                )
            )
        return out


class RewardFunction:
    """One component as a TRL reward function (``__name__`` is the component's name)."""

    def __init__(self, suite: RewardSuite, name: str) -> None:
        self.suite = suite
        self.__name__ = name

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        completions = list(completions or [])
        records = records_from_columns(columns, len(completions))
        step = getattr(columns.get("trainer_state"), "global_step", None)
        scores = self.suite.score(records, completions, completion_ids, step=step, source=self.suite.source)
        log_metric = columns.get("log_metric")
        if log_metric is not None and self.__name__ == COMPONENTS[0] and scores:
            n = len(scores)
            log_metric("verifier/unsupported_atoms", sum(len(s.unsupported) for s in scores) / n)
            log_metric("verifier/refusal_rate", sum(s.refusal for s in scores) / n)
            log_metric("verifier/graph_reads", float(self.suite.last_graph_reads))
        return [s.rewards[self.__name__] for s in scores]

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__})"


__all__ = [
    "CompletionRecorder",
    "CompletionScore",
    "RewardFunction",
    "RewardSuite",
    "completion_text",
    "records_from_columns",
]
