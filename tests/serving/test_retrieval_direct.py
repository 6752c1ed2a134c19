"""Named standards reach the right documents when two standards share a number (issue 13)."""

from __future__ import annotations

from serving.retrieval.direct import AliasTable, DirectResolver

DOCS = [
    ("CAS-25-保险合同", "企业会计准则第25号——保险合同"),
    ("CAS-25-原保险合同", "企业会计准则第25号——原保险合同（2006）"),
    ("CAS-26-再保险合同", "企业会计准则第26号——再保险合同（2006）"),
    ("CAS-14-收入", "企业会计准则第14号——收入（2017年修订）"),
]
ARTICLES = DirectResolver.article_map(
    [(f"{doc_id}/第三条", doc_id, "第三条") for doc_id, _ in DOCS],
)


def test_a_number_shared_by_two_standards_names_both_and_a_subject_names_one() -> None:
    resolver = DirectResolver(AliasTable(DOCS), ARTICLES)
    both = resolver.resolve("企业会计准则第25号第三条怎么规定")
    assert both.doc_ids == ["CAS-25-保险合同", "CAS-25-原保险合同"]
    assert both.clause_ids == ["CAS-25-保险合同/第三条", "CAS-25-原保险合同/第三条"]
    assert resolver.resolve("原保险合同准则第三条").clause_ids == ["CAS-25-原保险合同/第三条"]
    assert resolver.resolve("保险合同准则第三条").clause_ids == ["CAS-25-保险合同/第三条"]
    assert resolver.resolve("《企业会计准则第14号》第三条").clause_ids == ["CAS-14-收入/第三条"]
    assert resolver.resolve("收入准则第三条").clause_ids == ["CAS-14-收入/第三条"]
