"""Document and node ids: readable, stable under spelling variants, never colliding across kinds."""

from __future__ import annotations

import pytest

from ingest.ids import chunk_id, clause_id, doc_id_for_title, normalize_title, section_id, table_id


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("企业会计准则第14号——收入（2017年修订）", "CAS-14-收入"),
        ("《企业会计准则第14号——收入》应用指南（2018）", "CAS-14-收入-应用指南"),
        ("企业会计准则第14号——收入应用指南", "CAS-14-收入-应用指南"),
        ("企业会计准则第1号——存货（2006）", "CAS-1-存货"),
        ("企业会计准则第 21 号——租赁（2018年修订）", "CAS-21-租赁"),
        ("企业会计准则第二十二号——金融工具确认和计量", "CAS-22-金融工具确认和计量"),
        ("企业会计准则第25号——保险合同", "CAS-25-保险合同"),
        ("企业会计准则第25号——原保险合同（2006）", "CAS-25-原保险合同"),
        (
            "企业会计准则第28号——会计政策、会计估计变更和差错更正（2006）",
            "CAS-28-会计政策会计估计变更和差错更正",
        ),
        ("《企业会计准则第22号》", "CAS-22"),
        ("企业会计准则——基本准则", "CAS-基本准则"),
        ("关于修订印发《企业会计准则第14号——收入》的通知", "关于修订印发企业会计准则第14号收入的通知"),
        ("中华人民共和国会计法", "会计法"),
        ("会计法", "会计法"),
        ("会计法(2024-06-28)", "会计法"),
        ("《中华人民共和国建筑法》", "建筑法"),
        (
            "最高人民法院关于审理建设工程施工合同纠纷案件适用法律问题的解释（一）(2020-12-29)",
            "最高人民法院关于审理建设工程施工合同纠纷案件适用法律问题的解释一",
        ),
        ("broker-report-text-layer", "BROKER-REPORT-TEXT-LAYER"),
        ("MinerU supports DOCX document parsing now", "MINERU-SUPPORTS-DOCX-DOCUMENT-PARSING-NOW"),
        ("2023年 annual report 报告", "2023年ANNUAL-REPORT报告"),
    ],
)
def test_doc_id_for_title(title: str, expected: str) -> None:
    assert doc_id_for_title(title) == expected


@pytest.mark.parametrize(
    "reference",
    [
        "《企业会计准则第22号——金融工具确认和计量》",
        "企业会计准则第22号—金融工具确认和计量",
        "企业会计准则第22号－－金融工具确认和计量",
        "企业会计准则第22号--金融工具确认和计量",
        "《企业会计准则第 22 号——金融工具确认和计量》",
        "企业会计准则第二十二号——金融工具确认和计量（2017年修订）",
    ],
)
def test_references_to_a_standard_normalize_alike(reference: str) -> None:
    assert normalize_title(reference) == normalize_title(
        "企业会计准则第22号——金融工具确认和计量（2017年修订）"
    )
    assert doc_id_for_title(reference) == "CAS-22-金融工具确认和计量"


def test_a_reference_without_subject_shares_the_title_key_but_not_the_id() -> None:
    # references resolve 《企业会计准则第22号》 through the title key (kg.references)
    assert normalize_title("《企业会计准则第22号》") == normalize_title(
        "企业会计准则第22号——金融工具确认和计量"
    )
    assert doc_id_for_title("《企业会计准则第22号》") == "CAS-22"


def test_standards_sharing_a_number_get_distinct_ids_and_revisions_keep_theirs(corpus_dir) -> None:
    titles = [p.stem for p in sorted((corpus_dir / "cas-all").glob("*.md"))]
    ids = [doc_id_for_title(t) for t in titles]
    assert len(set(ids)) == len(ids) == 47
    assert doc_id_for_title("企业会计准则第25号——保险合同") != doc_id_for_title(
        "企业会计准则第25号——原保险合同（2006）"
    )
    # a revision of the same standard is a new version of the same document
    assert doc_id_for_title("企业会计准则第14号——收入（2006）") == doc_id_for_title(
        "企业会计准则第14号——收入（2017年修订）"
    )


def test_normalize_title_keeps_what_names_a_different_document() -> None:
    standard = normalize_title("企业会计准则第14号——收入（2017年修订）")
    guide = normalize_title("《企业会计准则第 14 号——收入》应用指南（2018）")
    assert standard != guide and guide.endswith("应用指南")
    assert normalize_title("《中华人民共和国会计法》") == normalize_title("会计法（2024-06-28）") == "会计法"
    # the (一) of a numbered interpretation is part of the title, not a version
    assert normalize_title("某某解释（一）") != normalize_title("某某解释（二）")
    assert normalize_title("") == ""


def test_degenerate_and_long_titles_still_get_stable_unique_ids() -> None:
    assert doc_id_for_title("《》") == doc_id_for_title("《》")
    assert doc_id_for_title("《》").startswith("DOC-")
    assert doc_id_for_title("") != doc_id_for_title("《》")
    long_a, long_b = "关于" + "很长的标题" * 30 + "甲", "关于" + "很长的标题" * 30 + "乙"
    assert len(doc_id_for_title(long_a)) <= 80
    assert doc_id_for_title(long_a) != doc_id_for_title(long_b)
    assert "/" not in doc_id_for_title("a/b 标题") and "#" not in doc_id_for_title("a#b")


def test_node_ids_are_readable_and_kinds_never_collide() -> None:
    assert clause_id("CAS-14-收入", "第五条") == "CAS-14-收入/第五条"
    assert section_id("CAS-21-租赁", ["第二章", "第一节"]) == "CAS-21-租赁#第二章/第一节"
    assert table_id("CAS-14-收入", 3) == "CAS-14-收入/表3"
    assert chunk_id("CAS-14-收入/第五条", 1) == "CAS-14-收入/第五条:1"
    # a synthetic clause and section may share a number (序言); their ids still differ
    assert section_id("X", ["序言"]) != clause_id("X", "序言")
    with pytest.raises(ValueError):
        section_id("X", [])
