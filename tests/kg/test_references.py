"""Cross references of real clauses (会计法, CAS-14-收入, 增值税暂行条例, the construction interpretation)."""

from __future__ import annotations

from pathlib import Path

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.references import (
    ClauseIndex,
    DocumentTarget,
    clause_references,
    find_references,
    remember_document,
    resolve_documents,
)


def _clause(doc: str, number: str, ordinal: int, text: str) -> ClauseNode:
    return ClauseNode(f"{doc}/{number}", number, ordinal, text, 1, 1, f"{doc}#第一章", "0" * 64)


def _tree(doc: str, title: str, clauses: list[ClauseNode]) -> DocumentTree:
    section = SectionNode(f"{doc}#第一章", "第一章", "总则", 1, 1, None)
    return DocumentTree(doc, title, "md", Path(f"{title}.md"), "0" * 64, 1, 0, [section], clauses, [])


ACCOUNTING_LAW = _tree(
    "会计法",
    "中华人民共和国会计法",
    [
        _clause("会计法", "第九条", 9, "第九条 各单位必须根据实际发生的经济业务事项进行会计核算。"),
        _clause("会计法", "第十条", 10, "第十条 下列经济业务事项，应当办理会计手续，进行会计核算："),
        _clause(
            "会计法",
            "第十四条",
            14,
            "第十四条 会计凭证包括原始凭证和记账凭证。办理本法第十条所列的经济业务事项，必须填制或者取得原始凭证并及时送交会计机构。",
        ),
        _clause(
            "会计法",
            "第四十条",
            40,
            "第四十条 有前款所列行为之一，构成犯罪的，依法追究刑事责任。会计人员有第一款所列行为之一，"
            "情节严重的，五年内不得从事会计工作。依照前条规定办理。",
        ),
    ],
)


def _refs(
    tree: DocumentTree, number: str, known: dict[str, list[str]] | None = None
) -> list[tuple[str, str, str]]:
    index = ClauseIndex(tree)
    clause = next(c for c in tree.clauses if c.number == number)
    return [(r.target_kind, r.target_id, r.text) for r in clause_references(clause, index, known)]


def test_same_document_article_resolves_to_the_tree_clause() -> None:
    assert _refs(ACCOUNTING_LAW, "第十四条") == [("clause", "会计法/第十条", "本法第十条")]


def test_own_number_is_not_a_reference() -> None:
    assert _refs(ACCOUNTING_LAW, "第九条") == []


def test_previous_paragraph_clause_and_article() -> None:
    refs = _refs(ACCOUNTING_LAW, "第四十条")
    assert ("clause", "会计法/第四十条", "前款") in refs
    assert ("clause", "会计法/第四十条", "第一款") in refs
    assert ("clause", "会计法/第十四条", "前条") in refs


def test_arabic_reference_matches_chinese_number_in_tree() -> None:
    clause = ACCOUNTING_LAW.clauses[0]
    found = find_references("依照本法第10条和第14条的规定", clause, ClauseIndex(ACCOUNTING_LAW))
    assert [r.target_id for r in found] == ["会计法/第十条", "会计法/第十四条"]


def test_missing_article_yields_nothing() -> None:
    clause = ACCOUNTING_LAW.clauses[0]
    assert find_references("本法第九十九条", clause, ClauseIndex(ACCOUNTING_LAW)) == []


def test_titled_documents_resolve_by_title_even_when_unknown() -> None:
    cas14 = _tree(
        "CAS-14-收入",
        "企业会计准则第14号——收入（2017年修订）",
        [
            _clause(
                "CAS-14-收入",
                "第三条",
                3,
                "第三条 本准则适用于所有与客户之间的合同，但下列各项除外：由《企业会计准则第 22 号——金融工具确认和计量》"
                "规范的金融工具，适用《中华人民共和国会计法》第十条。",
            )
        ],
    )
    refs = _refs(cas14, "第三条")
    assert ("document", "CAS-22-金融工具确认和计量", "《企业会计准则第 22 号——金融工具确认和计量》") in refs
    assert ("clause", "会计法/第十条", "《中华人民共和国会计法》第十条") in refs


def test_known_documents_win_over_the_derived_id() -> None:
    known = {"会计法": ["ACCT-LAW-2024"]}
    assert resolve_documents("会计法", known) == DocumentTarget(("ACCT-LAW-2024",))
    assert resolve_documents("中华人民共和国会计法", known) == DocumentTarget(("ACCT-LAW-2024",))
    unknown = resolve_documents("企业会计准则第22号——金融工具确认和计量")
    assert unknown == DocumentTarget(("CAS-22-金融工具确认和计量",), "企业会计准则第22号")


CAS25 = {
    "CAS-25-保险合同": "企业会计准则第25号——保险合同",
    "CAS-25-原保险合同": "企业会计准则第25号——原保险合同（2006）",
}


def _known(documents: dict[str, str]) -> dict[str, list[str]]:
    known: dict[str, list[str]] = {}
    for doc_id, title in documents.items():
        remember_document(known, doc_id, title)
    return known


def test_a_number_shared_by_two_standards_resolves_to_both() -> None:
    known = _known({**CAS25, "CAS-14-收入": "企业会计准则第14号——收入（2017年修订）"})
    both = resolve_documents("企业会计准则第25号", known)
    assert set(both.doc_ids) == set(CAS25) and both.title_key is None
    assert resolve_documents("企业会计准则第25号——原保险合同", known).doc_ids == ("CAS-25-原保险合同",)
    assert resolve_documents("企业会计准则第14号", known).doc_ids == ("CAS-14-收入",)
    # a subject abbreviated differently still finds the standard by its number
    assert resolve_documents("企业会计准则第14号——收入准则", known).doc_ids == ("CAS-14-收入",)

    law = _tree(
        "会计法",
        "中华人民共和国会计法",
        [_clause("会计法", "第一条", 1, "第一条 依照《企业会计准则第25号》第三条。")],
    )
    refs = _refs(law, "第一条", known)
    assert sorted(r[1] for r in refs) == ["CAS-25-保险合同/第三条", "CAS-25-原保险合同/第三条"]


def test_unknown_standards_keep_the_title_key_for_the_writer() -> None:
    law = _tree(
        "会计法",
        "中华人民共和国会计法",
        [_clause("会计法", "第一条", 1, "第一条 适用《企业会计准则第25号》第三条。")],
    )
    (ref,) = clause_references(law.clauses[0], ClauseIndex(law), {})
    assert (ref.target_id, ref.title_key) == ("CAS-25/第三条", "企业会计准则第25号")


def test_a_title_naming_the_own_document_stays_inside_it() -> None:
    cas14 = _tree(
        "CAS-14-收入",
        "企业会计准则第14号——收入（2017年修订）",
        [
            _clause("CAS-14-收入", "第五条", 5, "第五条 合同同时满足下列条件的，企业应当确认收入。"),
            _clause("CAS-14-收入", "第六条", 6, "第六条 符合《企业会计准则第14号》第五条规定的合同。"),
        ],
    )
    assert _refs(cas14, "第六条") == [("clause", "CAS-14-收入/第五条", "《企业会计准则第14号》第五条")]


def test_vat_regulation_internal_article_and_item_references() -> None:
    vat = _tree(
        "增值税暂行条例",
        "中华人民共和国增值税暂行条例",
        [
            _clause(
                "增值税暂行条例",
                "第二条",
                2,
                "第二条 增值税税率：(一)纳税人销售货物，除本条第二项、第四项另有规定外，税率为17%。",
            ),
            _clause(
                "增值税暂行条例",
                "第四条",
                4,
                "第四条 除本条例第十一条规定外，纳税人销售货物的应纳税额为当期销项税额抵扣当期进项税额后的余额。",
            ),
            _clause(
                "增值税暂行条例",
                "第十一条",
                11,
                "第十一条 小规模纳税人发生应税销售行为，实行按照销售额和征收率计算应纳税额的简易办法。",
            ),
        ],
    )
    assert _refs(vat, "第二条") == [("clause", "增值税暂行条例/第二条", "本条第二项")]
    assert _refs(vat, "第四条") == [("clause", "增值税暂行条例/第十一条", "本条例第十一条")]


def test_unbracketed_code_and_its_chain() -> None:
    interp = _tree(
        "解释一",
        "最高人民法院关于审理建设工程施工合同纠纷案件适用法律问题的解释（一）",
        [
            _clause(
                "解释一",
                "第一条",
                1,
                "第一条 建设工程施工合同具有下列情形之一的，应当依据民法典第一百五十三条第一款及第七百九十一条第二款、"
                "第三款的规定，认定无效：",
            )
        ],
    )
    refs = _refs(interp, "第一条")
    assert [r[1] for r in refs] == ["民法典/第一百五十三条", "民法典/第七百九十一条"]
