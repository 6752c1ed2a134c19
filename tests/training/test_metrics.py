"""Evaluation metrics on hand-written Chinese pairs whose scores are known in advance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kg.verifier import Verifier
from training.evaluate import verify_record
from training.metrics import (
    citation_score,
    corpus_bleu,
    key_fact_score,
    key_facts,
    rouge_l,
    sentence_bleu,
    token_f1,
    tokenize_zh,
)

FAPIAO = "laws/发票管理办法(2023-07-20).md"
VAT = "laws/增值税暂行条例(2017-11-19).md"
_ARTICLE = re.compile(r"^第[一二三四五六七八九十百零〇]+条")


def read_context(path: Path, doc_id: str, number: str) -> dict:
    """One 条 of a corpus Markdown file as a chat record's context entry (its lines up to the next 条)."""
    lines = [
        ln.replace("**", "").strip(" \u3000\ufeff") for ln in path.read_text(encoding="utf-8").splitlines()
    ]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(number))
    body = [lines[start]]
    for ln in lines[start + 1 :]:
        if _ARTICLE.match(ln) or ln.startswith("#"):
            break
        if ln:
            body.append(ln)
    return {
        "clause_id": f"{doc_id}/{number}",
        "version": 1,
        "doc_id": doc_id,
        "doc_title": lines[0].lstrip("# ").strip(),
        "number": number,
        "text": "\n".join(body),
        "section_path": [],
        "triples": [],
    }


# --- token F1, BLEU, ROUGE-L ------------------------------------------------------------------


def test_tokens_drop_markers_and_punctuation():
    assert tokenize_zh("征收率为3%[[VAT-REG/第十二条]]。") == ["征收率", "为", "3%"]


def test_token_f1_exact_values():
    # identical up to the marker and the full stop
    assert (
        token_f1("小规模纳税人增值税征收率为3%[[VAT-REG/第十二条]]。", "小规模纳税人增值税征收率为3%。")
        == 1.0
    )
    # pred [征收率, 为, 3%] vs ref [增值税, 征收率, 为, 3%]: P = 1, R = 3/4 -> F1 = 6/7
    assert token_f1("征收率为3%", "增值税征收率为3%") == pytest.approx(6 / 7)
    # repeated words count as often as both sides have them: pred [存货, 存货], ref [存货] -> P 1/2, R 1
    assert token_f1("存货，存货", "存货") == pytest.approx(2 / 3)
    assert token_f1("会计档案", "增值税") == 0.0
    assert token_f1("", "增值税") == 0.0
    assert token_f1("。", "") == 1.0


def test_bleu_and_rouge_agree_on_identity_and_order():
    ref = "纳税人进口货物，应当自海关填发海关进口增值税专用缴款书之日起15日内缴纳税款。"
    assert sentence_bleu(ref + "[[VAT-REG/第二十四条]]", ref) == pytest.approx(100.0)
    assert corpus_bleu([ref, "存货"], [ref, "存货"]) == pytest.approx(100.0)
    near = "纳税人进口货物，应当在15日内缴纳税款。"
    assert 0 < sentence_bleu(near, ref) < 100
    assert corpus_bleu([near], [ref]) < 100
    assert rouge_l(ref, ref) == pytest.approx(1.0)
    # LCS over words: pred [征收率, 为, 3%] is a subsequence of ref [增值税, 征收率, 为, 3%] -> F = 6/7
    assert rouge_l("征收率为3%", "增值税征收率为3%") == pytest.approx(6 / 7, abs=1e-6)
    assert rouge_l("", ref) == 0.0


# --- key facts ----------------------------------------------------------------------------------


def test_key_facts_are_normalized_and_ignore_citation_markers():
    assert key_facts("罚款五百元，并于二十日内缴纳[[X/第五条]]。") == ["500元", "20日"]
    assert key_facts("依照第二十二条，税率为百分之十七") == ["第22条", "17%"]


def test_key_fact_recall_matches_chinese_and_arabic_numerals():
    score = key_fact_score(
        "处500元罚款，20天内缴纳，依照第22条[[X/第五条]]。", "处五百元罚款，二十日内缴纳，依照第二十二条。"
    )
    assert score.facts == ["500元", "20日", "第22条"]
    assert score.recall == 1.0
    half = key_fact_score("处五百元罚款。", "处五百元罚款，二十日内缴纳。")
    assert half.recall == 0.5 and half.missing == ["20日"]
    wrong = key_fact_score("处600元罚款。", "处五百元罚款。")
    assert wrong.recall == 0.0
    assert key_fact_score("存货按成本计量。", "存货应当按照成本进行初始计量。").recall is None


# --- citations ----------------------------------------------------------------------------------


def test_citation_precision_and_recall_against_gold():
    pred = "甲[[A/第一条]]。乙[[X/第九条]]。丙[[A/第一条]]。"
    score = citation_score(pred, ["A/第一条", "B/第二条"])
    assert score.cited == ["A/第一条", "X/第九条"]  # the repeat counts once
    assert (score.precision, score.recall) == (0.5, 0.5)
    assert score.f1 == 0.5
    full = citation_score("甲[[A/第一条]][[B/第二条]]。", ["A/第一条", "B/第二条"])
    assert (full.precision, full.recall, full.f1) == (1.0, 1.0, 1.0)
    silent = citation_score("甲[A/第一条]。", ["A/第一条"])  # malformed: not a citation
    assert (silent.cited, silent.precision, silent.recall) == ([], 0.0, 0.0)


# --- hallucination against a real clause --------------------------------------------------------


def test_a_wrong_amount_is_an_unsupported_atom(corpus_dir):
    ctx = read_context(corpus_dir / FAPIAO, "FPGL", "第三十五条")
    assert "5万元以下的罚款" in ctx["text"]
    record = {"contexts": [ctx], "gold_clause_ids": [ctx["clause_id"]], "answerable": True}
    verifier = Verifier()
    right = verify_record(
        verifier, "虚开金额在1万元以下的，可以并处5万元以下的罚款[[FPGL/第三十五条]]。", record
    )
    assert right.verified and not right.unsupported
    wrong = verify_record(
        verifier, "虚开金额在1万元以下的，可以并处8万元以下的罚款[[FPGL/第三十五条]]。", record
    )
    assert not wrong.verified
    assert [(a.kind, a.normalized) for a in wrong.unsupported] == [("amount", "80000元")]
    # citing a clause that is not among the record's contexts is flagged too
    invented = verify_record(verifier, "可以并处5万元以下的罚款[[FPGL/第九十条]]。", record)
    assert any(a.kind == "citation" for a in invented.unsupported)


def test_rate_answer_against_the_vat_clause(corpus_dir):
    ctx = read_context(corpus_dir / VAT, "VAT-REG", "第十二条")
    record = {"contexts": [ctx]}
    verifier = Verifier()
    assert verify_record(verifier, "小规模纳税人增值税征收率为3%[[VAT-REG/第十二条]]。", record).verified
    bad = verify_record(verifier, "小规模纳税人增值税征收率为百分之五[[VAT-REG/第十二条]]。", record)
    assert [a.normalized for a in bad.unsupported] == ["5%"]
