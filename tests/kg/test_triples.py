"""The rule extractor on hand-built trees of real clauses from the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.types import ClauseItem, ClauseNode, DocumentTree, SectionNode
from kg.triples import RuleTripleExtractor, triple_id
from kg.types import Extraction, TripleRecord


@pytest.fixture(scope="module")
def extractor() -> RuleTripleExtractor:
    return RuleTripleExtractor()


def _clause(doc: str, number: str, ordinal: int, text: str, items: list[str] | None = None) -> ClauseNode:
    markers = "一二三四五六七八九十"
    clause_items = [ClauseItem(f"（{markers[i]}）", t, 1) for i, t in enumerate(items or [])]
    return ClauseNode(f"{doc}/{number}", number, ordinal, text, 1, 1, f"{doc}#第二章", "0" * 64, clause_items)


def _tree(doc: str, title: str, clauses: list[ClauseNode], section: str = "确认") -> DocumentTree:
    sec = SectionNode(f"{doc}#第二章", "第二章", section, 1, 1, None)
    return DocumentTree(doc, title, "md", Path(f"{title}.md"), "0" * 64, 1, 0, [sec], clauses, [])


def _find(
    ex: Extraction, predicate: str, subject: str | None = None, obj: str | None = None
) -> list[TripleRecord]:
    return [
        t
        for t in ex.triples
        if t.predicate == predicate
        and (subject is None or t.subject == subject)
        and (obj is None or t.object == obj)
    ]


CAS14_ITEMS = [
    "合同各方已批准该合同并承诺将履行各自义务；",
    "该合同明确了合同各方与所转让商品或提供劳务（以下简称“转让商品”）相关的权利和义务；",
    "该合同有明确的与所转让商品相关的支付条款；",
    "该合同具有商业实质，即履行该合同将改变企业未来现金流量的风险、时间分布或金额；",
    "企业因向客户转让商品而有权取得的对价很可能收回。",
]
CAS14 = _tree(
    "CAS-14-收入",
    "企业会计准则第14号——收入（2017年修订）",
    [
        _clause(
            "CAS-14-收入",
            "第二条",
            2,
            "第二条 收入，是指企业在日常活动中形成的、会导致所有者权益增加的、与所有者投入资本无关的经济利益的总流入。",
        ),
        _clause(
            "CAS-14-收入",
            "第三条",
            3,
            "第三条 本准则适用于所有与客户之间的合同。\n本准则所称客户，是指与企业订立合同以向该企业购买其日常活动产出的商品"
            "或服务并支付对价的一方。",
        ),
        _clause(
            "CAS-14-收入",
            "第四条",
            4,
            "第四条 企业应当在履行了合同中的履约义务，即在客户取得相关商品控制权时确认收入。",
        ),
        _clause(
            "CAS-14-收入",
            "第五条",
            5,
            "第五条 当企业与客户之间的合同同时满足下列条件时，企业应当在客户取得相关商品控制权时确认收入：\n"
            + "\n".join(f"（{'一二三四五'[i]}）{t}" for i, t in enumerate(CAS14_ITEMS))
            + "\n在合同开始日即满足前款条件的合同，企业在后续期间无需对其进行重新评估。",
        ),
        _clause(
            "CAS-14-收入",
            "第六条",
            6,
            "第六条 在合同开始日不符合本准则第五条规定的合同，企业应当对其进行持续评估，并在其满足本准则第五条规定时"
            "按照该条的规定加以会计处理。",
        ),
    ],
)


# The layout of ingest.structure: paragraphs (款) at level 1, their numbered items (项) at level 2.
CAS14.clauses[3].items = [
    ClauseItem(
        "第一款", "当企业与客户之间的合同同时满足下列条件时，企业应当在客户取得相关商品控制权时确认收入：", 1
    ),
    *[ClauseItem(f"（{'一二三四五'[i]}）", t, 2) for i, t in enumerate(CAS14_ITEMS)],
    ClauseItem("第二款", "在合同开始日即满足前款条件的合同，企业在后续期间无需对其进行重新评估。", 1),
]


@pytest.fixture(scope="module")
def cas14(extractor: RuleTripleExtractor) -> Extraction:
    return extractor.extract(CAS14, {})


def test_definitions_become_concepts(cas14: Extraction) -> None:
    (income,) = _find(cas14, "定义", "收入")
    assert income.object.startswith("企业在日常活动中形成的")
    assert income.clause_id == "CAS-14-收入/第二条"
    assert income.subject_entity == "concept:收入"
    (customer,) = _find(cas14, "定义", "客户")  # 本准则所称客户，是指…
    assert customer.object.startswith("与企业订立合同")
    concept = next(e for e in cas14.entities if e.entity_id == "concept:收入")
    assert concept.type == "concept"
    # clauses that use a defined term mention its concept
    assert ("CAS-14-收入/第四条", "concept:收入") in cas14.mentions


def test_conditions_one_per_item_with_all_flag(cas14: Extraction) -> None:
    conds = sorted(_find(cas14, "条件"), key=lambda t: t.qualifiers["index"])
    assert [t.object for t in conds] == [t.rstrip("；。") for t in CAS14_ITEMS]
    assert {t.subject for t in conds} == {"企业与客户之间的合同"}
    assert all(t.qualifiers["all"] is True for t in conds)
    assert [t.qualifiers["index"] for t in conds] == [1, 2, 3, 4, 5]
    assert all(t.clause_id == "CAS-14-收入/第五条" for t in conds)


def test_obligation_of_the_enterprise(cas14: Extraction) -> None:
    (ob,) = _find(cas14, "应当", "企业", "在履行了合同中的履约义务，即在客户取得相关商品控制权时确认收入")
    assert ob.clause_id == "CAS-14-收入/第四条"
    assert ob.subject_entity == "party:企业"
    assert ob.origin == "rule" and 0.0 < ob.confidence <= 1.0
    assert ob.triple_id == triple_id(ob.clause_id, "应当", ob.subject, ob.object)
    assert any(e.entity_id == "party:企业" and e.type == "party" for e in cas14.entities)
    assert ("CAS-14-收入/第四条", "party:企业") in cas14.mentions


def test_references_go_to_references_not_triples(cas14: Extraction) -> None:
    refs = {(r.source_clause_id, r.target_kind, r.target_id) for r in cas14.references}
    assert ("CAS-14-收入/第六条", "clause", "CAS-14-收入/第五条") in refs
    assert ("CAS-14-收入/第五条", "clause", "CAS-14-收入/第五条") in refs  # 前款
    assert not _find(cas14, "引用")


def test_inventory_conditions(extractor: RuleTripleExtractor) -> None:
    items = ["与该存货有关的经济利益很可能流入企业；", "该存货的成本能够可靠地计量。"]
    tree = _tree(
        "CAS-1-存货",
        "企业会计准则第1号——存货（2006）",
        [
            _clause("CAS-1-存货", "第四条", 4, "第四条 存货同时满足下列条件的，才能予以确认：", items),
            _clause(
                "CAS-1-存货",
                "第五条",
                5,
                "第五条 存货应当按照成本进行初始计量。存货成本包括采购成本、加工成本和其他成本。",
            ),
        ],
    )
    ex = extractor.extract(tree)
    conds = _find(ex, "条件", "存货")
    assert [t.object for t in conds] == ["与该存货有关的经济利益很可能流入企业", "该存货的成本能够可靠地计量"]
    assert _find(ex, "应当", "存货", "按照成本进行初始计量")


BUILDING_LAW = _tree(
    "建筑法",
    "中华人民共和国建筑法",
    [
        _clause(
            "建筑法",
            "第九条",
            9,
            "第九条 建设单位应当自领取施工许可证之日起三个月内开工。因故不能按期开工的，应当向发证机关申请延期；"
            "延期以两次为限，每次不超过三个月。既不开工又不申请延期或者超过延期时限的，施工许可证自行废止。",
        ),
        _clause(
            "建筑法",
            "第十五条",
            15,
            "第十五条 建筑工程的发包单位与承包单位应当依法订立书面合同，明确双方的权利和义务。\n"
            "发包单位和承包单位应当全面履行合同约定的义务。不按照合同约定履行义务的，依法承担违约责任。",
        ),
    ],
    section="建筑许可",
)


@pytest.fixture(scope="module")
def building(extractor: RuleTripleExtractor) -> Extraction:
    return extractor.extract(BUILDING_LAW)


def test_construction_permit_deadline(building: Extraction) -> None:
    assert _find(building, "应当", "建设单位", "自领取施工许可证之日起三个月内开工")
    (deadline,) = _find(building, "期限", "建设单位", "3个月")
    assert deadline.qualifiers["surface"] == "三个月内"
    assert deadline.qualifiers["comparator"] == "<="
    assert deadline.subject_entity == "party:建设单位"


def test_subject_is_inherited_by_a_conditional_sentence(building: Extraction) -> None:
    (ob,) = _find(building, "应当", obj="向发证机关申请延期")
    assert ob.subject == "建设单位"
    assert ob.confidence < 0.85  # inherited, not seen in the sentence


def test_coordinated_parties_form_one_subject(building: Extraction) -> None:
    assert _find(building, "应当", "发包单位和承包单位", "全面履行合同约定的义务")
    names = {e.name for e in building.entities if e.type == "party"}
    assert {"发包单位", "承包单位", "建设单位", "发证机关"} <= names


MIGRANT_WAGES = _tree(
    "保障农民工工资支付条例",
    "保障农民工工资支付条例",
    [
        _clause(
            "保障农民工工资支付条例",
            "第二条",
            2,
            "第二条 保障农民工工资支付，适用本条例。\n本条例所称农民工，是指为用人单位提供劳动的农村居民。",
        ),
        _clause(
            "保障农民工工资支付条例",
            "第七条",
            7,
            "第七条 人力资源社会保障行政部门负责保障农民工工资支付工作的组织协调、管理指导和农民工工资支付情况的监督检查,"
            "查处有关拖欠农民工工资案件。",
        ),
        _clause(
            "保障农民工工资支付条例",
            "第二十四条",
            24,
            "第二十四条 建设单位应当向施工单位提供工程款支付担保。\n建设单位与施工总承包单位依法订立书面工程施工合同，"
            "应当约定工程款计量周期、工程款进度结算办法以及人工费用拨付周期。人工费用拨付周期不得超过1个月。",
        ),
        _clause(
            "保障农民工工资支付条例",
            "第三十条",
            30,
            "第三十条 分包单位拖欠农民工工资的，由施工总承包单位先行清偿，再依法进行追偿。",
        ),
        _clause(
            "保障农民工工资支付条例",
            "第五十四条",
            54,
            "第五十四条 有下列情形之一的，由人力资源社会保障行政部门责令限期改正；逾期不改正的，对单位处2万元以上5万元以下的"
            "罚款，对法定代表人或者主要负责人、直接负责的主管人员和其他直接责任人员处1万元以上3万元以下的罚款：",
            [
                "以实物、有价证券等形式代替货币支付农民工工资；",
                "未编制工资支付台账并依法保存，或者未向农民工提供工资清单；",
            ],
        ),
    ],
    section="工资支付形式与周期",
)


@pytest.fixture(scope="module")
def wages(extractor: RuleTripleExtractor) -> Extraction:
    return extractor.extract(MIGRANT_WAGES)


def test_regulation_definition(wages: Extraction) -> None:
    (d,) = _find(wages, "定义", "农民工")
    assert d.object == "为用人单位提供劳动的农村居民"


def test_wage_payment_cycle_limit(wages: Extraction) -> None:
    (cycle,) = _find(wages, "期限", "人工费用拨付周期", "1个月")
    assert cycle.qualifiers["comparator"] == "<="
    assert cycle.qualifiers["surface"] == "不得超过1个月"


def test_penalty_thresholds(wages: Extraction) -> None:
    thresholds = {(t.object, t.qualifiers["comparator"]) for t in _find(wages, "阈值")}
    assert {("20000元", ">="), ("50000元", "<="), ("10000元", ">="), ("30000元", "<=")} <= thresholds
    low = next(t for t in _find(wages, "阈值") if t.object == "20000元")
    assert low.qualifiers["context"] == "对单位处2万元以上5万元以下的罚款"


def test_disjunctive_conditions(wages: Extraction) -> None:
    conds = _find(wages, "条件")
    assert len(conds) == 2
    assert all(t.qualifiers["all"] is False for t in conds)
    assert conds[0].subject == "由人力资源社会保障行政部门责令限期改正"


def test_responsible_parties(wages: Extraction) -> None:
    assert _find(wages, "责任主体", "人力资源社会保障行政部门")[0].object.startswith(
        "负责保障农民工工资支付工作"
    )
    (first_payer,) = _find(wages, "责任主体", "施工总承包单位")
    assert first_payer.object == "先行清偿，再依法进行追偿"
    assert first_payer.subject_entity == "party:施工总承包单位"
    assert _find(wages, "责任主体", "人力资源社会保障行政部门", "责令限期改正")


def test_obligation_subjects_in_wage_regulation(wages: Extraction) -> None:
    assert _find(wages, "应当", "建设单位", "向施工单位提供工程款支付担保")
    (contract,) = _find(wages, "应当", obj="约定工程款计量周期、工程款进度结算办法以及人工费用拨付周期")
    assert contract.subject in {"建设单位与施工总承包单位", "施工总承包单位"}


def test_vat_rates_and_deadlines(extractor: RuleTripleExtractor) -> None:
    doc = "增值税暂行条例"
    tree = _tree(
        doc,
        "中华人民共和国增值税暂行条例",
        [
            _clause(doc, "第十二条", 12, "第十二条 小规模纳税人增值税征收率为3%，国务院另有规定的除外。"),
            _clause(
                doc,
                "第二条",
                2,
                "第二条 增值税税率：",
                ["纳税人销售货物、劳务、有形动产租赁服务或者进口货物，税率为百分之十七。"],
            ),
            _clause(
                doc,
                "第二十四条",
                24,
                "第二十四条 纳税人进口货物，应当自海关填发海关进口增值税专用缴款书之日起15日内缴纳税款。",
            ),
        ],
        section="附则",
    )
    ex = extractor.extract(tree)
    assert _find(ex, "比例", "小规模纳税人增值税征收率", "3%")
    (rate,) = _find(ex, "比例", "税率", "17%")
    assert rate.qualifiers["surface"] == "百分之十七"
    assert rate.clause_id == f"{doc}/第二条"
    (deadline,) = _find(ex, "期限", obj="15日")
    assert deadline.subject == "纳税人"
    assert _find(ex, "应当", "纳税人")


def test_adjectival_modal_is_not_an_obligation(extractor: RuleTripleExtractor) -> None:
    tree = _tree(
        "会计法",
        "中华人民共和国会计法",
        [
            _clause(
                "会计法",
                "第四十一条",
                41,
                "第四十一条 隐匿或者故意销毁依法应当保存的会计凭证的，由县级以上人民政府财政部门责令限期改正。",
            )
        ],
    )
    ex = extractor.extract(tree)
    assert not _find(ex, "应当")
    (resp,) = _find(ex, "责任主体")
    assert resp.subject == "县级以上人民政府财政部门"


def test_document_references_make_document_entities(extractor: RuleTripleExtractor) -> None:
    tree = _tree(
        "CAS-1-存货",
        "企业会计准则第1号——存货（2006）",
        [
            _clause(
                "CAS-1-存货",
                "第十条",
                10,
                "第十条 应计入存货成本的借款费用，按照《企业会计准则第17号——借款费用》处理。",
            )
        ],
    )
    ex = extractor.extract(tree, {"企业会计准则第17号": ["CAS-17-借款费用"]})
    assert [(r.target_kind, r.target_id) for r in ex.references] == [("document", "CAS-17-借款费用")]
    entity = next(e for e in ex.entities if e.type == "document")
    assert entity.entity_id == "document:CAS-17-借款费用"
    assert entity.name == "企业会计准则第17号——借款费用"
    assert ("CAS-1-存货/第十条", "document:CAS-17-借款费用") in ex.mentions


def test_extraction_is_deterministic(extractor: RuleTripleExtractor, building: Extraction) -> None:
    again = extractor.extract(BUILDING_LAW)
    assert [t.triple_id for t in again.triples] == [t.triple_id for t in building.triples]
    assert len({t.triple_id for t in again.triples}) == len(again.triples)
