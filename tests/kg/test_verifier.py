"""The answer verifier on hand-written answers against real clause texts (pure: no Neo4j).

Clause texts are copied from the public corpus (企业会计准则第14号, 保障农民工工资支付条例,
增值税暂行条例, 建筑法) plus a fictional settlement manual with amounts, rates and deadlines.
Failing answers plant exactly one kind of error, and the tests assert on the atom it produces
(kind and normalized value), so a verifier that fails for the wrong reason fails the test.
"""

from __future__ import annotations

import pytest

from kg.verification.sentences import split_sentences
from kg.verifier import REFUSAL_TEXT, EvidenceClause, TripleFact, VerificationResult, Verifier, is_refusal

CAS14 = "企业会计准则第14号——收入（2017年修订）"
NMG = "保障农民工工资支付条例"
VAT = "中华人民共和国增值税暂行条例"
JZF = "中华人民共和国建筑法"
MANUAL = "工程价款结算管理办法"


def _clause(
    clause_id: str,
    text: str,
    title: str,
    *,
    status: str = "active",
    version: int = 1,
    triples: list[TripleFact] | None = None,
    section: str = "第一章 总则",
) -> EvidenceClause:
    doc_id, number = clause_id.split("/")
    return EvidenceClause(
        clause_id=clause_id,
        version=version,
        status=status,
        doc_id=doc_id,
        doc_title=title,
        doc_version=version,
        number=number,
        text=f"{number} {text}",
        section_path=[section],
        page_start=1,
        page_end=1,
        triples=triples or [],
    )


CLAUSES = [
    _clause(
        "CAS-14-收入/第五条",
        "当企业与客户之间的合同同时满足下列条件时，企业应当在客户取得相关商品控制权时确认收入：\n"
        "（一）合同各方已批准该合同并承诺将履行各自义务；\n"
        "（二）该合同明确了合同各方与所转让商品或提供劳务（以下简称“转让商品”）相关的权利和义务；\n"
        "（三）该合同有明确的与所转让商品相关的支付条款；\n"
        "（四）该合同具有商业实质，即履行该合同将改变企业未来现金流量的风险、时间分布或金额；\n"
        "（五）企业因向客户转让商品而有权取得的对价很可能收回。",
        CAS14,
        section="第二章 确认",
    ),
    _clause(
        "CAS-14-收入/第六条",
        "在合同开始日不符合本准则第五条规定的合同，企业应当对其进行持续评估，并在其满足本准则第五条规定时"
        "按照该条的规定进行会计处理。",
        CAS14,
        section="第二章 确认",
    ),
    _clause(
        "NMG/第二十四条",
        "建设单位应当向施工单位提供工程款支付担保。\n建设单位与施工总承包单位依法订立书面工程施工合同，"
        "应当约定工程款计量周期、工程款进度结算办法以及人工费用拨付周期，并按照保障农民工工资按时足额支付的要求"
        "约定人工费用。人工费用拨付周期不得超过1个月。\n建设单位与施工总承包单位应当将工程施工合同保存备查。",
        NMG,
    ),
    _clause("NMG/第十五条", "用人单位应当按照工资支付周期编制书面工资支付台账，并至少保存3年。", NMG),
    _clause("NMG/第六十四条", "本条例自2020年5月1日起施行。", NMG, section="第七章 附则"),
    _clause(
        "VAT/第二条",
        "增值税税率：\n(一)纳税人销售货物、劳务、有形动产租赁服务或者进口货物，除本条第二项、第四项、第五项另有规定外，"
        "税率为17%。\n(二)纳税人销售交通运输、邮政、基础电信、建筑、不动产租赁服务，销售不动产，转让土地使用权，"
        "销售或者进口下列货物，税率为11%：\n(三)纳税人销售服务、无形资产，除本条第一项、第二项、第五项另有规定外，"
        "税率为6%。",
        VAT,
    ),
    _clause(
        "JZF/第二十二条",
        "建筑工程实行招标发包的，发包单位应当将建筑工程发包给依法中标的承包单位。建筑工程实行直接发包的，"
        "发包单位应当将建筑工程发包给具有相应资质条件的承包单位。",
        JZF,
        section="第三章 建筑工程发包与承包",
    ),
    _clause(
        "JZF/第二十三条",
        "政府及其所属部门不得滥用行政权力，限定发包单位将招标发包的建筑工程发包给指定的承包单位。",
        JZF,
        section="第三章 建筑工程发包与承包",
    ),
    _clause(
        "KJF/第十二条",
        "会计核算以人民币为记账本位币。\n业务收支以人民币以外的货币为主的单位，可以选定其中一种货币作为记账本位币，"
        "但是编报的财务会计报告应当折算为人民币。",
        "中华人民共和国会计法",
        section="第二章 会计核算",
    ),
    _clause(
        "JSGL/第十二条",
        "项目部应当在收到施工单位提交的进度款申请后十四日内审核完毕，并报财务部门复核。",
        MANUAL,
        triples=[TripleFact("项目部", "期限", "14日", {"surface": "十四日内"}, "party", None)],
    ),
    _clause(
        "JSGL/第十八条",
        "单笔超过五十万元的付款须经分管副总经理审批；单笔超过二百万元的付款须经总经理审批。",
        MANUAL,
    ),
    _clause(
        "JSGL/第二十条",
        "未经审批的付款申请，财务部门不得支付。",
        MANUAL,
        triples=[TripleFact("结算审核小组", "责任主体", "复核付款申请", {}, "party", None)],
    ),
    _clause(
        "JSGL/第二十五条",
        "质量保证金按结算总价的百分之三预留，缺陷责任期满后十四个工作日内返还。",
        MANUAL,
    ),
    # The manual's old wording: version 1 was replaced by a version 2 that is not in this map.
    _clause(
        "JSGL/第九条",
        "进度款按月结算，项目部应当在每月二十五日前报送计量报告。",
        MANUAL,
        status="superseded",
    ),
    _clause("JSGL/第三十条", "结算资料由项目部归档保存。", MANUAL, status="retired", version=2),
]
EVIDENCE = {c.clause_id: c for c in CLAUSES}


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier()


def _verify(verifier: Verifier, answer: str, **kw) -> VerificationResult:
    return verifier.verify_against(answer, EVIDENCE, **kw)


def _atoms(result: VerificationResult) -> set[tuple[str, str]]:
    return {(a.kind, a.normalized) for a in result.unsupported}


# --- answers that must pass ------------------------------------------------------------------------


def test_verbatim_quote_verifies_with_exact_span(verifier):
    answer = "企业应当在客户取得相关商品控制权时确认收入[[CAS-14-收入/第五条]]。"
    result = _verify(verifier, answer)
    assert result.verified, result.unsupported
    (cit,) = result.citations
    clause = EVIDENCE["CAS-14-收入/第五条"]
    assert (cit.resolved, cit.active, cit.verified, cit.version) == (True, True, True, 1)
    assert cit.support_score == 1.0
    assert clause.text[cit.quote_start : cit.quote_end] == cit.quote
    assert "企业应当在客户取得相关商品控制权时确认收入" in cit.quote
    assert not cit.quote.startswith("第五条")  # the quote is the words, not the article number
    assert [s.clause_ids for s in result.sentences] == [["CAS-14-收入/第五条"]]


@pytest.mark.parametrize(
    "answer",
    [
        # 十四日 -> 14天, reordered, 应当 -> 应
        "收到施工单位的进度款申请后，项目部应在14天内审核完毕[[JSGL/第十二条]]。",
        # 五十万元 -> 50万元 and 二百万元 -> 200万元, comparator wording changed
        "单笔付款超过50万元的须经分管副总经理审批，超过200万元的须经总经理审批[[JSGL/第十八条]]。",
        # 五十万元以上 vs 超过五十万元: same threshold, comparator logic deliberately not compared
        "五十万元以上的单笔付款须经分管副总经理审批[[JSGL/第十八条]]。",
        # 百分之三 -> 3%, 十四个工作日 -> 14个工作日
        "质量保证金按结算总价的3%预留，缺陷责任期满后14个工作日内返还[[JSGL/第二十五条]]。",
        # framing words and a modal paraphrase
        "根据规定，企业应在客户取得相关商品控制权时确认收入[[CAS-14-收入/第五条]]。",
        # reordered conditions of CAS-14-收入 第五条
        "合同需具有商业实质，且企业有权取得的对价很可能收回[[CAS-14-收入/第五条]]。",
        # article number of the cited clause and of the standard's title
        "根据《企业会计准则第14号——收入》第五条，企业应当在客户取得相关商品控制权时确认收入[[CAS-14-收入/第五条]]。",
        # an article the cited clause refers to in its text
        "不符合本准则第五条规定的合同，企业应当对其进行持续评估[[CAS-14-收入/第六条]]。",
        # rates written both ways
        "纳税人销售货物的税率为百分之十七，销售服务、无形资产的税率为6%[[VAT/第二条]]。",
        # 1个月 -> 一个月 and a bound stated as an obligation (不得超过 -> 应当…以内)
        "人工费用拨付周期应当在一个月以内[[NMG/第二十四条]]。",
        # dates
        "该条例自2020年5月1日起施行[[NMG/第六十四条]]。",
        # one of two coordinated parties the clause obliges
        "施工总承包单位应当将工程施工合同保存备查[[NMG/第二十四条]]。",
        # a clause with two modalities: each used where the clause uses it
        "业务收支以外币为主的单位可以选定其中一种货币作为记账本位币，但财务会计报告应当折算为人民币[[KJF/第十二条]]。",
        # marker after the full stop belongs to the sentence it follows
        "建设单位应当向施工单位提供工程款支付担保。[[NMG/第二十四条]]",
        # the parties and obligations of 建筑法 第二十二条, paraphrased
        "实行直接发包的建筑工程，发包单位应当发包给具有相应资质条件的承包单位[[JZF/第二十二条]]。",
    ],
)
def test_faithful_answers_verify(verifier, answer):
    result = _verify(verifier, answer)
    assert result.verified, [(a.kind, a.normalized, a.reason) for a in result.unsupported]
    assert all(c.verified for c in result.citations)
    assert all(s.supported and s.support_score >= 0.5 for s in result.sentences)


def test_multi_citation_answer_attributes_each_sentence(verifier):
    answer = (
        "综上：\n项目部应当在十四日内审核完毕进度款申请[[JSGL/第十二条]]；"
        "单笔超过五十万元的付款须经分管副总经理审批[[JSGL/第十八条]]。"
        "用人单位应当编制书面工资支付台账，并至少保存三年[[NMG/第十五条]]。"
    )
    result = _verify(verifier, answer)
    assert result.verified, result.unsupported
    assert [c.clause_id for c in result.citations] == ["JSGL/第十二条", "JSGL/第十八条", "NMG/第十五条"]
    assert [s.clause_ids for s in result.sentences] == [
        ["JSGL/第十二条"],
        ["JSGL/第十八条"],
        ["NMG/第十五条"],
    ]
    # each quote comes from its own clause
    assert "十四日内审核完毕" in result.citations[0].quote
    assert "五十万元" in result.citations[1].quote
    assert "保存3年" in result.citations[2].quote


def test_sentence_without_marker_passes_when_a_cited_clause_covers_it(verifier):
    answer = "建设单位应当向施工单位提供工程款支付担保。人工费用拨付周期不得超过1个月[[NMG/第二十四条]]。"
    result = _verify(verifier, answer)
    assert result.verified, result.unsupported
    assert result.sentences[0].clause_ids == []
    assert result.sentences[0].support_score >= 0.9


# --- answers that must fail, each for its planted error ---------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("质量保证金按结算总价的百分之五预留[[JSGL/第二十五条]]。", {("rate", "5%")}),
        (
            "项目部应当在收到施工单位提交的进度款申请后30日内审核完毕[[JSGL/第十二条]]。",
            {("duration", "30日")},
        ),
        ("项目部应当在十四个工作日内审核完毕进度款申请[[JSGL/第十二条]]。", {("duration", "14工作日")}),
        ("单笔超过60万元的付款须经分管副总经理审批[[JSGL/第十八条]]。", {("amount", "600000元")}),
        ("纳税人销售货物的税率为13%[[VAT/第二条]]。", {("rate", "13%")}),
        ("用人单位编制的书面工资支付台账至少保存5年[[NMG/第十五条]]。", {("duration", "5年")}),
        ("该条例自2020年6月1日起施行[[NMG/第六十四条]]。", {("date", "2020-06-01")}),
        (
            "根据第七条，企业应当在客户取得相关商品控制权时确认收入[[CAS-14-收入/第五条]]。",
            {("article", "第7条")},
        ),
        (
            "项目部应当在收到监理单位提交的进度款申请后十四日内审核完毕[[JSGL/第十二条]]。",
            {("party", "监理单位")},
        ),
        (
            "建筑工程实行直接发包的，建设单位应当将建筑工程发包给具有相应资质条件的承包单位[[JZF/第二十二条]]。",
            {("party", "建设单位")},
        ),
        ("未经审批的付款申请，财务部门可以支付[[JSGL/第二十条]]。", {("obligation", "可以")}),
        (
            "政府及其所属部门可以限定发包单位将招标发包的建筑工程发包给指定的承包单位[[JZF/第二十三条]]。",
            {("obligation", "可以")},
        ),
        (
            "发包单位不得将建筑工程发包给依法中标的承包单位[[JZF/第二十二条]]。",
            {("obligation", "不得")},
        ),
        # both parties are in the clause, but the obligation is the other one's
        ("施工单位应当向建设单位提供工程款支付担保[[NMG/第二十四条]]。", {("party", "施工单位")}),
        # the clause says 可以 elsewhere, but 应当 where it speaks of converting the reports
        (
            "业务收支以外币为主的单位，编报的财务会计报告可以折算为人民币[[KJF/第十二条]]。",
            {("obligation", "可以")},
        ),
    ],
)
def test_planted_errors_are_reported_as_their_atom(verifier, answer, expected):
    result = _verify(verifier, answer)
    assert not result.verified
    assert _atoms(result) == expected
    (cit,) = result.citations
    assert cit.resolved and cit.active and not cit.verified
    assert not result.sentences[0].supported
    assert result.sentences[0].support_score >= 0.5  # the wording is close; only the atom is wrong
    atom = result.unsupported[0]
    assert atom.sentence == result.sentences[0].text and atom.reason


def test_invented_clause_id_is_an_unsupported_citation(verifier):
    answer = "项目部应当在十四日内审核完毕进度款申请[[JSGL/第十二条]][[JSGL/第九十九条]]。"
    result = _verify(verifier, answer)
    assert not result.verified
    assert _atoms(result) == {("citation", "JSGL/第九十九条")}
    good, bad = result.citations
    assert (good.clause_id, good.verified) == ("JSGL/第十二条", True)
    assert (bad.resolved, bad.active, bad.version, bad.verified, bad.quote) == (False, False, None, False, "")


def test_only_invented_citation_leaves_the_sentence_unsupported(verifier):
    result = _verify(verifier, "质量保证金按结算总价的百分之三预留[[JSGL/第八十八条]]。")
    assert not result.verified
    assert ("citation", "JSGL/第八十八条") in _atoms(result)
    assert ("sentence", "质量保证金按结算总价的百分之三预留。") in _atoms(result)
    assert ("rate", "3%") in _atoms(result)  # nothing the answer cites states it


@pytest.mark.parametrize(
    ("clause_id", "status"), [("JSGL/第九条", "superseded"), ("JSGL/第三十条", "retired")]
)
def test_citing_an_inactive_clause_fails_once(verifier, clause_id, status):
    text = EVIDENCE[clause_id].text.split(" ", 1)[1].rstrip("。")
    result = _verify(verifier, f"{text}[[{clause_id}]]。")
    assert not result.verified
    # the words match the old text, so the stale citation is the only problem reported
    assert _atoms(result) == {("citation", clause_id)}
    assert status in result.unsupported[0].reason
    (cit,) = result.citations
    assert (cit.resolved, cit.active, cit.verified) == (True, False, False)
    assert cit.version == EVIDENCE[clause_id].version


def test_uncited_sentence_not_in_evidence_fails(verifier):
    answer = "项目部应当在十四日内审核完毕进度款申请[[JSGL/第十二条]]。此外，财务部门应每月编制资金使用报告。"
    result = _verify(verifier, answer)
    assert not result.verified
    assert _atoms(result) == {("sentence", "此外，财务部门应每月编制资金使用报告。")}
    first, second = result.sentences
    assert first.supported and not second.supported and second.support_score < 0.5
    # the citation itself is fine: its own sentence is supported
    assert result.citations[0].verified


def test_party_must_be_in_the_sentences_own_citations(verifier):
    # 结算审核小组 is no default party; the evidence's triples name it, so it is checked: the
    # second sentence cites 第十二条, which does not mention it.
    answer = (
        "未经审批的付款申请，财务部门不得支付[[JSGL/第二十条]]。"
        "结算审核小组应当在十四日内审核完毕进度款申请[[JSGL/第十二条]]。"
    )
    result = _verify(verifier, answer)
    assert ("party", "结算审核小组") in _atoms(result)
    assert result.citations[0].verified and not result.citations[1].verified


def test_allowed_ids_flag_citations_outside_them(verifier):
    answer = "项目部应当在十四日内审核完毕进度款申请[[JSGL/第十二条]]。"
    assert _verify(verifier, answer, allowed_ids={"JSGL/第十二条", "JSGL/第十八条"}).verified
    result = _verify(verifier, answer, allowed_ids={"JSGL/第十八条"})
    assert not result.verified
    assert _atoms(result) == {("citation", "JSGL/第十二条")}
    assert result.citations[0].allowed is False and result.citations[0].active


def test_malformed_markers_are_unsupported_citations(verifier):
    answer = "项目部应当在十四日内审核完毕进度款申请[JSGL/第十二条]。"
    result = _verify(verifier, answer)
    assert not result.verified
    assert result.malformed_markers == ["[JSGL/第十二条]"]
    assert ("citation", "[JSGL/第十二条]") in _atoms(result)
    # the malformed marker's 第十二条 is not read as an article claim
    assert not any(a.kind == "article" for a in result.unsupported)


def test_answer_without_citation_is_not_verified(verifier):
    result = _verify(verifier, "项目部应当在十四日内审核完毕进度款申请。")
    assert not result.verified
    assert result.citations == []
    assert ("sentence", "项目部应当在十四日内审核完毕进度款申请。") in _atoms(result)


def test_citation_verdicts_are_per_citation(verifier):
    answer = (
        "质量保证金按结算总价的百分之三预留[[JSGL/第二十五条]]。"
        "单笔超过一百万元的付款须经分管副总经理审批[[JSGL/第十八条]]。"
    )
    result = _verify(verifier, answer)
    assert _atoms(result) == {("amount", "1000000元")}
    verdicts = {c.clause_id: c.verified for c in result.citations}
    assert verdicts == {"JSGL/第二十五条": True, "JSGL/第十八条": False}


# --- refusals, sentences, threshold -------------------------------------------------------------------


def test_refusal_is_valid_but_not_verified(verifier):
    assert is_refusal(f"{REFUSAL_TEXT}。")
    assert is_refusal(f"抱歉，{REFUSAL_TEXT}。")
    assert not is_refusal(f"{REFUSAL_TEXT}[[JSGL/第十二条]]。")
    assert not is_refusal(f"{REFUSAL_TEXT}，但企业通常可以自行决定付款审批的金额标准和流程。")
    result = _verify(verifier, f"{REFUSAL_TEXT}。")
    assert result.refusal and not result.verified and result.unsupported == []


def test_marker_attribution_rules():
    sentences = split_sentences(
        "综上：A项规定[[D/第一条]]，B项规定。C项规定。[[D/第二条]][[D/第三条]]\n[[D/第四条]]E项规定"
    )
    assert [(s.text, s.clause_ids) for s in sentences] == [
        ("综上：A项规定，", ["D/第一条"]),
        ("B项规定。", []),
        ("C项规定。", ["D/第二条", "D/第三条", "D/第四条"]),
        ("E项规定", []),
    ]


def test_short_contentless_sentences_are_ignored(verifier):
    result = _verify(verifier, "答：\n项目部应当在十四日内审核完毕进度款申请[[JSGL/第十二条]]。")
    assert result.verified
    assert [s.text for s in result.sentences] == ["项目部应当在十四日内审核完毕进度款申请。"]


def test_threshold_controls_sentence_support():
    answer = "收到施工单位的进度款申请后，项目部应在14天内审核完毕[[JSGL/第十二条]]。"
    assert Verifier(support_threshold=0.5).verify_against(answer, EVIDENCE).verified
    strict = Verifier(support_threshold=0.99).verify_against(answer, EVIDENCE)
    assert _atoms(strict) == {("sentence", "收到施工单位的进度款申请后，项目部应在14天内审核完毕。")}


def test_verify_without_source_says_how_to_fix():
    from kgqa.errors import ConfigError

    with pytest.raises(ConfigError, match="GraphEvidence"):
        Verifier().verify("项目部应当在十四日内审核完毕[[JSGL/第十二条]]。")


def test_verify_uses_one_fetch_per_answer():
    calls: list[list[str]] = []

    class Prepared:
        def fetch(self, clause_ids):
            calls.append(list(clause_ids))
            return {cid: EVIDENCE[cid] for cid in clause_ids if cid in EVIDENCE}

    answer = "项目部应当在十四日内审核完毕[[JSGL/第十二条]]；超过五十万元的付款须经分管副总经理审批[[JSGL/第十八条]]。"
    result = Verifier(Prepared()).verify(answer)
    assert result.verified
    assert calls == [["JSGL/第十二条", "JSGL/第十八条"]]


# --- the atom finders the verdicts rest on ---------------------------------------------------------


def test_modal_classes_use_whole_words():
    from kg.verification.atoms import modal_classes

    assert modal_classes("企业应在客户取得控制权时确认收入") == [("应", "应当")]
    assert modal_classes("不应确认收入，可不予确认") == [("不应", "不得"), ("可", "可以")]
    assert modal_classes("必须经建设单位认可") == [("必须", "应当")]  # 认可 is no 可
    assert modal_classes("应收账款应纳税额相应增加，可能发生") == []


def test_parties_prefer_the_longest_name_and_skip_titles():
    from kg.verification.atoms import DEFAULT_PARTIES, find_parties, mask_titles

    text = "施工总承包单位和分包单位应当按照《企业会计准则》向建设单位报告"
    assert find_parties(mask_titles(text), DEFAULT_PARTIES) == ["施工总承包单位", "分包单位", "建设单位"]


def test_paragraph_of_a_cited_article_is_not_checked_on_its_own(verifier):
    answer = "根据第二十四条第二款，人工费用拨付周期不得超过1个月[[NMG/第二十四条]]。"
    assert _verify(verifier, answer).verified
    wrong = _verify(verifier, "根据第二十五条第二款，人工费用拨付周期不得超过1个月[[NMG/第二十四条]]。")
    assert _atoms(wrong) == {("article", "第25条")}


def test_cache_never_mixes_clause_versions(verifier):
    answer = "项目部应当在十日内审核完毕进度款申请[[JSGL/第十二条]]。"
    assert ("duration", "10日") in _atoms(_verify(verifier, answer))
    new = _clause("JSGL/第十二条", "项目部应当在收到进度款申请后十日内审核完毕。", MANUAL, version=2)
    assert verifier.verify_against(answer, {**EVIDENCE, new.clause_id: new}).verified
    assert ("duration", "10日") in _atoms(_verify(verifier, answer))  # version 1 still says 十四日


def test_citation_in_a_contentless_sentence_does_not_fail_the_answer(verifier):
    answer = "项目部应当在十四日内审核完毕进度款申请[[JSGL/第十二条]]。详见[[JSGL/第十八条]]。"
    result = _verify(verifier, answer)
    assert result.verified
    assert [c.verified for c in result.citations] == [True, True]
    assert result.citations[1].quote == ""


def test_table_rows_of_the_section_support_answers(verifier):
    """An answer quoting a table row verifies against the clause whose section holds the table."""
    from kg.tables import render_table

    table = render_table("费用审批权限", ["金额区间", "审批人"], [["5000元以下", "部门负责人"], ["5000元以上", "分管副总经理"]])
    base = dict(
        clause_id="YW/第十条", version=1, status="active", doc_id="YW", doc_title="业务手册", doc_version=1,
        number="第十条", text="第十条 费用报销按下表规定的权限审批。",
    )
    answer = "金额区间：5000元以上；审批人：分管副总经理[[YW/第十条]]。"
    with_table = EvidenceClause(**base, tables=[table])
    assert verifier.verify_against(answer, {"YW/第十条": with_table}).verified
    without = EvidenceClause(**base)
    result = verifier.verify_against(answer, {"YW/第十条": without})
    assert not result.verified and any(a.kind == "amount" for a in result.unsupported)
