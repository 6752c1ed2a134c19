"""Leak-free splits over pairs built from real corpus clauses (~200 clause groups, no graph).

Checks the promises evaluation relies on: no clause feeds both train and the unseen-clause test
(over many seeds), group shares close to 8:1:1, cross-reference pairs keep their clauses together,
variants follow their parent, and the paraphrase test set asks only questions train never asked.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from pydantic import ValidationError

from kg.prompting import REFUSAL_ANSWER
from training.datagen.augment import AugmentConfig, augment, normalize_question
from training.datagen.splits import SplitConfig, assign_splits, clause_groups, leak_check
from training.datagen.types import QAPair

FILES = (
    "standards/企业会计准则第1号——存货（2006）.md",
    "standards/企业会计准则第4号——固定资产（2006）.md",
    "laws/增值税暂行条例(2017-11-19).md",
    "laws/招标投标法(2017-12-27).md",
    "laws/发票管理办法(2023-07-20).md",
    "laws/会计法(2024-06-28).md",
)
_ARTICLE = re.compile(r"^[\s\u3000]*(第[一二三四五六七八九十百零]+条)\s*", re.M)


def corpus_clauses(corpus_dir, name: str) -> list[tuple[str, str]]:
    """(clause_id, text) of a corpus file, split on 第X条."""
    text = (corpus_dir / name).read_text(encoding="utf-8")
    doc = name.split("/")[-1].split("（")[0].split("(")[0]
    heads = list(_ARTICLE.finditer(text))
    return [
        (f"{doc}/{m.group(1)}", re.sub(r"\s+", "", text[m.end() : nxt.start() if nxt else len(text)]))
        for m, nxt in zip(heads, [*heads[1:], None], strict=True)
    ]


def _pair(pid: str, question: str, gold: list[str], qtype: str = "fact", answer: str | None = None) -> QAPair:
    return QAPair(
        pair_id=pid,
        question=question,
        answer=answer if answer is not None else "".join(f"见条款[[{g}]]。" for g in gold),
        qtype=qtype,
        difficulty="基础",
        style="formal",
        gold={g: 1 for g in gold},
        context_ids=list(gold),
        template_id="t",
    )


@pytest.fixture(scope="module")
def base_pairs(corpus_dir) -> list[QAPair]:
    """Two questions per clause, a cross-reference pair per 10th clause, 20 unanswerable."""
    out: list[QAPair] = []
    clauses = [c for name in FILES for c in corpus_clauses(corpus_dir, name)]
    for i, (cid, text) in enumerate(clauses):
        first = re.split(r"[。；：]", text)[0][:30]
        out.append(_pair(f"{cid}#a", f"{first}，这一条怎么规定的？", [cid]))
        out.append(_pair(f"{cid}#b", f"请说明{cid}的主要内容。", [cid], qtype="definition"))
        if i % 10 == 0 and i + 1 < len(clauses) and clauses[i + 1][0].split("/")[0] == cid.split("/")[0]:
            out.append(_pair(f"{cid}#x", f"{cid}和下一条是什么关系？", [cid, clauses[i + 1][0]], "cross_reference"))
    for i in range(20):
        out.append(_pair(f"none-{i}", f"公司第{i}号食堂的菜单由谁决定？", [], "unanswerable", REFUSAL_ANSWER))
    return out


@pytest.fixture(scope="module")
def pairs(base_pairs) -> list[QAPair]:
    return augment(base_pairs, AugmentConfig(punct_ratio=0.3, paraphrases_per_question=1, seed=0))


def _fresh(pairs: list[QAPair]) -> list[QAPair]:
    return [QAPair.from_dict(p.to_dict()) for p in pairs]


def test_about_two_hundred_groups_and_cross_references_join_clauses(base_pairs):
    groups = clause_groups(base_pairs)
    n_groups = len(set(groups.values()))
    assert 180 <= n_groups <= 260
    for p in base_pairs:
        if p.qtype == "cross_reference":
            a, b = list(p.gold)
            assert groups[a] == groups[b]


@pytest.mark.parametrize("seed", range(12))
def test_no_clause_in_train_and_test_unseen_over_seeds(pairs, seed):
    ps = _fresh(pairs)
    assign_splits(ps, SplitConfig(seed=seed))
    train = {c for p in ps if p.split == "train" for c in p.gold}
    for split in ("val", "test_unseen"):
        other = {c for p in ps if p.split == split for c in p.gold}
        assert other and not (train & other)
    assert leak_check(ps) == []


def test_group_shares_are_close_to_8_1_1(pairs):
    ps = _fresh(pairs)
    assign_splits(ps, SplitConfig(seed=4, paraphrase_test_per_clause=0))
    groups = clause_groups(ps)
    split_of_group: dict[str, str] = {}
    for p in ps:
        if p.gold:
            for c in p.gold:
                assert split_of_group.setdefault(groups[c], p.split) == p.split  # one split per group
    shares = Counter(split_of_group.values())
    n = len(split_of_group)
    assert abs(shares["train"] / n - 0.8) <= 0.01
    assert abs(shares["val"] / n - 0.1) <= 0.01
    assert abs(shares["test_unseen"] / n - 0.1) <= 0.01
    unanswerable = Counter(p.split for p in ps if not p.gold and p.augmentation == "none")
    assert unanswerable == {"train": 16, "val": 2, "test_unseen": 2}


def test_variants_follow_their_parent_except_held_out_paraphrases(pairs):
    ps = _fresh(pairs)
    assign_splits(ps, SplitConfig(seed=1))
    by_id = {p.pair_id: p for p in ps}
    for p in ps:
        if p.parent_id and p.split != "test_paraphrase":
            assert p.split == by_id[p.parent_id].split


def test_paraphrase_test_set_holds_new_phrasings_of_trained_clauses(pairs):
    ps = _fresh(pairs)
    assign_splits(ps, SplitConfig(seed=2, paraphrase_test_per_clause=1, paraphrase_test_share=1.0))
    held = [p for p in ps if p.split == "test_paraphrase"]
    train = [p for p in ps if p.split == "train"]
    assert len(held) > 100
    assert all(p.augmentation == "paraphrase" and p.gold for p in held)
    trained_clauses = {c for p in train for c in p.gold}
    assert all(set(p.gold) <= trained_clauses for p in held)  # knowledge was trained
    train_texts = {normalize_question(p.question) for p in train}
    assert not any(normalize_question(p.question) in train_texts for p in held)
    groups = clause_groups(ps)
    assert max(Counter(groups[next(iter(p.gold))] for p in held).values()) == 1


def test_identical_question_on_two_clauses_is_not_left_as_a_leak():
    # Two clauses, same template question: whatever split they land in, leak_check stays empty.
    for seed in range(20):
        ps = [_pair(f"g{i}", "本条规定了什么？", [f"DOC/第{i}条"]) for i in range(10)]
        assign_splits(ps, SplitConfig(seed=seed, paraphrase_test_per_clause=0))
        assert leak_check(ps) == []
        kept_splits = {p.split for p in ps if p.band != "drop"}
        assert kept_splits == {"train"}
        assert all(p.reject_reason == "split_leak" for p in ps if p.band == "drop")


def test_leak_check_reports_planted_leaks():
    a = _pair("a", "存货如何计量？", ["CAS-1-存货/第五条"])
    b = _pair("b", "存货怎样初始计量？", ["CAS-1-存货/第五条"])
    c = _pair("c", "存货如何计量", ["CAS-1-存货/第六条"])
    a.split, b.split, c.split = "train", "test_unseen", "test_paraphrase"
    problems = leak_check([a, b, c])
    assert any("CAS-1-存货/第五条" in p and "test_unseen" in p for p in problems)
    assert any("test_paraphrase" in p for p in problems)  # same text without punctuation


def test_shares_must_sum_to_one():
    with pytest.raises(ValidationError):
        SplitConfig(train=0.8, val=0.2, test=0.1)


def test_paraphrase_test_share_limits_the_groups_that_give_phrasings(pairs):
    ps = _fresh(pairs)
    assign_splits(ps, SplitConfig(seed=2, paraphrase_test_per_clause=1, paraphrase_test_share=0.25))
    trained_groups = {clause_groups(ps)[next(iter(p.gold))] for p in ps if p.split == "train" and p.gold}
    held = [p for p in ps if p.split == "test_paraphrase"]
    assert 0 < len(held) <= 0.3 * len(trained_groups)


def test_previous_splits_are_kept_for_an_incremental_build(pairs):
    ps = _fresh(pairs)
    assign_splits(ps, SplitConfig(seed=2))
    previous = {c: p.split for p in ps if p.split in ("train", "val", "test_unseen") for c in p.gold}
    again = _fresh(pairs)
    assign_splits(again, SplitConfig(seed=99), previous=previous)  # another seed: the earlier split wins
    now = {c: p.split for p in again if p.split in ("train", "val", "test_unseen") for c in p.gold}
    assert now == previous
    assert leak_check(again) == []
