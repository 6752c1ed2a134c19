"""Quality scores and bands with the real verifier over real corpus clauses (ingestion, no Neo4j).

Faithful answers must reach SFT; a wrong rate, an invented clause id or a cited clause outside the
prompt must be dropped with the reason; weak-but-verified answers become GRPO prompts; near
duplicates are caught; refusals are right only for unanswerable questions; variants inherit the
verdict of their parent's answer.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ingest.pipeline import IngestPipeline
from kg.prompting import REFUSAL_ANSWER
from kg.triples import RuleTripleExtractor
from kg.verifier import Verifier
from training.datagen.augment import AugmentConfig, augment
from training.datagen.quality import QualityConfig, QualityScorer, answer_similarity
from training.datagen.types import GraphSnapshot, QAPair, SourceClause, SourceTriple

FILES = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")
VAT = "增值税暂行条例"


def build_snapshot(corpus_dir, files=FILES, graph_version: int = 5) -> GraphSnapshot:
    """Active clauses and rule triples of corpus files, as the graph would give them."""
    clauses: dict[str, SourceClause] = {}
    extractor = RuleTripleExtractor()
    for name in files:
        tree = IngestPipeline().process(corpus_dir / name)
        triples: dict[str, list[SourceTriple]] = {}
        for t in extractor.extract(tree).triples:
            triples.setdefault(t.clause_id, []).append(SourceTriple(t.subject, t.predicate, t.object, dict(t.qualifiers)))
        for c in tree.clauses:
            clauses[c.clause_id] = SourceClause(
                clause_id=c.clause_id,
                version=1,
                doc_id=tree.doc_id,
                doc_title=tree.title,
                number=c.number,
                text=c.text,
                triples=tuple(triples.get(c.clause_id, ())),
            )
    return GraphSnapshot(graph_version=graph_version, clauses=clauses, tables=(), outlines={})


def qa(pid: str, question: str, answer: str, gold: list[str], context: list[str] = (), qtype: str = "fact") -> QAPair:
    return QAPair(
        pair_id=pid,
        question=question,
        answer=answer,
        qtype=qtype,
        difficulty="基础",
        style="formal",
        gold={g: 1 for g in gold},
        context_ids=[*gold, *context],
        template_id="t",
    )


@pytest.fixture(scope="module")
def snapshot(corpus_dir) -> GraphSnapshot:
    return build_snapshot(corpus_dir)


@pytest.fixture(scope="module")
def scorer() -> QualityScorer:
    return QualityScorer(Verifier())


def test_faithful_answers_go_to_sft(snapshot, scorer):
    pairs = [
        qa("a", "存货应当按照什么进行初始计量？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"], ["CAS-1-存货/第六条"]),
        qa(
            "b",
            "纳税人销售货物的增值税税率是多少？",
            f"纳税人销售货物、劳务、有形动产租赁服务或者进口货物，除本条第二项、第四项、第五项另有规定外，税率为17%[[{VAT}/第二条]]。",
            [f"{VAT}/第二条"],
        ),
        qa(
            "c",
            "存货确认需要满足哪些条件？",
            "存货同时满足两个条件才能予以确认：与该存货有关的经济利益很可能流入企业[[CAS-1-存货/第四条]]；"
            "该存货的成本能够可靠地计量[[CAS-1-存货/第四条]]。",
            ["CAS-1-存货/第四条"],
            ["CAS-1-存货/第三条"],
            "condition",
        ),
    ]
    scorer.score(pairs, snapshot)
    for p in pairs:
        assert p.band == "sft", (p.pair_id, p.scores, p.reject_reason)
        assert p.scores["verified"] is True and p.scores["unsupported"] == []
        assert p.scores["similarity"] >= 0.8 and p.scores["total"] >= 0.8
        assert p.scores["answerable_ok"] and p.scores["length_ok"] and p.scores["duplicate_of"] is None
        assert p.reject_reason is None


def test_wrong_rate_invented_id_and_uncontexted_citation_are_dropped(snapshot, scorer):
    wrong_rate = qa(
        "rate",
        "纳税人销售货物的增值税税率是多少？",
        f"纳税人销售货物、劳务、有形动产租赁服务或者进口货物，税率为15%[[{VAT}/第二条]]。",
        [f"{VAT}/第二条"],
    )
    invented = qa("id", "存货应当按照什么进行初始计量？", "存货应当按照成本进行初始计量[[CAS-1-存货/第九十九条]]。", ["CAS-1-存货/第五条"])
    # a real clause of the snapshot, but not in the prompt: the model could not have seen it
    outside = qa("ctx", "存货的采购成本包括什么？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第六条"])
    pairs = [wrong_rate, invented, outside]
    scorer.score(pairs, snapshot)
    assert all(p.band == "drop" for p in pairs)
    assert wrong_rate.reject_reason == "not_verified:rate"
    assert wrong_rate.scores["unsupported"] == ["rate"] and wrong_rate.scores["verified"] is False
    assert invented.reject_reason.startswith("not_verified:") and "citation" in invented.reject_reason
    assert "citation" in outside.scores["unsupported"]


def test_verified_but_weak_answers_become_grpo_prompts(snapshot):
    strict = QualityScorer(Verifier(), QualityConfig(similarity_threshold=0.95))
    paraphrased = qa(
        "para",
        "存货成本由哪几部分组成？",
        "存货应当按成本来初始计量，成本由采购成本、加工成本以及其他成本构成[[CAS-1-存货/第五条]]。",
        ["CAS-1-存货/第五条"],
    )
    short_q = qa("short", "存货？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"])
    pairs = [paraphrased, short_q]
    strict.score(pairs, snapshot)
    assert paraphrased.scores["verified"] is True
    assert 0.5 < paraphrased.scores["similarity"] < 0.95
    assert paraphrased.band == "grpo" and paraphrased.reject_reason is None
    assert short_q.scores["length_ok"] is False and short_q.scores["verified"] is True
    assert short_q.band == "grpo"


def test_near_duplicates_with_the_same_gold_are_caught(snapshot, scorer):
    answer = "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。"
    first = qa("d1", "存货应当按照什么进行初始计量？", answer, ["CAS-1-存货/第五条"])
    dup = qa("d2", "存货应当按照什么来进行初始计量？", answer, ["CAS-1-存货/第五条"])
    other_gold = qa(
        "d3", "存货应当按照什么进行初始计量？", "存货成本包括采购成本、加工成本和其他成本[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条", "CAS-1-存货/第六条"]
    )
    different = qa("d4", "存货成本包括哪几部分？", answer, ["CAS-1-存货/第五条"])
    pairs = [first, dup, other_gold, different]
    scorer.score(pairs, snapshot)
    assert first.band == "sft" and first.scores["duplicate_of"] is None
    assert dup.band == "drop" and dup.reject_reason == "near_duplicate" and dup.scores["duplicate_of"] == "d1"
    assert other_gold.scores["duplicate_of"] is None
    assert different.scores["duplicate_of"] is None


def test_refusals_are_right_only_for_unanswerable_questions(snapshot, scorer):
    good = qa("u1", "公司食堂的菜单由谁决定？", REFUSAL_ANSWER, [], ["CAS-1-存货/第五条"], "unanswerable")
    invented = qa("u2", "公司年会预算是多少？", "年会预算为5万元[[CAS-1-存货/第五条]]。", [], ["CAS-1-存货/第五条"], "unanswerable")
    refused = qa("u3", "存货应当按照什么进行初始计量？", REFUSAL_ANSWER, ["CAS-1-存货/第五条"])
    pairs = [good, invented, refused]
    scorer.score(pairs, snapshot)
    assert good.band == "sft" and good.scores["answerable_ok"] is True
    assert invented.band == "drop" and invented.reject_reason == "refusal_mismatch"
    assert refused.band == "drop" and refused.reject_reason == "refusal_mismatch"


def test_variants_inherit_the_parent_verdict_but_not_its_duplicate_status(snapshot, scorer):
    good = qa("g", "存货应当按照什么进行初始计量？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"])
    bad = qa(
        "b",
        "纳税人销售货物的增值税税率是多少？",
        f"纳税人销售货物、劳务、有形动产租赁服务或者进口货物，税率为15%[[{VAT}/第二条]]。",
        [f"{VAT}/第二条"],
    )
    pairs = augment([good, bad], AugmentConfig(punct_ratio=1.0, paraphrases_per_question=1, seed=0))
    assert len(pairs) == 6
    scorer.score(pairs, snapshot)
    for p in pairs:
        parent = good if (p.parent_id or p.pair_id) == "g" else bad
        assert p.scores["verified"] == parent.scores["verified"]
        assert p.scores["similarity"] == parent.scores["similarity"]
        assert p.band == parent.band
        assert p.scores["duplicate_of"] is None  # a punct variant is not a duplicate of its parent


def test_judge_scores_enter_the_total_and_can_drop(snapshot):
    from training.datagen.context import build_contexts

    def overlap_judge(pair, snap) -> float:
        """A rule-based judge: share of the question's characters found in the shown clauses."""
        clauses = "\n".join(c.text for c in build_contexts(pair, snap))
        chars = [c for c in pair.question if "\u4e00" <= c <= "\u9fff"]
        return sum(c in clauses for c in chars) / len(chars)

    judged = QualityScorer(Verifier(), QualityConfig(judge_weight=0.5, judge_min=0.6), judge=overlap_judge)
    on_topic = qa("j1", "存货应当按照什么进行初始计量？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"])
    off_topic = qa("j2", "报销差旅费要找谁审批？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"])
    judged.score([on_topic, off_topic], snapshot)
    assert on_topic.scores["judge"] > 0.8 and on_topic.band == "sft"
    assert on_topic.scores["total"] == pytest.approx(0.5 * 1.0 + 0.5 * on_topic.scores["judge"], abs=1e-3)
    assert off_topic.scores["judge"] < 0.6 and off_topic.band == "drop" and off_topic.reject_reason == "judge_low"


def test_similarity_measure_separates_copy_from_invention(snapshot):
    text = snapshot.clauses["CAS-1-存货/第五条"].text
    assert answer_similarity("存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", [text]) == 1.0
    assert answer_similarity("差旅费报销须经部门负责人审批[[CAS-1-存货/第五条]]。", [text]) < 0.2


def test_config_validates_band_order():
    with pytest.raises(ValidationError):
        QualityConfig(sft_min=0.5, grpo_min=0.8)


def test_a_question_that_fits_many_clauses_becomes_a_grpo_prompt(snapshot):
    """Same verified answer; the vague question fits many clauses (ambiguity), the specific one few."""
    answer = "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。"
    specific = qa("s", "存货应当按照什么进行初始计量？", answer, ["CAS-1-存货/第五条"])
    vague = qa("v", "企业的存货有什么规定？", answer, ["CAS-1-存货/第五条"])
    QualityScorer(Verifier(), QualityConfig(ambiguity_max=4)).score([specific, vague], snapshot)
    assert specific.scores["verified"] and vague.scores["verified"]
    assert specific.scores["ambiguity"] <= 4 and specific.band == "sft"
    assert vague.scores["ambiguity"] > 4 and vague.band == "grpo", vague.scores
