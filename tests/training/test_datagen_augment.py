"""Question augmentation on pairs built from real corpus clauses (no graph needed).

Checks what the dataset contract promises: the punctuation ratio is exact, variants keep their
parent's gold clauses, context and answer, stripped questions really lost punctuation (but not the
marks of numbers), paraphrases differ from their parents, and the same seed gives the same output.
"""

from __future__ import annotations

import random
import re

import pytest

from kgqa.errors import ConfigError
from training.datagen.augment import (
    AugmentConfig,
    Paraphraser,
    augment,
    normalize_question,
    punctuation_positions,
    strip_punctuation,
)
from training.datagen.types import QAPair

FILES = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")
_ARTICLE = re.compile(r"^[\s\u3000]*(第[一二三四五六七八九十百零]+条)\s*", re.M)


def corpus_clauses(corpus_dir, name: str) -> list[tuple[str, str, str]]:
    """(clause_id, number, text) of a corpus file, split on 第X条."""
    text = (corpus_dir / name).read_text(encoding="utf-8")
    doc = name.split("/")[-1].split("（")[0].split("(")[0]
    heads = list(_ARTICLE.finditer(text))
    out = []
    for m, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[m.end() : nxt.start() if nxt else len(text)].strip()
        out.append((f"{doc}/{m.group(1)}", m.group(1), re.sub(r"\s+", "", body)))
    return out


def questions_for(clause_id: str, number: str, text: str) -> list[str]:
    """Questions a template would ask about the clause, from its own words."""
    doc = clause_id.split("/")[0]
    qs = [f"《{doc}》{number}规定了什么？"]
    if m := re.match(r"([^，。；]{2,20})，是指", text):
        qs.append(f"什么是{m.group(1)}？")
    if "应当" in text:
        subject = text.split("应当", 1)[0][-12:].strip("，。；：")
        if subject:
            qs.append(f"{subject}应当如何处理，是否有规定？")
    return qs


@pytest.fixture(scope="module")
def pairs(corpus_dir) -> list[QAPair]:
    out: list[QAPair] = []
    for name in FILES:
        for cid, number, text in corpus_clauses(corpus_dir, name):
            first = re.split(r"(?<=[。；])", text)[0]
            for i, q in enumerate(questions_for(cid, number, text)):
                out.append(
                    QAPair(
                        pair_id=f"{cid}#{i}",
                        question=q,
                        answer=f"{first.rstrip('。；')}[[{cid}]]。",
                        qtype="fact",
                        difficulty="基础",
                        style="formal",
                        gold={cid: 1},
                        context_ids=[cid],
                        template_id=f"t{i}",
                    )
                )
    assert len(out) > 60
    return out


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.3, 0.55, 1.0])
def test_punct_variants_are_exactly_the_configured_share(pairs, ratio):
    out = augment(pairs, AugmentConfig(punct_ratio=ratio, paraphrases_per_question=0, seed=3))
    punct = [p for p in out if p.augmentation == "punct"]
    assert len(punct) == round(ratio * len(pairs))
    assert out[: len(pairs)] == pairs  # originals come first, unchanged
    assert len({p.parent_id for p in punct}) == len(punct)  # at most one per question


def test_punct_variants_keep_gold_context_and_answer_and_lose_punctuation(pairs):
    by_id = {p.pair_id: p for p in pairs}
    out = augment(pairs, AugmentConfig(punct_ratio=0.3, paraphrases_per_question=0, seed=1))
    punct = [p for p in out if p.augmentation == "punct"]
    assert punct
    for v in punct:
        parent = by_id[v.parent_id]
        assert v.pair_id != parent.pair_id and v.pair_id.startswith(parent.pair_id)
        assert (v.gold, v.context_ids, v.answer, v.qtype) == (parent.gold, parent.context_ids, parent.answer, parent.qtype)
        assert v.question != parent.question
        assert not punctuation_positions(v.question)  # drop_prob 1.0: every mark is gone
        assert normalize_question(v.question) == normalize_question(parent.question)
        assert "strip_context_punct" not in v.extra


def test_partial_drop_removes_some_marks_and_keeps_numbers():
    q = "纳税人销售货物，税率为17%、适用3.5倍的1,000元标准，《增值税暂行条例》第二条是否有规定？"
    partial = strip_punctuation(q, random.Random(0), drop_prob=0.4)
    assert partial != q
    assert 0 < len(punctuation_positions(partial)) < len(punctuation_positions(q))
    full = strip_punctuation(q, random.Random(0), drop_prob=1.0)
    assert "17%" in full and "3.5倍" in full and "1,000元" in full
    assert "，" not in full and "？" not in full and "《" not in full
    # never a no-op while a mark is left: the variant must differ from its parent
    assert strip_punctuation("存货是什么？", random.Random(5), drop_prob=0.0) == "存货是什么"


def test_same_seed_same_variants_other_seed_other_choice(pairs):
    cfg = AugmentConfig(punct_ratio=0.3, paraphrases_per_question=1, seed=11)
    a = [p.to_dict() for p in augment(pairs, cfg)]
    b = [p.to_dict() for p in augment(pairs, cfg)]
    assert a == b
    other = augment(pairs, AugmentConfig(punct_ratio=0.3, paraphrases_per_question=1, seed=12))
    chosen = {d["parent_id"] for d in a if d["augmentation"] == "punct"}
    assert chosen != {p.parent_id for p in other if p.augmentation == "punct"}


def test_context_flag_is_set_only_when_asked(pairs):
    out = augment(pairs, AugmentConfig(punct_ratio=0.5, punct_on_context=True, paraphrases_per_question=0))
    punct = [p for p in out if p.augmentation == "punct"]
    assert punct and all(p.extra["strip_context_punct"] is True for p in punct)
    assert not any("strip_context_punct" in p.extra for p in out if p.augmentation == "none")


def test_paraphrases_differ_from_parent_and_keep_gold(pairs):
    by_id = {p.pair_id: p for p in pairs}
    out = augment(pairs, AugmentConfig(punct_ratio=0.0, paraphrases_per_question=2, seed=2))
    para = [p for p in out if p.augmentation == "paraphrase"]
    assert len(para) >= len(pairs)  # at least one per question (a polite prefix always works)
    for v in para:
        parent = by_id[v.parent_id]
        assert normalize_question(v.question) != normalize_question(parent.question)
        assert v.gold == parent.gold and v.answer == parent.answer and v.context_ids == parent.context_ids
    for parent_id in {v.parent_id for v in para}:
        siblings = [normalize_question(v.question) for v in para if v.parent_id == parent_id]
        assert len(siblings) == len(set(siblings))
    assert len({p.pair_id for p in out}) == len(out)


def test_rules_rewrite_definitions_and_protect_titles():
    para = Paraphraser.from_yaml()
    got = para.paraphrase("什么是存货？", 3, random.Random(0))
    assert len(got) == 3
    assert all("存货" in q and q != "什么是存货？" for q in got)
    assert any(q.startswith("存货") for q in got)  # 什么是X -> X是什么意思 / X指的是什么 ...
    titled = para.paraphrase("《企业会计准则第1号——存货》第五条规定企业应当如何计量存货？", 4, random.Random(1))
    assert titled and all("《企业会计准则第1号——存货》第五条" in q for q in titled)
    assert any("公司" in q or "单位" in q for q in titled)  # 企业 outside the title is varied


def test_llm_hook_is_asked_first_and_rules_fill_the_rest():
    asked: list[tuple[str, int]] = []

    def llm(question: str, n: int) -> list[str]:
        asked.append((question, n))
        return ["存货一开始按什么金额入账？", "存货应当按照什么进行初始计量"]  # 2nd = parent minus punctuation

    para = Paraphraser.from_yaml(llm=llm)
    got = para.paraphrase("存货应当按照什么进行初始计量？", 2, random.Random(0))
    assert asked == [("存货应当按照什么进行初始计量？", 2)]
    assert got[0] == "存货一开始按什么金额入账？"
    assert len(got) == 2 and normalize_question(got[1]) != normalize_question("存货应当按照什么进行初始计量？")


def test_bad_rules_file_is_a_config_error(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("patterns:\n  - match: '(unclosed'\n    rewrite: ['x']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="paraphrase rules"):
        Paraphraser.from_yaml(bad)
