"""Leak-free splits: train / val / unseen-clause test by clause group, plus a paraphrase test set.

Knowledge injection and generalization are measured on different test sets. ``test_unseen``
holds clauses the model never trained on (generalization: answer from the prompt's clauses);
``test_paraphrase`` holds new phrasings of trained clauses (did the knowledge stick beyond the
exact question). A clause must therefore never feed both train and ``test_unseen``: pairs are
split by *clause group*, the connected components of their gold clause ids (a cross-reference
pair joins the clauses on its path), never by pair.

Groups are ordered by a seeded hash and cut at the cumulative shares, so the split is 8:1:1 in
groups (not only in expectation) and the same seed and graph give the same split.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from training.datagen.augment import normalize_question
from training.datagen.types import QAPair

log = structlog.get_logger(__name__)

TEST_SPLITS = ("test_unseen", "test_paraphrase")


class SplitConfig(BaseModel):
    """Split shares and seed.

    Attributes:
        train, val, test: shares of clause groups (they must sum to 1).
        seed: seed of the group order.
        paraphrase_test_per_clause: paraphrased variants per trained clause group moved into
            ``test_paraphrase`` (0 disables the paraphrase test set).
        paraphrase_test_share: the share of trained groups (by seeded hash) that give them; the
            rest keep every paraphrase for training.
    """

    model_config = ConfigDict(extra="forbid")

    train: float = Field(0.8, ge=0.0, le=1.0, description="share of clause groups in train")
    val: float = Field(0.1, ge=0.0, le=1.0, description="share of clause groups in val")
    test: float = Field(0.1, ge=0.0, le=1.0, description="share of clause groups in test_unseen")
    seed: int = Field(0, description="seed of the group order")
    paraphrase_test_per_clause: int = Field(1, ge=0, description="paraphrases per trained clause held out")
    paraphrase_test_share: float = Field(
        0.3, ge=0.0, le=1.0, description="share of trained clause groups that give paraphrases to the test"
    )

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {self.train + self.val + self.test}")
        return self


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _hash(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def _cut(keys: Sequence[str], config: SplitConfig) -> dict[str, str]:
    """Keys ordered by seeded hash, cut at the cumulative shares into train/val/test_unseen."""
    ordered = sorted(keys, key=lambda k: _hash(config.seed, k))
    n = len(ordered)
    n_train = round(n * config.train)
    n_val = round(n * (config.train + config.val)) - n_train
    out: dict[str, str] = {}
    for i, key in enumerate(ordered):
        out[key] = "train" if i < n_train else "val" if i < n_train + n_val else "test_unseen"
    return out


def clause_groups(pairs: Sequence[QAPair]) -> dict[str, str]:
    """Clause id -> group key (the smallest clause id of its connected component)."""
    uf = _UnionFind()
    for pair in pairs:
        ids = list(pair.gold)
        for cid in ids:
            uf.find(cid)
        for a, b in zip(ids, ids[1:], strict=False):
            uf.union(a, b)
    return {cid: uf.find(cid) for cid in list(uf.parent)}


def assign_splits(
    pairs: Sequence[QAPair], config: SplitConfig | None = None, previous: Mapping[str, str] | None = None
) -> None:
    """Set ``pair.split`` of every pair (in place).

    Answerable pairs go with their clause group; unanswerable ones (no gold) are cut by their own
    id (a variant by its parent's), with the same shares. Then up to
    ``paraphrase_test_per_clause`` paraphrased variants per trained clause group move to
    ``test_paraphrase`` when their text (without punctuation) is not a train question.
    Finally, a kept pair of val or a test split whose question text is also a train question is
    dropped (``reject_reason="split_leak"``): two clauses can share a template question.

    ``previous`` (clause id -> split of the last build, for ``--since``) keeps a group where its
    clauses were, so an incremental build never moves a trained clause into a test set: a group
    with any clause previously in train stays in train, else it keeps the earlier val/test split.
    Only groups no clause of which was split before are cut anew.
    """
    config = config or SplitConfig()
    group_of = clause_groups(pairs)
    groups = sorted(set(group_of.values()))
    kept: dict[str, str] = {}
    for cid, group in group_of.items():
        before = (previous or {}).get(cid)
        if before in ("train", "val", "test_unseen") and kept.get(group) != "train":
            kept[group] = "train" if before == "train" else kept.get(group, before)
    group_split = {**_cut([g for g in groups if g not in kept], config), **kept}
    unanswerable_roots = sorted({p.parent_id or p.pair_id for p in pairs if not p.gold})
    root_split = _cut(unanswerable_roots, config)

    for pair in pairs:
        if pair.gold:
            pair.split = group_split[group_of[next(iter(pair.gold))]]
        else:
            pair.split = root_split[pair.parent_id or pair.pair_id]

    _paraphrase_test(pairs, group_of, config)
    _drop_text_leaks(pairs)
    counts = Counter(p.split for p in pairs)
    log.info("splits.assigned", groups=len(groups), unanswerable=len(unanswerable_roots), **counts)


def _paraphrase_test(pairs: Sequence[QAPair], group_of: dict[str, str], config: SplitConfig) -> None:
    if config.paraphrase_test_per_clause <= 0:
        return
    candidates: dict[str, list[QAPair]] = defaultdict(list)
    for pair in pairs:
        if pair.split == "train" and pair.gold and pair.augmentation == "paraphrase" and pair.band != "drop":
            candidates[group_of[next(iter(pair.gold))]].append(pair)
    ranked_groups = sorted(candidates, key=lambda g: _hash(config.seed, "paraphrase\x00" + g))
    chosen = ranked_groups[: math.ceil(len(ranked_groups) * config.paraphrase_test_share)]
    picked: list[QAPair] = []
    for group in sorted(chosen):
        ranked = sorted(candidates[group], key=lambda p: _hash(config.seed, p.pair_id))
        picked += ranked[: config.paraphrase_test_per_clause * 3]  # spares for text collisions
    picked_ids = {p.pair_id for p in picked}
    train_texts = {
        normalize_question(p.question)
        for p in pairs
        if p.split == "train" and p.pair_id not in picked_ids and p.band != "drop"
    }
    # The knowledge must really be trained: an SFT-band train pair (not only a GRPO prompt) per clause.
    sft_trained = {
        cid
        for p in pairs
        if p.split == "train" and p.band not in ("drop", "grpo") and p.pair_id not in picked_ids
        for cid in p.gold
    }
    taken: Counter[str] = Counter()
    for pair in picked:
        group = group_of[next(iter(pair.gold))]
        if taken[group] >= config.paraphrase_test_per_clause or not set(pair.gold) <= sft_trained:
            continue
        if normalize_question(pair.question) in train_texts:
            continue
        pair.split = "test_paraphrase"
        taken[group] += 1


def _drop_text_leaks(pairs: Sequence[QAPair]) -> None:
    train_texts = {normalize_question(p.question) for p in pairs if p.split == "train" and p.band != "drop"}
    for pair in pairs:
        if pair.split != "train" and pair.band != "drop" and normalize_question(pair.question) in train_texts:
            pair.band, pair.reject_reason = "drop", "split_leak"


def leak_check(pairs: Sequence[QAPair]) -> list[str]:
    """Leaks among the kept pairs (band not ``drop``); empty when the split is clean.

    Reports a gold clause used by train and by val or ``test_unseen``, and a question text
    (compared without punctuation) asked in train and in val or a test split.
    """
    kept = [p for p in pairs if p.band != "drop"]
    clauses: dict[str, set[str]] = defaultdict(set)
    texts: dict[str, set[str]] = defaultdict(set)
    for pair in kept:
        for cid in pair.gold:
            clauses[pair.split or "none"].add(cid)
        texts[pair.split or "none"].add(normalize_question(pair.question))
    problems: list[str] = []
    for split in ("val", "test_unseen"):
        for cid in sorted(clauses["train"] & clauses[split]):
            problems.append(f"clause {cid} is in train and {split}")
    for split in ("val", *TEST_SPLITS):
        for text in sorted(texts["train"] & texts[split]):
            problems.append(f"question {text!r} is in train and {split}")
    return problems


__all__ = ["SplitConfig", "assign_splits", "clause_groups", "leak_check"]
