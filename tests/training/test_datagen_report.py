"""The dataset report against hand counts on a small snapshot of real corpus clauses.

Bands and splits are set by hand here (the report only counts), so every expected number below
was counted by reading the pairs: coverage must count only kept pairs, triples must be covered by
a stated object or a named triple, rejections must add generation failures and dropped pairs.
"""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from kg.prompting import REFUSAL_ANSWER
from training.datagen.report import build_report
from training.datagen.types import GraphSnapshot, QAPair, Rejection, SourceClause, SourceTriple

_ARTICLE = re.compile(r"^[\s\u3000]*(第[一二三四五六七八九十百零]+条)\s*", re.M)
CAS = "standards/企业会计准则第1号——存货（2006）.md"
VAT = "laws/增值税暂行条例(2017-11-19).md"


def clause_texts(corpus_dir, name: str) -> dict[str, str]:
    text = (corpus_dir / name).read_text(encoding="utf-8")
    heads = list(_ARTICLE.finditer(text))
    return {
        m.group(1): m.group(1) + re.sub(r"\s+", "", text[m.end() : nxt.start() if nxt else len(text)])
        for m, nxt in zip(heads, [*heads[1:], None], strict=True)
    }


@pytest.fixture(scope="module")
def snapshot(corpus_dir) -> GraphSnapshot:
    cas, vat = clause_texts(corpus_dir, CAS), clause_texts(corpus_dir, VAT)
    triples = {
        "第四条": (SourceTriple("存货", "确认条件", "成本能够可靠地计量"),),
        "第五条": (
            SourceTriple("存货", "初始计量", "成本"),
            SourceTriple("存货成本", "包括", "采购成本、加工成本和其他成本"),
        ),
        "第六条": (SourceTriple("存货的采购成本", "包括", "购买价款"),),
    }
    clauses = {
        f"CAS-1-存货/{n}": SourceClause(f"CAS-1-存货/{n}", 1, "CAS-1-存货", "企业会计准则第1号——存货（2006）", n, cas[n], triples=triples.get(n, ()))
        for n in ("第三条", "第四条", "第五条", "第六条")
    }
    assert "17%" in vat["第二条"] and "11%" in vat["第二条"]
    clauses["VAT/第二条"] = SourceClause(
        "VAT/第二条",
        1,
        "VAT",
        "中华人民共和国增值税暂行条例",
        "第二条",
        vat["第二条"],
        triples=(SourceTriple("税率", "比例", "17%"), SourceTriple("税率", "比例", "11%")),
    )
    return GraphSnapshot(graph_version=4, clauses=clauses, tables=(), outlines={})


def qa(pid, question, answer, gold, qtype, band, split, reason=None, **kw) -> QAPair:
    return QAPair(
        pair_id=pid,
        question=question,
        answer=answer,
        qtype=qtype,
        difficulty=kw.pop("difficulty", "基础"),
        style=kw.pop("style", "formal"),
        gold={g: 1 for g in gold},
        context_ids=list(gold),
        template_id="t",
        band=band,
        reject_reason=reason,
        split=split,
        **kw,
    )


@pytest.fixture(scope="module")
def report_and_dir(snapshot, tmp_path_factory):
    pairs = [
        qa("p1", "存货应当按照什么进行初始计量？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"], "fact", "sft", "train"),
        qa("p2", "增值税基本税率是多少？", "纳税人销售货物，税率为17%[[VAT/第二条]]。", ["VAT/第二条"], "fact", "grpo", "train",
           difficulty="进阶"),
        qa("p3", "存货的采购成本包括什么？", "存货的采购成本包括购买价款和500元手续费[[CAS-1-存货/第六条]]。", ["CAS-1-存货/第六条"], "fact", "drop",
           "train", "not_verified:amount"),
        qa("p4", "存货应当按照什么进行初始计量", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"], "fact", "sft",
           "test_unseen", augmentation="punct", parent_id="p1", style="everyday"),
        qa("p5", "公司食堂的菜单由谁决定？", REFUSAL_ANSWER, [], "unanswerable", "sft", "val", style="everyday"),
        qa("p6", "存货要满足什么条件才能确认？", "与该存货有关的经济利益很可能流入企业[[CAS-1-存货/第四条]]。", ["CAS-1-存货/第四条"], "condition", "grpo",
           "train", extra={"triple": {"subject": "存货", "predicate": "确认条件", "object": "成本能够可靠地计量"}}),
        qa("p7", "存货应当按照什么来进行初始计量？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。", ["CAS-1-存货/第五条"], "fact", "drop",
           "train", "near_duplicate"),
    ]  # fmt: skip
    rejections = [
        Rejection("llm_unparseable", "fact", ["CAS-1-存货/第三条"], "not JSON"),
        Rejection("no_answer", "table", ["CAS-1-存货/第三条"]),
    ]
    out = tmp_path_factory.mktemp("ds")
    report = build_report(pairs, rejections, snapshot, out, extra={"seed": 3, "pairs_per_second": 12.5})
    return report, out, pairs


def test_counts_match_hand_counts(report_and_dir):
    report, _, _ = report_and_dir
    assert report["graph_version"] == 4
    assert report["pairs"] == {"total": 7, "kept": 5, "sft": 3, "grpo": 2, "drop": 2}
    c = report["counts"]
    assert c["band"] == {"drop": 2, "grpo": 2, "sft": 3}
    assert c["qtype"] == {"condition": 1, "fact": 3, "unanswerable": 1}
    assert c["difficulty"] == {"基础": 4, "进阶": 1}
    assert c["style"] == {"everyday": 2, "formal": 3}
    assert c["document"] == {"(none)": 1, "CAS-1-存货": 3, "VAT": 1}
    assert c["split"] == {"test_unseen": 1, "train": 3, "val": 1}
    assert c["augmentation"] == {"none": 4, "punct": 1}
    assert c["qtype_by_band"]["drop"] == {"fact": 2}


def test_rejections_add_generation_failures_and_dropped_pairs(report_and_dir):
    rej = report_and_dir[0]["rejections"]
    assert rej["total"] == 4
    assert rej["by_reason"] == {"llm_unparseable": 1, "near_duplicate": 1, "no_answer": 1, "not_verified:amount": 1}
    assert rej["by_category"] == {"llm_unparseable": 1, "near_duplicate": 1, "no_answer": 1, "not_verified": 1}
    assert rej["by_qtype"] == {"fact": 3, "table": 1}


def test_coverage_counts_kept_pairs_only(report_and_dir):
    cov = report_and_dir[0]["coverage"]
    # clauses: 第五条 (p1, p4), 第四条 (p6), VAT 第二条 (p2); 第六条 only by the dropped p3; 第三条 none
    assert cov["clauses"] == {"active": 5, "covered": 3, "share": 0.6}
    # triples: 成本 (p1), 成本能够可靠地计量 (named by p6), 17% (p2); not 11%, not 购买价款 (p3 dropped)
    assert cov["triples"] == {"total": 6, "covered": 3, "share": 0.5}
    cas, vat = cov["by_document"]["CAS-1-存货"], cov["by_document"]["VAT"]
    assert (cas["clauses"], cas["clauses_covered"], cas["triples"], cas["triples_covered"]) == (4, 2, 4, 2)
    assert (vat["clauses"], vat["clauses_covered"], vat["triples"], vat["triples_covered"]) == (1, 1, 2, 1)
    assert vat["clause_share"] == 1.0 and vat["triple_share"] == 0.5


def test_punctuation_share_and_lengths(report_and_dir):
    report, _, pairs = report_and_dir
    assert report["punctuation"] == {
        "originals": 6,
        "punct_variants": 1,
        "punct_per_original": round(1 / 6, 4),
        "kept_punct_variants": 1,
        "kept_share": 0.2,
    }
    q = report["lengths"]["question"]
    assert q["sft"]["n"] == 3 and q["grpo"]["n"] == 2 and q["drop"]["n"] == 2
    assert q["sft"]["max"] == len("存货应当按照什么进行初始计量？")
    assert report["lengths"]["answer"]["sft"]["min"] == len(REFUSAL_ANSWER)
    assert report["lengths"]["answer"]["grpo"]["max"] == len("与该存货有关的经济利益很可能流入企业。")


def test_files_are_written_and_pngs_are_valid(report_and_dir):
    report, out, _ = report_and_dir
    d = out / "report"
    assert json.loads((d / "report.json").read_text(encoding="utf-8")) == json.loads(json.dumps(report))
    assert report["extra"] == {"seed": 3, "pairs_per_second": 12.5}
    md = (d / "report.md").read_text(encoding="utf-8")
    assert "3 / 5 (60.0%)" in md and "3 / 6 (50.0%)" in md and "not_verified:amount" in md
    assert set(report["figures"].values()) == {"question_lengths.png", "answer_lengths.png"}
    for name in report["figures"].values():
        data = (d / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(d / name) as img:
            img.verify()
        with Image.open(d / name) as img:
            assert img.size[0] > 300 and img.size[1] > 200


def test_empty_dataset_reports_zeros(snapshot, tmp_path):
    report = build_report([], [], snapshot, tmp_path, extra={})
    assert report["pairs"]["total"] == 0 and report["coverage"]["clauses"]["share"] == 0.0
    assert report["coverage"]["clauses"]["active"] == 5
    assert (tmp_path / "report" / "question_lengths.png").is_file()
