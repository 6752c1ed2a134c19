"""Document and node ids: readable, stable under spelling variants, never colliding across kinds."""

from __future__ import annotations

import pytest

from ingest.ids import chunk_id, clause_id, doc_id_for_title, normalize_title, section_id, table_id


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("企业会计准则第14号——收入（2017年修订）", "CAS-14"),
        ("《企业会计准则第14号——收入》应用指南（2018）", "CAS-14-应用指南"),
        ("企业会计准则第1号——存货（2006）", "CAS-1"),
        ("企业会计准则第 21 号——租赁（2018年修订）", "CAS-21"),
        ("企业会计准则第二十二号——金融工具确认和计量", "CAS-22"),
        ("企业会计准则——基本准则", "CAS-基本准则"),
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
        "《企业会计准则第22号》",
    ],
)
def test_references_to_a_standard_normalize_alike(reference: str) -> None:
    assert normalize_title(reference) == normalize_title(
        "企业会计准则第22号——金融工具确认和计量（2017年修订）"
    )
    assert doc_id_for_title(reference) == "CAS-22"


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
    assert clause_id("CAS-14", "第五条") == "CAS-14/第五条"
    assert section_id("CAS-21", ["第二章", "第一节"]) == "CAS-21#第二章/第一节"
    assert table_id("CAS-14", 3) == "CAS-14/表3"
    assert chunk_id("CAS-14/第五条", 1) == "CAS-14/第五条:1"
    # a synthetic clause and section may share a number (序言); their ids still differ
    assert section_id("X", ["序言"]) != clause_id("X", "序言")
    with pytest.raises(ValueError):
        section_id("X", [])
