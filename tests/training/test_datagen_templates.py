"""The template bank (YAML validation) and the template generator on a real ingested graph.

The graph: the DOCX sample manual (its appendix deadline table, internal references), the MD
guide (a table, a process section), 会计法 and 企业会计准则第4号 (definitions, conditions,
references between articles) — ingested once for the module.
"""

from __future__ import annotations

import collections

import pytest

from kg import queries as q
from kg.prompting import REFUSAL_ANSWER
from kg.verification.sentences import split_sentences as verifier_sentences
from kg.verifier import Verifier
from kgqa.errors import ConfigError
from training.datagen.context import build_evidence, render_table
from training.datagen.source import GraphSource
from training.datagen.template_gen import TemplateGenConfig, TemplateGenerator, graph_text
from training.datagen.templates import DEFAULT_TEMPLATES, SLOTS, TemplateBank
from training.datagen.types import QUESTION_TYPES, GraphSnapshot, SourceClause, SourceTable

DOCS = ("laws/会计法(2024-06-28).md", "standards/企业会计准则第4号——固定资产（2006）.md")
YW = "工程项目价款结算业务手册"


@pytest.fixture(scope="module")
def snapshot(neo4j_server, neo4j_driver, samples_dir, corpus_dir, tmp_path_factory) -> GraphSnapshot:
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    with neo4j_driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, home=tmp_path_factory.mktemp("datagen-templates-home"))
    paths = [samples_dir / "manuals" / "业务手册.docx", samples_dir / "manuals" / "费用报销操作指引.md"]
    report = build_ingest_service(settings, neo4j_driver).ingest(paths + [corpus_dir / d for d in DOCS])
    assert report.ok, report.failed
    return GraphSource(neo4j_driver).snapshot()


@pytest.fixture(scope="module")
def bank() -> TemplateBank:
    return TemplateBank.load()


@pytest.fixture(scope="module")
def generated(snapshot, bank):
    return TemplateGenerator(bank, TemplateGenConfig(seed=7)).generate(snapshot)


def _verify_rate(pairs, snapshot) -> tuple[float, list]:
    verifier = Verifier()
    answerable = [p for p in pairs if p.answerable]
    failed = []
    for p in answerable:
        result = verifier.verify_against(p.answer, build_evidence(p, snapshot), allowed_ids=p.context_ids)
        if not result.verified:
            failed.append((p.qtype, p.answer, [(a.kind, a.surface, a.reason) for a in result.unsupported]))
    return 1 - len(failed) / max(1, len(answerable)), failed


# --- the bank ---------------------------------------------------------------------------------------


def test_packaged_bank_has_several_phrasings_per_type_style_and_length(bank):
    for qtype in QUESTION_TYPES:
        templates = bank.for_type(qtype)
        assert len(templates) >= 5, qtype
        assert {t.style for t in templates} == {"formal", "everyday"}, qtype
        assert {t.length for t in templates} == {"short", "long"}, qtype
        assert all(t.slots <= SLOTS[qtype] for t in templates)
    assert len(bank.out_of_scope) >= 30
    assert bank.select("obligation", style="everyday", variant="must_not")
    assert all(t.variant in (None, "may") for t in bank.select("obligation", variant="may"))


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda text: text.replace("text: \"什么是{term}？\"", "text: \"什么是{row_key}？\""), "row_key"),
        (lambda text: text.replace("  unanswerable:\n", "  unanswerable_typo:\n"), "unanswerable_typo"),
        (lambda text: text.replace("style: everyday, length: short, difficulty: [基础, 进阶], text: \"{term}是啥",
                                   "style: casual, length: short, difficulty: [基础, 进阶], text: \"{term}是啥"), "style"),
        (lambda text: text.replace("id: def-f-s-2,", "id: def-f-s-1,"), "used twice"),
        (lambda text: text + "\n  - {topic: [unclosed\n", "cannot parse"),
        (lambda text: text.replace("text: \"什么是{term}？\"", "text: \"什么是{term？\""), "malformed"),
    ],
)  # fmt: skip
def test_bad_template_files_name_the_file_and_the_problem(tmp_path, mutate, problem):
    bad = tmp_path / "questions.yaml"
    bad.write_text(mutate(DEFAULT_TEMPLATES.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        TemplateBank.load(bad)
    assert str(bad) in str(info.value) and problem in str(info.value)


def test_missing_template_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="questions.yaml"):
        TemplateBank.load(tmp_path / "questions.yaml")


# --- generation on the real graph --------------------------------------------------------------------


def test_every_question_type_yields_pairs(generated, snapshot):
    pairs, rejections = generated
    counts = collections.Counter(p.qtype for p in pairs)
    assert set(counts) == set(QUESTION_TYPES), counts
    assert {p.difficulty for p in pairs} == {"基础", "进阶", "综合"}
    assert {p.style for p in pairs} == {"formal", "everyday"}
    assert {p.extra["length"] for p in pairs} == {"short", "long"}
    assert len({p.pair_id for p in pairs}) == len(pairs) and len({p.question for p in pairs}) == len(pairs)
    for p in pairs:
        assert p.gold == {cid: snapshot.clauses[cid].version for cid in p.gold}
        assert p.context_ids[: len(p.gold)] == list(p.gold)
        assert len(p.context_ids) == len(p.gold) + 2 or not p.answerable
        assert "{" not in p.question and p.question.endswith(("？", "。"))
    multi = [p for p in pairs if p.qtype in ("cross_reference", "comparison")]
    assert all(len(p.gold) == 2 for p in multi)
    xref = next(p for p in pairs if p.qtype == "cross_reference" and f"{YW}/第十八条" in p.gold)
    assert f"[[{YW}/第十八条]]" in xref.answer and f"[[{xref.extra['path'][0]}]]" in xref.answer


def test_table_pairs_come_from_the_docx_appendix_and_show_the_table(generated, snapshot):
    pairs, _ = generated
    table = next(t for t in snapshot.tables if t.table_id == f"{YW}/表1")
    rows = [p for p in pairs if p.qtype == "table" and p.extra["table_id"] == table.table_id]
    assert 1 <= len(rows) <= TemplateGenConfig().table_rows
    for p in rows:
        assert p.gold == {f"{YW}/第十二条": 1}
        assert p.extra["table_text"] == render_table(table)
        row = table.rows[p.extra["row"]]
        assert all(v in p.answer for v in row if v)
        assert f"{YW}/第十二条" in p.answer
    md = [p for p in pairs if p.qtype == "table" and p.extra["table_id"] == "项目部费用报销操作指引/表1"]
    assert len(md) == 3  # one per row


def test_at_least_95_percent_of_answerable_pairs_verify(generated, snapshot):
    pairs, _ = generated
    rate, failed = _verify_rate(pairs, snapshot)
    assert sum(p.answerable for p in pairs) >= 150
    assert rate >= 0.95, failed[:5]


def test_cot_answers_are_cited_line_by_line_and_verify(snapshot, bank):
    pairs, _ = TemplateGenerator(bank, TemplateGenConfig(seed=3, cot_ratio=1.0)).generate(snapshot)
    cot = [p for p in pairs if p.answerable]
    assert cot and all(p.cot for p in cot)
    for p in cot:
        lines = p.answer.split("\n")
        assert [line[:3] for line in lines] == ["分析：", "依据：", "结论："]
        for sentence in verifier_sentences(p.answer):
            if sentence.has_content:
                assert sentence.clause_ids, (p.answer, sentence.text)
    rate, failed = _verify_rate(cot, snapshot)
    assert rate >= 0.95, failed[:5]
    assert not [p for p in pairs if not p.answerable and p.cot]


def test_same_seed_same_pairs_other_seed_other_phrasings(snapshot, bank, generated):
    again, again_rejected = TemplateGenerator(bank, TemplateGenConfig(seed=7)).generate(snapshot)
    pairs, rejections = generated
    assert [p.to_dict() for p in again] == [p.to_dict() for p in pairs]
    assert [r.reason for r in again_rejected] == [r.reason for r in rejections]
    other, _ = TemplateGenerator(bank, TemplateGenConfig(seed=8)).generate(snapshot)
    assert {p.pair_id for p in other} != {p.pair_id for p in pairs}
    golds = {tuple(p.gold) for p in pairs if p.answerable}
    other_golds = {tuple(p.gold) for p in other if p.answerable}
    assert len(golds & other_golds) >= 0.9 * len(golds | other_golds)  # same candidates, other wording


def test_a_partial_build_rewrites_exactly_the_pairs_of_its_clauses(snapshot, bank, generated):
    pairs, _ = generated
    changed = {f"{YW}/第十八条", f"{YW}/第八条"}
    partial, _ = TemplateGenerator(bank, TemplateGenConfig(seed=7)).generate(snapshot, clause_ids=changed)
    expected = {p.pair_id for p in pairs if changed & set(p.gold)}
    assert {p.pair_id for p in partial} == expected
    assert any(p.qtype == "cross_reference" for p in partial)  # 第九条 -> 第十八条, reached via its target


def test_unanswerable_topics_are_absent_from_the_graph(generated, snapshot, neo4j_driver):
    pairs, rejections = generated
    refusals = [p for p in pairs if not p.answerable]
    answerable = len(pairs) - len(refusals)
    assert len(refusals) == max(5, round(0.05 * answerable))
    bank = TemplateBank.load()
    keywords = {t.topic: t.keywords for t in bank.out_of_scope}
    text = graph_text(snapshot)
    for p in refusals:
        assert p.answer == REFUSAL_ANSWER and p.gold == {} and len(p.context_ids) == 3
        assert p.extra["topic"] in p.question
        for word in keywords[p.extra["topic"]]:
            assert word not in text
            hits, _, _ = neo4j_driver.execute_query(q.TEXT_PROPERTIES_CONTAINING, needle=word, limit=1)
            assert not hits, (word, hits)
    used_in_graph = {r.detail.split(":")[0] for r in rejections if r.reason == "topic_in_graph"}
    assert all(any(k in text for k in keywords[t]) for t in used_in_graph)


# --- without a graph -----------------------------------------------------------------------------------


def _clause(cid: str, text: str) -> SourceClause:
    return SourceClause(cid, 1, "D", "测试办法", cid.split("/")[1], text, ("第一章 总则",))


def test_rejections_name_their_reason():
    clauses = {
        "D/第一条": _clause("D/第一条", "第一条 是指以下内容。"),
        "D/第二条": _clause("D/第二条", "第二条 申请人应当符合下列条件：无。"),
    }
    orphan = SourceTable("D/表1", "D", "测试办法", ("附表2",), "附表2", ("a", "b"), (("1", "2"),), 1, None)
    snap = GraphSnapshot(1, clauses, (orphan,), {})
    pairs, rejections = TemplateGenerator(config=TemplateGenConfig(unanswerable_count=2)).generate(snap)
    reasons = collections.Counter(r.reason for r in rejections)
    assert reasons["table_without_clause"] == 1
    assert reasons["no_definition_sentence"] == 1
    assert reasons["no_condition_items"] == 1
    assert [p.qtype for p in pairs] == ["unanswerable", "unanswerable"]
