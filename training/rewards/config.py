"""Settings of the GRPO reward: the weight of each component and the scales inside them.

The defaults are documented in ``training/configs/grpo.yaml`` (the ``rewards:`` section). Every
component is in ``[-1, 1]`` (hallucination in ``[-hallucination_cap, 0]``) so that the weights,
not the components' own ranges, say how much each one counts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The reward components, in the order the suite hands them to TRL (and logs them).
COMPONENTS = ("citation", "hallucination", "correctness", "format", "abstention", "length")


class RewardWeights(BaseModel):
    """``GRPOConfig.reward_weights``, by component name (0 keeps a component logged but inert)."""

    model_config = ConfigDict(extra="forbid")

    citation: float = Field(1.0, ge=0, description="Cited ids exist, are active, are gold or retrieved.")
    hallucination: float = Field(1.0, ge=0, description="Minus the verifier's unsupported atoms, scaled.")
    correctness: float = Field(1.0, ge=0, description="Token F1 and key-fact recall against the reference.")
    format: float = Field(0.5, ge=0, description="Markers present and well formed; 分析/依据/结论 when cot.")
    abstention: float = Field(1.0, ge=0, description="Refuse unanswerable questions, answer answerable ones.")
    length: float = Field(0.1, ge=0, description="Mild penalty for completions running into the length limit.")

    def as_list(self) -> list[float]:
        return [float(getattr(self, name)) for name in COMPONENTS]


class RewardConfig(BaseModel):
    """How completions are scored (see :mod:`training.rewards.components` for each formula)."""

    model_config = ConfigDict(extra="forbid")

    weights: RewardWeights = Field(default_factory=RewardWeights)
    evidence: Literal["auto", "contexts", "graph"] = Field(
        "auto",
        description=(
            "Where cited clauses are looked up. contexts: the clauses stored in each prompt record "
            "(read from the graph when the dataset was built); graph: those plus one Neo4j fetch of "
            "every id cited in the batch (invented ids are judged by the live graph); auto: graph "
            "when Neo4j is reachable, else contexts (with a warning)."
        ),
    )
    support_threshold: float = Field(0.5, ge=0, le=1, description="kg.verifier sentence-support threshold.")
    # citation validity: the value of one cited id; the component is the mean over cited ids
    citation_valid: float = Field(1.0, description="An active clause among the record's gold + context ids.")
    citation_outside: float = Field(-0.5, description="An active clause of the graph outside gold + context.")
    citation_inactive: float = Field(-1.0, description="A superseded or retired clause version.")
    citation_invented: float = Field(-1.0, description="An id the evidence does not hold, or a malformed marker.")
    citation_missing: float = Field(-1.0, description="A non-refusal answer without any citation.")
    # hallucination
    hallucination_per_atom: float = Field(0.5, gt=0, description="Penalty per unsupported atom.")
    hallucination_cap: float = Field(2.0, gt=0, description="Most the hallucination penalty takes away.")
    count_citation_atoms: bool = Field(
        False,
        description="Count the verifier's 'citation' atoms too (off: the citation component already judges them).",
    )
    # correctness
    key_fact_share: float = Field(
        0.5, ge=0, le=1, description="Share of key-fact recall in correctness (the rest is token F1)."
    )
    # length (DAPO-style soft overlong penalty, on completion tokens)
    length_limit_tokens: int = Field(512, ge=1, description="The hard limit; the runner sets max_completion_length.")
    length_soft_fraction: float = Field(
        0.75, gt=0, le=1, description="No penalty below this share of the limit; -1 at the limit."
    )
    length_chars_per_token: float = Field(
        1.5, gt=0, description="Token estimate from characters when completion ids are not given."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RewardConfig:
        if not self.citation_valid > max(self.citation_outside, self.citation_inactive, self.citation_invented):
            raise ValueError("citation_valid must be larger than the outside/inactive/invented values")
        return self


__all__ = ["COMPONENTS", "RewardConfig", "RewardWeights"]
